"""The contact-sheet grid: row-major placement on a white ground with ``pad`` pixels between pictures."""

from __future__ import annotations

import torch

from mmdream.ops.grid import image_grid


def test_pictures_go_row_by_row_on_white() -> None:
    pictures = torch.arange(5, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 3, 32, 32) / 10
    grid = image_grid(pictures)  # 5 pictures: ceil(sqrt 5) = 3 columns, 2 rows
    assert grid.shape == (1, 3, 2 * 34 + 2, 3 * 34 + 2) and float(grid[0, :, 0, 0].min()) == 1.0
    for i in range(5):
        top, left = 2 + (i // 3) * 34, 2 + (i % 3) * 34
        assert torch.equal(grid[0, :, top:top + 32, left:left + 32], pictures[i])
    assert float(grid[0, :, 36:68, 70:102].min()) == 1.0  # the sixth place stays white
    assert image_grid(pictures, columns=5, pad=0).shape == (1, 3, 32, 160)
