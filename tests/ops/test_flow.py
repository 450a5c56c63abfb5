"""Optical flow, warping, occlusion masks and scene cuts on small synthetic frames with known motion."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmdream.ops.flow import consistency_mask, motion, optical_flow, warp


def texture(h: int, w: int, seed: int) -> torch.Tensor:
    """Smooth random colour texture ``(3, h, w)`` in [0, 1] that flow can track."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // 8, w // 8, generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def test_warp_with_integer_flow_shifts_exactly() -> None:
    x = torch.arange(5 * 7, dtype=torch.float32).view(1, 5, 7)
    flow = torch.zeros(2, 5, 7)
    flow[0] = 2.0  # out(y, x) = in(y, x + 2)
    out = warp(x, flow)
    torch.testing.assert_close(out[..., :5], x[..., 2:])
    assert torch.equal(out[..., 5:], x[..., 6:].expand(1, 5, 2))  # border replicated


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_flow_recovers_a_known_shift(method: str) -> None:
    big = texture(120, 160, 0)
    a, b = big[:, 10:106, 10:138], big[:, 8:104, 13:141]  # a(y, x) = b(y + 2, x - 3): flow (dx, dy) = (-3, 2)
    flow = optical_flow(a, b, method)
    inner = flow[:, 16:-16, 16:-16]
    assert abs(float(inner[0].median()) + 3.0) < 0.3 and abs(float(inner[1].median()) - 2.0) < 0.3
    assert float((warp(b, flow) - a)[:, 16:-16, 16:-16].abs().mean()) < 0.01


def moving_square(t: int, h: int = 96, w: int = 128) -> torch.Tensor:
    frame = texture(h, w, 1).clone()
    frame[:, 30:62, 20 + 4 * t:52 + 4 * t] = texture(32, 32, 2)
    return frame


def test_consistency_mask_marks_the_disoccluded_strip() -> None:
    prev, cur = moving_square(0), moving_square(1)
    backward, forward = optical_flow(cur, prev), optical_flow(prev, cur)
    mask = consistency_mask(forward, backward)
    assert float(mask.mean()) > 0.85
    uncovered = mask[34:58, 20:24]  # background the square has just left
    assert float(uncovered.mean()) < float(mask[:, 80:].mean()) - 0.3


def test_motion_detects_cuts_and_not_motion() -> None:
    steady = motion(moving_square(0), moving_square(1))
    cut = motion(moving_square(0), texture(96, 128, 7))
    assert not steady.cut and steady.reliable > 0.85 and steady.error < 0.03
    assert cut.cut
    assert motion(moving_square(0), moving_square(1), "none").reliable == 1.0
