"""The device a Ray actor runs on: the GPU Ray granted it (``num_gpus``, fractional to share a card), else the CPU.

The rule itself is :func:`mmdream.backbones.compute.select_device`; this module only asks Ray and torch.
"""

from __future__ import annotations

import os
import sys

import ray
import torch

from mmdream.backbones.compute import DeviceChoice, select_device


def actor_device() -> DeviceChoice:
    """The device for the calling actor or task; a granted GPU that torch cannot use is reported on stderr (Ray
    shows it on the driver) and the CPU is used."""
    choice = select_device(ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES"),
                           torch.cuda.device_count() if torch.cuda.is_available() else 0)
    if choice.note is not None:
        print(f"mmdream: warning: {choice.note}", file=sys.stderr)
    return choice
