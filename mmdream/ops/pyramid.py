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


def mirror_pad(x: torch.Tensor, min_h: int, min_w: int) -> torch.Tensor:
    """``(..., C, H, W)`` mirrored outward (about the edge pixels, repeatedly when the pad is wider than the image)
    to at least ``(min_h, min_w)``, the original centred; unchanged when it is that large. Gradients flow back."""
    for dim, (n, target) in ((-2, (x.shape[-2], min_h)), (-1, (x.shape[-1], min_w))):
        if n < target:
            i = torch.arange(target, device=x.device) - (target - n) // 2
            if n == 1:
                i = torch.zeros_like(i)
            else:
                i = i.remainder(2 * (n - 1))
                i = torch.where(i < n, i, 2 * (n - 1) - i)
            x = x.index_select(dim, i)
    return x


def laplacian_split(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Laplacian pyramid of ``(N, C, H, W)``: ``levels - 1`` band-pass images (fine first) and the low-pass rest.

    Each low-pass level is an antialiased half-size resize (a triangle filter), which needs no full-size
    temporaries beyond the band itself: on huge tiled images these full-size copies are what bounds memory.
    """
    bands = []
    for _ in range(levels - 1):
        h, w = x.shape[-2:]
        if min(h, w) < 4:
            break
        low = F.interpolate(x, size=(math.ceil(h / 2), math.ceil(w / 2)), mode="bilinear", align_corners=False,
                            antialias=True)
        bands.append(F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False).neg_().add_(x))
        x = low
    bands.append(x)
    return bands


def laplacian_merge(bands: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of :func:`laplacian_split` (exact)."""
    x = bands[-1]
    for band in reversed(bands[:-1]):
        x = F.interpolate(x, size=band.shape[-2:], mode="bilinear", align_corners=False).add_(band)
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
        bands = laplacian_split(g, levels)
        if len(bands) == 1:
            return g / (g.std() + eps)
        bands = [b.div_(b.std() + eps) for b in bands]  # fresh tensors: normalised in place to save memory
        out = laplacian_merge(bands)
        return out.div_(out.std() + eps)
    raise ValueError(f"unknown gradient normalisation {method!r}")
