"""Temporal coherence on a synthetic clip (a textured square moving over a textured background), real VGG16."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from mmdream.eval import metrics
from mmdream.dream.image import DreamParams
from mmdream.dream.temporal import TemporalState, VideoParams, dream_frames, quantize
from mmdream.errors import ParameterError
from mmdream.objectives.terms import build_objective
from mmdream.ops.flow import motion, warp

STILL = DreamParams(steps=10, octaves=2, octave_scale=1.5)


def texture(h: int, w: int, seed: int, cells: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, h // cells, w // cells, generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def clip(n: int, cut_at: int | None = None) -> list[torch.Tensor]:
    """``n`` frames ``(3, 96, 128)``: a square moving 3 px right per frame; a new scene from ``cut_at`` on."""
    background, square = texture(96, 128, 1), texture(32, 32, 2, cells=4)
    frames = []
    for t in range(n):
        frame = (texture(96, 128, 9) if cut_at is not None and t >= cut_at else background).clone()
        frame[:, 30:62, 20 + 3 * t:52 + 3 * t] = square
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def runs(vgg16):  # type: ignore[no-untyped-def]
    objective = build_objective(vgg16, layers="relu4_3")
    source = clip(12)
    coherent = [d for d, _ in dream_frames(source, vgg16, objective, STILL, VideoParams())]
    independent = [d for d, _ in dream_frames(source, vgg16, objective, STILL, VideoParams(blend=0.0))]
    return source, coherent, independent


def test_coherent_dream_flickers_far_less_than_independent_frames(runs) -> None:  # type: ignore[no-untyped-def]
    source, coherent, independent = runs
    s_coh, s_ind = metrics.strengths(coherent, source), metrics.strengths(independent, source)
    assert sum(s_coh) / len(s_coh) * 255 > 8  # clearly visible (measured: 10.5 of 255)
    assert 0.75 < (sum(s_coh) / sum(s_ind)) < 1.33  # comparable strength (measured: 0.99)
    f_coh, f_ind = metrics.flicker(coherent, source), metrics.flicker(independent, source)
    # Measured 1.84 against 10.8. The source is nearly static, so the ratio to it is larger than on a real film
    # (bench/video_quality.py measures the shared clip against the 1.5 bound).
    assert f_coh < f_ind / 3 and f_coh < 2.5


def test_no_fading_no_growth_no_brightening(runs) -> None:  # type: ignore[no-untyped-def]
    source, coherent, _ = runs
    assert 0.6 < metrics.tenths_ratio(metrics.strengths(coherent, source)) < 2.0
    assert metrics.luminance_drift(coherent, source) < 0.02


def test_scene_cut_restarts_the_dream(vgg16) -> None:  # type: ignore[no-untyped-def]
    objective = build_objective(vgg16, layers="relu4_3")
    infos = [i for _, i in dream_frames(clip(6, cut_at=3), vgg16, objective, STILL, VideoParams(frame_steps=1))]
    assert [i.cut for i in infos] == [True, False, False, True, False, False]
    assert infos[4].target_strength == infos[3].strength != infos[0].target_strength


def test_resuming_from_a_saved_frame_equals_an_uninterrupted_run(vgg16) -> None:  # type: ignore[no-untyped-def]
    objective = build_objective(vgg16, layers="relu4_3")
    source, params = clip(5), VideoParams(frame_steps=2, temporal_weight=0.2)
    whole = list(dream_frames(source, vgg16, objective, STILL, params))
    prev_dream, prev_info = whole[2]
    reloaded = quantize(prev_dream.clone())  # what a PNG holds
    state = TemporalState(2, source[2], reloaded, prev_info.target_strength)
    rest = list(dream_frames(source[3:], vgg16, objective, STILL, params, start=3, state=state))
    for (a, ia), (b, ib) in zip(whole[3:], rest):
        assert torch.equal(a, b) and ia == ib


def test_temporal_weight_pulls_toward_the_warped_previous_dream(vgg16) -> None:  # type: ignore[no-untyped-def]
    objective = build_objective(vgg16, layers="relu4_3")
    source = clip(4)
    loose = [d for d, _ in dream_frames(source, vgg16, objective, STILL, VideoParams(hold_strength=False))]
    tight = [d for d, _ in dream_frames(source, vgg16, objective, STILL,
                                        VideoParams(hold_strength=False, temporal_weight=0.5))]
    assert metrics.warped_difference(tight, source) < metrics.warped_difference(loose, source)
    assert dataclasses.replace(VideoParams(), temporal_weight=0.5).validate().temporal_weight == 0.5


def test_driven_strength_follows_the_drive(vgg16) -> None:  # type: ignore[no-untyped-def]
    """A per-frame drive (mmdream.schedules.drive) multiplies the shot's strength frame by frame, falling and rising."""
    source = clip(16)
    drive = [1.0] * 4 + [0.4] * 4 + [1.6] * 4 + [1.0] * 4
    out = list(dream_frames(source, vgg16, build_objective(vgg16, layers="relu4_3"), STILL, VideoParams(),
                            drive=drive))
    strengths = torch.tensor(metrics.strengths([d for d, _ in out], source))
    assert [info.drive for _, info in out] == drive
    assert torch.corrcoef(torch.stack([torch.tensor(drive), strengths]))[0, 1] > 0.9
    assert strengths[8:12].mean() > 3 * strengths[4:8].mean()
    # The carried detail follows a step of the drive within the step's own frame, up (x4) and down (x0.4): every
    # frame's strength is within 15 % of the shot's strength times its drive (measured: 0.87 at the x4 step, where the
    # detail budget holds back what the hold's lift renews), and within 5 % three frames after each step.
    target = out[0][1].target_strength
    ratios = strengths / (target * torch.tensor(drive))
    assert float(ratios.min()) > 0.85 and float(ratios.max()) < 1.1, ratios
    assert all(abs(float(ratios[i]) - 1) < 0.05 for i in (3, 7, 11, 15)), ratios


def cartoon(n: int) -> list[torch.Tensor]:
    """``n`` frames ``(3, 72, 128)`` of flat colour: sky over ground, a flat red square moving 4 px right a frame, and
    a grain of one 8-bit level that changes every frame (as a video codec's)."""
    frames, g = [], torch.Generator().manual_seed(3)
    for t in range(n):
        frame = torch.empty(3, 72, 128)
        frame[:, :48] = torch.tensor([0.45, 0.75, 0.95]).view(3, 1, 1)
        frame[:, 48:] = torch.tensor([0.35, 0.7, 0.25]).view(3, 1, 1)
        frame[:, 20:40, 10 + 4 * t:30 + 4 * t] = torch.tensor([0.9, 0.15, 0.15]).view(3, 1, 1)
        frames.append(quantize(frame + torch.randint(-1, 2, frame.shape, generator=g) / 255.0))
    return frames


def test_faint_dreams_are_lifted_to_min_strength_and_kept_on_flat_colour(vgg16) -> None:  # type: ignore[no-untyped-def]
    """A faint still (2 steps) on grainy flat colour, where the flow is unreliable: the default film holds every
    frame at ``min_strength`` in one shot; without the floor it is fainter, and without keeping the detail in place
    where the source did not change it fades (and a spurious cut restarts it)."""
    objective = build_objective(vgg16, layers="relu4_3")
    faint, source = DreamParams(steps=2, octaves=1), cartoon(8)

    def run(params: VideoParams) -> tuple[list[float], list[bool]]:
        infos = [i for _, i in dream_frames(source, vgg16, objective, faint, params)]
        return [255 * i.strength for i in infos], [i.cut for i in infos]

    floor = VideoParams().min_strength
    default, cuts = run(VideoParams())
    assert min(default) > 0.95 * floor and cuts == [True] + [False] * 7  # measured: 8.86 to 9.0 of 9
    assert max(run(VideoParams(min_strength=0.0))[0]) < 0.3 * floor  # measured: 1.3
    dropped, _ = run(VideoParams(still_tolerance=0.0))
    assert dropped[3] < 0.6 * default[3]  # measured: 3.5 against 9.0


def renewals(dreams: list[torch.Tensor], source: list[torch.Tensor], params: VideoParams) -> list[float]:
    """Per warm-started frame, the mean change (0-255) of its detail from the carried previous detail scaled as a
    whole (least squares over unclipped pixels) and clipped to the pixel range, on the pixels the detail was carried to (as the temporal
    dream decides them)."""
    out = []
    for t in range(1, len(dreams)):
        mot = motion(source[t - 1], source[t], params.flow, min_reliable=params.cut_reliable,
                     max_error=params.cut_error)
        kept = (1.0 - mot.mask) * ((source[t] - source[t - 1]).abs().amax(0) <= params.still_tolerance / 255.0)
        weight, previous = mot.mask + kept, dreams[t - 1] - source[t - 1]
        carried = warp(previous, mot.backward) * mot.mask + previous * kept
        fit = weight * ((dreams[t] > 0) & (dreams[t] < 1)).all(0)
        gain = float(((dreams[t] - source[t]) * carried * fit).sum() / (carried * carried * fit).sum())
        change = ((dreams[t] - (source[t] + gain * carried).clamp(0, 1)) * weight).abs().mean(0).sum() / weight.sum()
        out.append(255 * float(change))
    return out


def test_detail_budget_bounds_the_renewal_of_carried_detail_but_not_the_drive(vgg16) -> None:  # type: ignore[no-untyped-def]
    """The warm-start steps' new detail on carried pixels changes by at most ``detail_budget`` a frame (16-bit
    frames: no 8-bit rounding on top); without the budget it changes far more. The drive's scaling is not the
    renewal: a driven film still follows its drive."""
    objective = build_objective(vgg16, layers="relu4_3")
    source = clip(10)
    drive = [1.0] * 3 + [0.5] * 3 + [1.5] * 4

    def run(params: VideoParams) -> tuple[list[torch.Tensor], list[float]]:
        dreams = [d for d, _ in dream_frames(source, vgg16, objective, STILL, params, drive=drive, levels=65535)]
        return dreams, renewals(dreams, source, params)

    budget = VideoParams()
    bounded, renewal = run(budget)
    _, free = run(VideoParams(detail_budget=0.0))
    assert max(renewal) <= 1.01 * budget.detail_budget, renewal
    assert sum(free) / len(free) > 1.4 * budget.detail_budget, free  # measured: 0.5 a frame, 1.0 at the x3 step
    strengths = torch.tensor(metrics.strengths(bounded, source))
    assert torch.corrcoef(torch.stack([torch.tensor(drive), strengths]))[0, 1] > 0.9
    with pytest.raises(ParameterError, match="detail_budget"):
        VideoParams(detail_budget=-1.0).validate()
