"""Image pyramids: resizing, octave sizes and Laplacian-pyramid gradient normalisation. Shapes ``(..., C, H, W)``."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(..., C, H, W)`` to ``size`` = (H', W'), antialiased when shrinking."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    out = F.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return out.reshape(*lead, *out.shape[-3:])


def octave_sizes(height: int, width: int, octaves: int, scale: float, min_side: int = 32) -> list[tuple[int, int]]:
    """Sizes from the smallest octave to the full size; octaves that would fall below ``min_side`` are dropped."""
    sizes = []
    for i in reversed(range(octaves)):
        f = scale ** i
        h, w = round(height / f), round(width / f)
        if min(h, w) >= min_side or i == 0:
            sizes.append((h, w))
    return sizes


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial blur with reflect padding, per channel; ``x`` is ``(N, C, H, W)``."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=x.dtype, device=x.device) / 16.0
    c = x.shape[1]
    mode = "reflect" if min(x.shape[-2:]) > 2 else "replicate"
    x = F.pad(x, (2, 2, 2, 2), mode=mode)
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def laplacian_split(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of ``(N, C, H, W)``: ``levels - 1`` band-pass images (fine first) and the low-pass rest."""
    bands = []
    for _ in range(levels - 1):
        h, w = x.shape[-2:]
        if min(h, w) < 4:
            break
        low = F.interpolate(_blur(x), size=(math.ceil(h / 2), math.ceil(w / 2)), mode="bilinear",
                            align_corners=False)
        bands.append(x - F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False))
        x = low
    bands.append(x)
    return bands


def laplacian_merge(bands: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`laplacian_split` (exact)."""
    x = bands[-1]
    for band in reversed(bands[:-1]):
        x = band + F.interpolate(x, size=band.shape[-2:], mode="bilinear", align_corners=False)
    return x


def normalize_gradient(g: torch.Tensor, method: str, levels: int = 4, eps: float = 1e-8) -> torch.Tensor:
    """Scale a gradient ``(N, C, H, W)`` so that a unit step moves pixels by about one unit.

    ``std``: divide by the standard deviation; ``mean_abs``: by the mean absolute value (google/deepdream);
    ``laplacian``: normalise each band of a Laplacian pyramid by its std and merge (TF tutorial's lapnorm),
    which boosts low frequencies so that larger, smoother structures grow.
    """
    if method == "std":
        return g / (g.std() + eps)
    if method == "mean_abs":
        return g / (g.abs().mean() + eps)
    if method == "laplacian":
        bands = [b / (b.std() + eps) for b in laplacian_split(g, levels)]
        out = laplacian_merge(bands)
        return out / (out.std() + eps)
    raise ValueError(f"unknown gradient normalisation {method!r}")
