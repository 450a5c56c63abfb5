"""Where and how a backbone runs: the device (the GPU a scheduler granted, else the CPU), reduced precision and
memory layout.

:func:`select_device` is a pure rule from what the scheduler granted and what torch can see, so it is testable
without a GPU; :func:`place` applies a choice to a loaded backbone. Nothing here knows about Ray: the caller passes
the granted GPU ids (``ray.get_gpu_ids()`` on an actor).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mmdream.backbones.base import Backbone
from mmdream.errors import ParameterError
from mmdream.options import Options, option

PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class ComputeParams(Options):
    """How an image backbone computes. Both are off by default until measured (``bench/gpu.py``)."""

    precision: str = option("fp32", "arithmetic of the image backbone's forward pass: fp32, or bf16 autocast "
                                    "(gradients and pixels stay float32)", choices=PRECISIONS)
    channels_last: bool = option(False, "run the image backbone in channels-last memory layout (faster "
                                        "convolutions on recent GPUs)")


@dataclass(frozen=True)
class DeviceChoice:
    """The device to run on and, when a granted GPU could not be used, why (``note``; None otherwise)."""

    device: str
    note: str | None = None


def select_device(gpu_ids: Sequence[int | str], visible_devices: str | None, cuda_count: int) -> DeviceChoice:
    """The torch device for a worker granted the GPUs ``gpu_ids`` (physical ids; empty: none granted).

    ``visible_devices`` is the worker's ``CUDA_VISIBLE_DEVICES`` and ``cuda_count`` what torch sees
    (``torch.cuda.device_count()``, 0 without CUDA). The rule:

    - no GPU granted -> ``cpu`` (a worker never takes a GPU the scheduler did not give it);
    - granted and visible -> ``cuda:K``, K the first granted id's position among the visible devices (Ray sets
      ``CUDA_VISIBLE_DEVICES`` to the granted ids, so K is usually 0), or the id itself when the variable is unset;
    - granted but torch sees no such CUDA device (a CPU-only torch, no driver, or a GPU resource advertised on a CPU
      node) -> ``cpu`` with a ``note`` saying so, for the worker to report.
    """
    if not gpu_ids:
        return DeviceChoice("cpu")
    first = str(gpu_ids[0]).strip()
    visible = [v.strip() for v in visible_devices.split(",") if v.strip()] if visible_devices is not None else None
    index = (visible.index(first) if first in visible else None) if visible is not None else \
        (int(first) if first.isdigit() else None)
    if index is None or index >= cuda_count:
        why = "torch sees no CUDA device" if cuda_count == 0 else f"torch sees {cuda_count} CUDA device(s)"
        return DeviceChoice("cpu", f"granted GPU {first} but {why} (CUDA_VISIBLE_DEVICES={visible_devices!r}); "
                                   "running on the CPU")
    return DeviceChoice(f"cuda:{index}")


def place(backbone: Backbone, device: str | torch.device, compute: ComputeParams = ComputeParams()) -> Backbone:
    """Move ``backbone`` to ``device`` and set its precision and layout (image backbones only); on CUDA, let cuDNN
    pick the fastest convolution algorithms for the sizes it meets. Returns the backbone."""
    compute.validate()
    if backbone.modality != "image" and compute != ComputeParams():
        raise ParameterError(f"{backbone.name} is an {backbone.modality} backbone; precision and channels-last apply "
                             "to image backbones only")
    device = torch.device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    backbone.to(device)
    backbone.set_compute(bf16=compute.precision == "bf16", channels_last=compute.channels_last)
    return backbone
