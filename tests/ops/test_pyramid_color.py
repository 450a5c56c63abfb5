"""Pyramid, gradient normalisation and colour ops on small tensors with exact expectations."""

from __future__ import annotations

import pytest
import torch

from mmdream.ops.color import match_histograms, preserve_colors, rgb_to_ycbcr, ycbcr_to_rgb
from mmdream.ops.pyramid import laplacian_merge, laplacian_split, normalize_gradient, octave_sizes, resize


def test_octave_sizes_smallest_first_and_full_size_last() -> None:
    assert octave_sizes(300, 451, 3, 2.0) == [(75, 113), (150, 226), (300, 451)]
    assert octave_sizes(40, 40, 5, 2.0) == [(40, 40)]  # octaves below 32 px are dropped
    assert octave_sizes(64, 64, 1, 1.4) == [(64, 64)]


def test_laplacian_pyramid_round_trip_is_exact() -> None:
    g = torch.randn(2, 3, 37, 53, generator=torch.Generator().manual_seed(0))
    bands = laplacian_split(g, 4)
    assert len(bands) == 4 and bands[-1].shape[-2:] == (5, 7)
    torch.testing.assert_close(laplacian_merge(bands), g, atol=1e-5, rtol=0)


@pytest.mark.parametrize("method", ["std", "mean_abs", "laplacian"])
def test_normalised_gradient_has_unit_scale_and_keeps_direction(method: str) -> None:
    g = 1e-4 * torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    n = normalize_gradient(g, method)
    scale = n.abs().mean() if method == "mean_abs" else n.std()
    assert scale.item() == pytest.approx(1.0, rel=1e-3)
    assert torch.nn.functional.cosine_similarity(n.flatten(), g.flatten(), dim=0) > 0.5


def test_laplacian_normalisation_boosts_low_frequencies() -> None:
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    low = torch.sin(xx / 10.0)
    high = torch.sin(xx * 2.5) * 10.0
    g = (low + high).expand(1, 3, 64, 64)
    n = normalize_gradient(g, "laplacian")
    share_low_before = (g * low).mean() / g.std()
    share_low_after = (n * low).mean() / n.std()
    assert share_low_after > 3 * share_low_before


def test_resize_identity_and_shape() -> None:
    x = torch.rand(3, 10, 12)
    assert resize(x, (10, 12)) is x
    assert resize(x, (5, 6)).shape == (3, 5, 6)


def test_ycbcr_round_trip_and_luminance_transfer() -> None:
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-5, rtol=0)
    x = 0.4 + 0.2 * x  # stays inside the RGB gamut after the transfer (the result is clamped to [0, 1])
    gray = x.mean(dim=1, keepdim=True).expand(1, 3, 8, 8)
    out = preserve_colors(gray, x, "luminance")
    torch.testing.assert_close(rgb_to_ycbcr(out)[:, 1:], rgb_to_ycbcr(x)[:, 1:], atol=1e-4, rtol=0)


def test_histogram_matching_copies_the_reference_distribution() -> None:
    x = torch.rand(1, 3, 16, 16)
    ref = torch.rand(1, 3, 16, 16) ** 3
    out = match_histograms(x, ref)
    torch.testing.assert_close(out.flatten(2).sort().values, ref.flatten(2).sort().values)
    # order is kept: the brightest input pixel gets the brightest reference value
    assert torch.equal(out[0, 0].flatten().argmax(), x[0, 0].flatten().argmax())


def test_mirror_pad_reflects_about_the_edges_repeatedly_and_keeps_large_images() -> None:
    from mmdream.ops.pyramid import mirror_pad

    x = torch.arange(3.0).view(1, 1, 1, 3)  # one row: 0 1 2
    y = mirror_pad(x, 1, 9)
    assert y.shape == (1, 1, 1, 9) and y[0, 0, 0].tolist() == [1, 2, 1, 0, 1, 2, 1, 0, 1]  # centred, mirrored twice
    assert mirror_pad(torch.ones(1, 3, 1, 1) * 0.3, 4, 4).equal(torch.full((1, 3, 4, 4), 0.3))
    big = torch.rand(2, 3, 5, 6)
    assert mirror_pad(big, 5, 6) is big
    x = torch.rand(1, 3, 2, 7, requires_grad=True)
    mirror_pad(x, 6, 7).sum().backward()  # every padded pixel's gradient lands on its source pixel
    assert x.grad is not None and float(x.grad.sum()) == 3 * 6 * 7 and bool((x.grad == 3).all())
