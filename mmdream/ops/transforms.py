"""Transformation robustness: pad, jitter, scale, rotate and crop before each evaluation of an objective.

A visualisation that must excite the network under small random shifts, zooms and rotations cannot hide in
pixel-exact adversarial patterns; what is left is structure the network sees robustly (lucid's
``transform.standard_transforms``). Feature visualisation and class dreams use it. All functions take images
``(N, 3, H, W)`` and are differentiable; each item of a batch draws its own transformation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pad(x: torch.Tensor, pixels: int, value: float = 0.5) -> torch.Tensor:
    """``x`` ``(..., H, W)`` padded by ``pixels`` on every side with the constant ``value`` (mid-grey): the
    visualisation's edges are then seen as inner structure under jitter, not as the frame."""
    if pixels <= 0:
        return x
    return F.pad(x, (pixels, pixels, pixels, pixels), mode="constant", value=value)


def affine(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` moved by ``shift`` ``(N, 2)`` pixels (dx, dy), zoomed by ``scale`` ``(N,)`` and rotated
    by ``angle`` ``(N,)`` degrees about its centre, bilinear, borders reflected. An integer shift with scale 1
    and angle 0 moves pixels exactly."""
    n, _, h, w = x.shape
    rad = angle.to(torch.float64) * (math.pi / 180.0)
    cos, sin = torch.cos(rad) / scale.double(), torch.sin(rad) / scale.double()
    # Output pixel p (in pixels from the centre) samples input R(angle)/scale p - shift; normalised coordinates
    # divide x by W/2 and y by H/2.
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin * h / w
    theta[:, 1, 0], theta[:, 1, 1] = sin * w / h, cos
    theta[:, 0, 2] = -shift[:, 0].double() * 2.0 / w
    theta[:, 1, 2] = -shift[:, 1].double() * 2.0 / h
    grid = F.affine_grid(theta.to(device=x.device, dtype=x.dtype), [n, x.shape[1], h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_transform(x: torch.Tensor, *, pad_px: int, jitter: int, scale: float, angle: float,
                     generator: torch.Generator) -> torch.Tensor:
    """Lucid-style robustness: pad by ``pad_px`` (grey), then for each item an integer shift of up to ``jitter``
    pixels each way, a zoom uniform in ``1 ± scale`` and a rotation uniform in ``±angle`` degrees.
    ``(N, 3, H, W)`` -> ``(N, 3, H + 2 pad_px, W + 2 pad_px)``."""
    x = pad(x, pad_px)
    n = x.shape[0]
    shift = torch.randint(-jitter, jitter + 1, (n, 2), generator=generator).double()
    zoom = 1.0 + scale * (2.0 * torch.rand(n, generator=generator, dtype=torch.float64) - 1.0)
    turn = angle * (2.0 * torch.rand(n, generator=generator, dtype=torch.float64) - 1.0)
    if not jitter and not scale and not angle:
        return x
    return affine(x, shift, zoom, turn)


def random_view(x: torch.Tensor, side: int, *, scale: float, angle: float, generator: torch.Generator
                ) -> torch.Tensor:
    """A classifier's random view of ``x`` ``(N, 3, H, W)``: zoomed uniform in ``1 ± scale`` and rotated within
    ``± angle`` degrees (:func:`random_transform`, borders reflected), shorter side resized to ``side`` (bilinear,
    antialiased when shrinking) and a random ``side`` x ``side`` crop -> ``(N, 3, side, side)``.

    An objective evaluated on such views sees the picture at the classifier's own scale whatever the picture's size,
    and must hold under any crop, zoom and small turn: what an evaluator's resize-and-crop sees."""
    x = random_transform(x, pad_px=0, jitter=0, scale=scale, angle=angle, generator=generator)
    h, w = x.shape[-2:]
    f = side / min(h, w)
    size = (max(side, round(h * f)), max(side, round(w * f)))
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=f < 1)
    top = int(torch.randint(0, size[0] - side + 1, (1,), generator=generator))
    left = int(torch.randint(0, size[1] - side + 1, (1,), generator=generator))
    return x[..., top:top + side, left:left + side]
