"""Tiled evaluation of a gradient: memory bounded by the tile, seams hidden by blended overlaps."""

from __future__ import annotations

from collections.abc import Callable

import torch

Box = tuple[int, int, int, int]  # y0, y1, x0, x1


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``[0, length)`` with at least ``overlap`` shared pixels."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    n = -(-(length - overlap) // stride)
    starts = [round(i * (length - tile) / (n - 1)) for i in range(n)]
    return starts


def tile_boxes(height: int, width: int, tile: int, overlap: int) -> list[Box]:
    return [(y, min(y + tile, height), x, min(x + tile, width))
            for y in tile_starts(height, tile, overlap) for x in tile_starts(width, tile, overlap)]


def _ramp(length: int, start: int, stop: int, total: int, overlap: int, device: torch.device,
          dtype: torch.dtype) -> torch.Tensor:
    """1-D blend weight over a tile: rises over ``overlap`` pixels at inner edges, flat at image borders."""
    w = torch.ones(length, device=device, dtype=dtype)
    if overlap <= 0:
        return w
    ramp = (torch.arange(overlap, device=device, dtype=dtype) + 0.5) / overlap
    n = min(overlap, length)
    if start > 0:
        w[:n] = torch.minimum(w[:n], ramp[:n])
    if stop < total:
        w[-n:] = torch.minimum(w[-n:], ramp[:n].flip(0))
    return w


def tiled_gradient(
    grad_fn: Callable[[torch.Tensor], tuple[torch.Tensor, float]],
    x: torch.Tensor,
    tile: int,
    overlap: int,
) -> tuple[torch.Tensor, float]:
    """Gradient of an objective over ``x`` ``(N, C, H, W)`` computed tile by tile.

    ``grad_fn(tile) -> (grad of the tile, objective value)``. Overlapping tiles are blended with linear ramps
    (weights sum to 1 everywhere), so no tile edge shows. Returns the full gradient and the mean tile value.
    """
    h, w = x.shape[-2:]
    boxes = tile_boxes(h, w, tile, overlap)
    if len(boxes) == 1:
        return grad_fn(x)
    grad = torch.zeros_like(x)
    weight = torch.zeros((h, w), device=x.device, dtype=x.dtype)
    values = []
    for y0, y1, x0, x1 in boxes:
        g, v = grad_fn(x[..., y0:y1, x0:x1])
        wy = _ramp(y1 - y0, y0, y1, h, overlap, x.device, x.dtype)
        wx = _ramp(x1 - x0, x0, x1, w, overlap, x.device, x.dtype)
        win = wy[:, None] * wx[None, :]
        grad[..., y0:y1, x0:x1] += g * win
        weight[y0:y1, x0:x1] += win
        values.append(v)
    return grad.div_(weight), sum(values) / len(values)
