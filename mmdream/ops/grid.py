"""A contact-sheet grid of pictures (GAN samples, draft frames)."""

from __future__ import annotations

import math

import torch


def image_grid(images: torch.Tensor, columns: int | None = None, pad: int = 2) -> torch.Tensor:
    """Images ``(N, 3, H, W)`` laid out row by row on a white grid ``(1, 3, rows·(H+pad)+pad, cols·(W+pad)+pad)``;
    ``columns`` defaults to ceil(sqrt N)."""
    n, c, h, w = images.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = torch.ones(1, c, rows * (h + pad) + pad, cols * (w + pad) + pad, dtype=images.dtype)
    for i in range(n):
        top, left = pad + (i // cols) * (h + pad), pad + (i % cols) * (w + pad)
        out[0, :, top:top + h, left:left + w] = images[i]
    return out
