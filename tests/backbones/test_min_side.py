"""Each image network's smallest input side (``min_side``) is exact, and smaller images are mirrored up to it: any
image size goes through every tap."""

from __future__ import annotations

import pytest
import torch

from mmdream.backbones import BACKBONES, get_spec
from mmdream.backbones.nets import trained
from mmdream.backbones.base import Backbone

IMAGE_BACKBONES = [n for n in BACKBONES if get_spec(n).modality == "image"]
IMAGE_ARCHITECTURES = [a for a in trained.ARCHITECTURES if a != "mel_cnn"]


def _runs(module: torch.nn.Module, side: int) -> bool:
    try:
        with torch.no_grad():
            module(torch.zeros(1, 3, side, side))
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("name", IMAGE_BACKBONES)
def test_registered_min_side_is_the_smallest_that_runs(name: str, one_thread: None) -> None:
    spec = get_spec(name)
    variant = spec.variants[spec.default_variant]
    module = spec.build(variant.with_classifier).eval()
    assert _runs(module, spec.min_side)
    assert spec.min_side == 1 or not _runs(module, spec.min_side - 1)


@pytest.mark.parametrize("architecture", IMAGE_ARCHITECTURES)
def test_trained_architectures_min_side(architecture: str, one_thread: None) -> None:
    module = trained.build(architecture, 3, {}).eval()
    side = trained.min_side(architecture)
    assert _runs(module, side) and (side == 1 or not _runs(module, side - 1))


def test_thin_and_tiny_images_reach_every_tap(one_thread: None) -> None:
    spec = get_spec("vgg16")
    variant = spec.variants["torchvision"]
    bb = Backbone("vgg16", "torchvision", spec.build(True), variant.preprocess, spec.layers(True), None,
                  spec.default_layers, spec.input_size, min_side=spec.min_side)
    for shape in ((3, 200), (200, 3), (1, 1)):
        x = torch.rand(1, 3, *shape, requires_grad=True)
        taps = bb.taps(x, ["relu5_3", "logits"])
        assert taps["relu5_3"].shape[-2:] == (max(shape[0], 32) // 16, max(shape[1], 32) // 16)
        taps["relu5_3"].mean().backward()
        assert x.grad is not None and x.grad.shape == x.shape and bool(x.grad.abs().sum() > 0)
