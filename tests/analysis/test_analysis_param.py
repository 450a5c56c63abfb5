"""Parametrisation, transformations and objectives of feature visualisation, on tiny tensors with exact values."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from mmdream.objectives.visualization import ChannelPerItem, DirectionTerm, DiversityTerm, NeuronTerm, direction_vector
from mmdream.analysis.param import (
    DEFAULT_COLOR_CORRELATION,
    FourierImage,
    decorrelate,
    image_files,
    measure_color_correlation,
    spectrum_scale,
)
from mmdream.ops.transforms import affine, pad, random_transform, random_view
from mmdream.analysis.visualize import redirected_relus
from mmdream.errors import MediaError, ParameterError


def test_spectrum_scale_decays_with_frequency_and_caps_the_dc() -> None:
    s = spectrum_scale(8, 6, 1.0)
    assert s.shape == (8, 4)
    assert float(s[0, 0]) == pytest.approx(8.0)  # 1 / (1 / max(H, W))
    assert float(s[0, 1]) == pytest.approx(6.0)  # |f| = 1/6
    assert float(s[4, 3]) == pytest.approx(1 / math.hypot(0.5, 0.5), rel=1e-6)  # the highest frequency
    assert torch.equal(spectrum_scale(8, 6, 0.0), torch.ones(8, 4))


def test_fourier_image_of_zero_spectrum_is_grey_and_dc_is_a_decorrelated_colour() -> None:
    img = FourierImage(2, 16, 24)
    assert img().shape == (2, 3, 16, 24)
    with torch.no_grad():
        img.spectrum.zero_()
        assert torch.equal(img(), torch.full((2, 3, 16, 24), 0.5))
        img.spectrum[1, 0, 0, 0, 0] = 2.0  # DC of the first decorrelated channel of item 1
        out = img()
    t0 = 2.0 * 24 / math.sqrt(16 * 24) / 4.0  # DC scale max(H, W), orthonormal inverse FFT, /4
    m = DEFAULT_COLOR_CORRELATION / DEFAULT_COLOR_CORRELATION.norm(dim=0).max()
    expected = torch.sigmoid(m[:, 0] * t0)
    assert torch.allclose(out[1], expected[:, None, None].expand(3, 16, 24), atol=1e-6)
    assert torch.equal(out[0], torch.full((3, 16, 24), 0.5))


def test_decorrelate_uses_the_matrix_normalised_to_unit_largest_column() -> None:
    m = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.5]])
    t = torch.ones(3, 1, 1)
    assert torch.allclose(decorrelate(t, m)[:, 0, 0], torch.tensor([1.0, 0.5, 0.25]))


def test_color_correlation_of_grey_checkerboards_is_one_grey_axis(tmp_path: Path) -> None:
    board = (np.indices((32, 32)).sum(axis=0) % 2 * 255).astype(np.uint8)  # black/white: variance 1/4
    for name in ("a.png", "sub/b.jpg"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(np.stack([board] * 3, axis=-1)).save(tmp_path / name, quality=100)
    (tmp_path / "notes.txt").write_text("not an image")
    assert [p.name for p in image_files(tmp_path)] == ["a.png", "b.jpg"]
    m = measure_color_correlation(tmp_path)
    assert torch.allclose(m[:, 0], torch.full((3,), 0.5), atol=0.01)  # sqrt(3 x 1/4) x (1, 1, 1) / sqrt(3)
    assert float(m[:, 1:].abs().max()) < 0.01


def test_image_files_refuses_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="does not exist"):
        image_files(tmp_path / "nope")
    with pytest.raises(MediaError, match="holds no images"):
        image_files(tmp_path)


def test_pad_and_exact_affine_moves() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    assert torch.equal(pad(x, 2)[..., :2, :], torch.full((2, 3, 2, 12), 0.5))
    one, zero = torch.ones(2), torch.zeros(2)
    assert torch.allclose(affine(x, torch.zeros(2, 2), one, zero), x, atol=1e-4)
    moved = affine(x, torch.tensor([[2.0, 1.0], [0.0, 0.0]]), one, zero)  # item 0: 2 px right, 1 px down
    assert torch.allclose(moved[0, :, 1:, 2:], x[0, :, :-1, :-2], atol=1e-4)
    assert torch.allclose(moved[1], x[1], atol=1e-4)
    turned = affine(x, torch.zeros(2, 2), one, torch.full((2,), 90.0))
    assert torch.allclose(turned, torch.rot90(x, 1, dims=(-2, -1)), atol=1e-3)


def test_random_transform_draws_per_item_and_is_seeded() -> None:
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1)).expand(3, 3, 16, 16)
    kw = {"pad_px": 4, "jitter": 3, "scale": 0.1, "angle": 10.0}
    a = random_transform(x, generator=torch.Generator().manual_seed(5), **kw)
    b = random_transform(x, generator=torch.Generator().manual_seed(5), **kw)
    assert a.shape == (3, 3, 24, 24) and torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])  # the same picture, transformed differently per item
    plain = random_transform(x, pad_px=0, jitter=0, scale=0.0, angle=0.0, generator=torch.Generator())
    assert torch.equal(plain, x)


def test_channel_per_item_picks_each_items_channel_and_regroups_patches() -> None:
    acts = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    term = ChannelPerItem("l", (2, 0))
    assert torch.allclose(term.per_item({"l": acts}), torch.stack([acts[0, 2].mean(), acts[1, 0].mean()]))
    assert float(term.value({"l": acts})) == pytest.approx(float((acts[0, 2].mean() + acts[1, 0].mean()) / 2))
    rows = torch.arange(4 * 3, dtype=torch.float32).reshape(4, 3)  # 2 items x 2 patches, 3 channels
    assert torch.allclose(term.per_item({"l": rows}), torch.tensor([(2 + 5) / 2, (6 + 9) / 2]))
    x = acts.clone().requires_grad_(True)
    term.value({"l": x}).backward()
    assert torch.count_nonzero(x.grad[0, :2]) == 0 and torch.count_nonzero(x.grad[1, 1:]) == 0
    with pytest.raises(ParameterError, match="cannot be split"):
        ChannelPerItem("l", (0, 1, 2)).per_item({"l": rows})


def test_neuron_direction_and_diversity_values() -> None:
    acts = torch.zeros(2, 2, 3, 3)
    acts[:, 1, 1, 1] = torch.tensor([4.0, 6.0])
    assert float(NeuronTerm("l", 1).value({"l": acts})) == pytest.approx(5.0)
    assert float(NeuronTerm("l", 1, (0, 0)).value({"l": acts})) == 0.0
    v = direction_vector("1:3,0:-4", 2)
    assert torch.equal(v, torch.tensor([-4.0, 3.0]))
    assert float(DirectionTerm("l", v).value({"l": acts})) == pytest.approx(0.6 * 10 / 2 / 9)
    same = torch.rand(3, 4, 5, 5, generator=torch.Generator().manual_seed(0))[:1].expand(3, 4, 5, 5)
    assert float(DiversityTerm("l").value({"l": same})) == pytest.approx(-1.0, abs=1e-5)
    apart = torch.zeros(2, 2, 2, 2)
    apart[0, 0], apart[1, 1] = 1.0, 1.0  # each item uses its own channel: orthogonal Gram matrices
    assert float(DiversityTerm("l").value({"l": apart})) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ParameterError, match="at least 2"):
        DiversityTerm("l").value({"l": apart[:1]})
    for bad in ("5", "0:x", "0:0"):
        with pytest.raises(ParameterError):
            direction_vector(bad, 2)


def test_redirected_relu_lets_a_dead_start_move_up_only_when_stuck() -> None:
    net = nn.Sequential(nn.ReLU())
    dead = torch.tensor([[-1.0, -2.0], [3.0, -1.0]], requires_grad=True)  # item 0 all below zero, item 1 alive

    def loss_grad() -> torch.Tensor:
        (grad,) = torch.autograd.grad(-net(dead).sum(), dead)
        return grad

    assert torch.equal(loss_grad(), torch.tensor([[0.0, 0.0], [-1.0, 0.0]]))
    with redirected_relus(net):
        assert torch.equal(loss_grad(), torch.tensor([[-1.0, -1.0], [-1.0, 0.0]]))  # only the stuck item redirected
        assert torch.equal(net(dead), torch.relu(dead))
    assert torch.equal(loss_grad(), torch.tensor([[0.0, 0.0], [-1.0, 0.0]]))


def test_random_view_is_a_classifier_sized_crop_and_the_identity_when_nothing_moves() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 40, 40, requires_grad=True)
    assert torch.equal(random_view(x, 40, scale=0.0, angle=0.0, generator=g), x)
    wide = random_view(torch.rand(1, 3, 30, 90), 48, scale=0.2, angle=5.0, generator=g)
    assert wide.shape == (1, 3, 48, 48)
    random_view(x, 24, scale=0.2, angle=5.0, generator=g).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
