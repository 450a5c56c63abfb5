"""The zoom dream's parts: the move (exact on ramps and rotations), the schedule, the soft clip and colour anchor,
and the anchor's point: without it a zoom runs away, with it the first frame's look holds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmdream.dream.image import DreamParams
from mmdream.dream.zoom import (ZoomParams, ZoomStep, anchor, channel_stats, dream_start, dream_zoom_frame, move,
                                soft_clip, zoom_schedule)
from mmdream.errors import ParameterError
from mmdream.objectives.terms import build_objective


def still(scale: float = 1.0, angle: float = 0.0, shift: tuple[float, float] = (0.0, 0.0)) -> ZoomStep:
    return ZoomStep(scale, angle, shift, 1.0)


def test_move_without_motion_is_the_identity() -> None:
    x = torch.rand(1, 3, 20, 30, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(move(x, still()), x, atol=1e-5)


def test_zoom_spreads_a_ramp_about_the_centre() -> None:
    w = 64
    ramp = ((torch.arange(w) + 0.5) / w).expand(1, 3, 32, w).contiguous()
    out = move(ramp, still(scale=2.0))[0, 0, 16]
    slope = (out[40] - out[24]) / 16  # inside the frame, away from the mirrored borders
    assert slope == pytest.approx(1 / w / 2, rel=1e-3)  # zoomed in 2x: half the slope
    assert out[w // 2 - 1: w // 2 + 1].mean() == pytest.approx(0.5, abs=1e-3)  # the centre stays put


def test_shift_moves_content_right_and_down() -> None:
    x = torch.rand(1, 3, 16, 32, generator=torch.Generator().manual_seed(1))
    out = move(x, still(shift=(0.25, 0.0)))
    assert torch.allclose(out[..., 8:], x[..., :-8], atol=1e-5)
    out = move(x, still(shift=(0.0, 0.25)))
    assert torch.allclose(out[..., 4:, :], x[..., :-4, :], atol=1e-5)


def test_rotation_by_a_quarter_turn_is_clockwise() -> None:
    x = torch.rand(1, 3, 24, 24, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(move(x, still(angle=90.0)), torch.rot90(x, k=-1, dims=(-2, -1)), atol=1e-4)


def test_schedule_spreads_the_motion_per_second_and_follows_the_drive() -> None:
    s = zoom_schedule(25, 25.0, ZoomParams(zoom=1.5, rotate=10.0, shift_x=0.1))
    assert float(np.prod(s.scale)) == pytest.approx(1.5)  # 25 frames at 25 fps: one second of motion
    assert float(s.angle.sum()) == pytest.approx(10.0)
    assert float(s.shift[:, 0].sum()) == pytest.approx(0.1)
    drive = np.linspace(0.2, 1.8, 25)
    d = zoom_schedule(25, 25.0, ZoomParams(zoom=1.5), drive)
    assert np.allclose(np.log(d.scale) / np.log(s.scale), drive)
    assert np.allclose(d.strength, drive)
    with pytest.raises(ParameterError, match="drive must be 25"):
        zoom_schedule(25, 25.0, ZoomParams(), drive[:10])
    with pytest.raises(ParameterError, match="zoom=9"):
        zoom_schedule(25, 25.0, ZoomParams(zoom=9.0))


def test_soft_clip_keeps_the_middle_and_never_reaches_the_ends() -> None:
    x = torch.linspace(-0.5, 1.5, 2001)
    y = soft_clip(x, 0.85)
    middle = (x >= 0.15) & (x <= 0.85)
    assert torch.equal(y[middle], x[middle])
    assert bool((y > 0).all() and (y < 1).all())
    assert bool((y[1:] >= y[:-1]).all())  # monotone
    assert float((y[1:] - y[:-1]).abs().max()) <= float(x[1] - x[0]) + 1e-6  # continuous, slope at most 1


def test_anchor_restores_each_channels_mean_and_std() -> None:
    g = torch.Generator().manual_seed(3)
    reference = (torch.tensor([0.4, 0.5, 0.45]), torch.tensor([0.08, 0.05, 0.06]))
    x = 0.5 + 0.02 * torch.randn(3, 32, 32, generator=g)  # far flatter than the reference
    mean, std = channel_stats(anchor(x, reference, 1.0, 1.0))
    assert torch.allclose(mean, reference[0], atol=2e-3) and torch.allclose(std, reference[1], atol=2e-3)
    half = anchor(x, reference, 0.5, 1.0)
    assert torch.allclose(channel_stats(half)[0], (channel_stats(x)[0] + reference[0]) / 2, atol=2e-3)


def _zoom(effnet, params: ZoomParams, frames: int) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    objective = build_objective(effnet)
    g = torch.Generator().manual_seed(4)
    base = torch.rand(3, 6, 9, generator=g)
    image = torch.nn.functional.interpolate(base[None], size=(42, 64), mode="bicubic")[0].clamp(0, 1)
    dream = DreamParams(steps=2, octaves=1)
    first = dream_start(image, effnet, objective, dream, params)
    out, reference, schedule = [first], channel_stats(first), zoom_schedule(frames, 10.0, params)
    for t in range(1, frames):
        frame, _ = dream_zoom_frame(out[-1], effnet, objective, dream, params, schedule.at(t), reference, t)
        out.append(frame)
    return out


def test_without_the_anchor_a_zoom_runs_away_and_with_it_the_look_holds(effnet) -> None:  # type: ignore[no-untyped-def]
    params = ZoomParams(frame_steps=2, frame_octaves=1, frame_step_size=0.01)
    anchored = _zoom(effnet, params, 24)
    loose = _zoom(effnet, ZoomParams(frame_steps=2, frame_octaves=1, frame_step_size=0.01, anchor=0.0, knee=1.0), 24)

    def drift(frames: list[torch.Tensor]) -> float:
        return abs(float(frames[-1].mean()) / float(frames[0].mean()) - 1)

    def clipped(frame: torch.Tensor) -> float:
        return float(((frame <= 0) | (frame >= 1)).float().mean())

    def contrast_growth(frames: list[torch.Tensor]) -> float:
        return float(frames[-1].std()) / float(frames[0].std())

    assert drift(anchored) <= 0.01 and clipped(anchored[-1]) == 0.0
    assert contrast_growth(anchored) == pytest.approx(1.0, abs=0.02)
    assert contrast_growth(loose) > 1.1 or drift(loose) > 0.04  # the unanchored zoom has run away
    assert bool((anchored[-1] - move(anchored[-2][None], ZoomStep(1.0, 0.0, (0.0, 0.0), 1.0))[0]).abs().mean()
                > 1e-3)  # and the zoom moves and dreams: not a still


def test_dreaming_a_frame_adds_detail_that_grows_with_the_strength(effnet) -> None:  # type: ignore[no-untyped-def]
    objective = build_objective(effnet)
    frame = torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(5))
    reference = channel_stats(frame)
    params = ZoomParams(frame_steps=2, frame_octaves=1)
    details = [dream_zoom_frame(frame, effnet, objective, DreamParams(), params, ZoomStep(1.01, 0.0, (0.0, 0.0), s),
                                reference, 1)[1] for s in (0.5, 1.0, 2.0)]
    assert details[0] < details[1] < details[2]
    assert math.isfinite(details[2]) and details[2] > 0
