"""Device selection (a pure rule, tested without a GPU) and bf16 autocast / channels-last on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmdream.backbones import load_backbone
from mmdream.backbones.compute import ComputeParams, place, select_device
from mmdream.dream.image import DreamParams, dream_image
from mmdream.errors import ParameterError
from mmdream.objectives.terms import build_objective


def test_no_gpu_granted_runs_on_the_cpu_even_when_cuda_is_there() -> None:
    assert select_device([], "0,1", 2).device == "cpu"
    assert select_device([], None, 2).note is None


def test_a_granted_gpu_is_its_position_among_the_visible_devices() -> None:
    assert select_device(["3"], "3", 1).device == "cuda:0"  # Ray narrows CUDA_VISIBLE_DEVICES to the grant
    assert select_device([1], "0,1", 2).device == "cuda:1"
    assert select_device([2, 3], "3,2", 2).device == "cuda:1"  # the first granted id
    assert select_device([1], None, 2).device == "cuda:1"  # variable unset: the physical id


def test_a_granted_gpu_torch_cannot_see_falls_back_to_the_cpu_with_a_note() -> None:
    choice = select_device([0], "0", 0)
    assert choice.device == "cpu" and "granted GPU 0" in choice.note and "no CUDA device" in choice.note
    choice = select_device([5], "0,1", 2)  # granted id not among the visible ones
    assert choice.device == "cpu" and "2 CUDA device(s)" in choice.note
    assert select_device([1], None, 1).device == "cpu"


def test_compute_params_refuse_unknown_precision_and_audio_backbones(yamnet) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParameterError, match="precision='fp16' is invalid"):
        ComputeParams(precision="fp16").validate()
    with pytest.raises(ParameterError, match="image backbones only"):
        place(yamnet, "cpu", ComputeParams(precision="bf16"))


def test_bf16_autocast_and_channels_last_dream_on_the_cpu(weights_dir: Path, one_thread: None) -> None:
    """bf16 keeps shapes and float32 pixels, raises the objective over a few steps like fp32, and channels-last
    changes nothing but the layout."""
    torch.manual_seed(0)
    image = torch.rand(1, 3, 64, 80)
    params = DreamParams(steps=4, octaves=1, jitter=4, seed=1)
    results = {}
    for name, compute in (("fp32", ComputeParams()), ("bf16", ComputeParams(precision="bf16")),
                          ("channels_last", ComputeParams(channels_last=True))):
        backbone = place(load_backbone("vgg16", weights_dir=weights_dir), "cpu", compute)
        objective = build_objective(backbone, layers="relu4_3")
        taps = backbone.taps(image, ["relu4_3"])["relu4_3"]
        assert taps.dtype == torch.float32 and taps.shape == (1, 512, 8, 10)
        before = objective.evaluate(backbone, image)
        dream = dream_image(image, backbone, objective, params)
        assert dream.shape == image.shape and dream.dtype == torch.float32
        after = objective.evaluate(backbone, dream)
        assert after > 1.3 * before, (name, before, after)
        results[name] = (before, after, dream)
    fp32, bf16, cl = results["fp32"], results["bf16"], results["channels_last"]
    assert bf16[0] != fp32[0] and abs(bf16[0] - fp32[0]) < 0.01 * fp32[0]  # bf16 ran: ~3 significant digits
    # The same dream up to rounding (measured 0.0004 mean absolute difference; the dream's own detail is 0.011).
    assert (bf16[2] - fp32[2]).abs().mean() < 0.002
    assert (cl[2] - fp32[2]).abs().max() < 1e-3 and abs(cl[1] - fp32[1]) < 1e-3 * fp32[1]
