"""Temporally coherent Deep Dream of a frame sequence.

The first frame (and the first after a scene cut) is dreamed as a still. Every later frame starts from the
previous *dreamed* frame's detail (dream minus source), carried by the optical flow between the source frames,
scaled by ``blend`` where the flow is reliable, kept in place where the flow is unreliable but the source did not
change (flat colour, a still camera) and dropped elsewhere (disocclusions, motion boundaries); it then takes a few
full-resolution ascent steps (warm start). An optional quadratic penalty pulls those pixels toward the carried
previous dream (temporal loss), and the dream's strength is held at the level of the still that began the shot
(lifted to ``min_strength`` if fainter), so it neither fades nor grows over long clips. A per-frame *drive* (e.g.
the soundtrack's loudness, :mod:`mmdream.schedules.drive`) multiplies that level frame by frame. On the carried
pixels, what the warm-start steps renew (the detail's change beyond a scaling of the carried detail as a whole) is
held to ``detail_budget`` grey levels a frame, so new detail grows in over frames instead of flickering, while the
drive's scaling (the pulse, budgeted by the drive schedule) passes.

Frames are RGB ``(3, H, W)`` in [0, 1]. The carried state is quantised to the levels a frame file holds (8 bits,
or 16 for 16-bit frame sequences), so a run resumed from saved frames equals an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from mmdream.backbones.base import Backbone
from mmdream.dream.image import DreamParams, dream_image, dream_step
from mmdream.errors import ParameterError
from mmdream.objectives.terms import Objective
from mmdream.ops.flow import FLOW_METHODS, motion, warp
from mmdream.options import Options, option
from mmdream.progress import ProgressFn, Tracker


@dataclass(frozen=True)
class VideoParams(Options):
    """Options of a film dream beyond the still-image ones (:class:`DreamParams` dreams each shot's first frame)."""

    frame_steps: int = option(2, "ascent steps per frame after a shot's first frame (warm start from the previous "
                                 "dream)", ge=0, le=1000)
    frame_step_size: float = option(0.003, "pixel change per warm-start step ([0, 1] units); the new detail per "
                                           "frame", gt=0.0, le=1.0)
    blend: float = option(0.98, "share of the previous frame's dream carried along the flow where it is reliable (0: "
                                "independent frames)", ge=0.0, le=1.0)
    temporal_weight: float = option(0.2, "pull per step toward the warped previous dream on reliable pixels "
                                         "(temporal loss; 0: off)", ge=0.0, le=1.0)
    flow: str = option("dis", "optical flow between source frames", choices=FLOW_METHODS)
    hold_strength: bool = option(True, "hold the dream's strength at the level of the shot's first frame (no "
                                       "fading, no growth)")
    cut_reliable: float = option(0.35, "scene cut when fewer pixels than this share have a consistent flow", ge=0.0,
                                 le=1.0)
    cut_error: float = option(0.12, "scene cut when the flow-compensated difference of reliable pixels exceeds this "
                                    "([0, 1] units)", gt=0.0, le=1.0)
    still_tolerance: float = option(3.0, "where the flow is unreliable, pixels whose source changed by at most this "
                                         "(0-255 scale) keep their detail in place (flat colour, still camera)",
                                    ge=0.0, le=255.0)
    min_strength: float = option(9.0, "a shot whose first dream is fainter than this mean |dream - source| (0-255 "
                                      "scale) has its detail amplified to it, so every film's dream is visible (0: "
                                      "off)", ge=0.0, le=64.0, unit="(0-255 scale)")
    detail_budget: float = option(0.3, "most mean change per frame of the carried dream detail beyond its scaling "
                                       "(the drive's pulse), on the pixels it was carried to (0: off): the "
                                       "warm-start steps' new detail grows in over frames instead of flickering",
                                  ge=0.0, le=255.0, unit="(0-255 scale)")


@runtime_checkable
class FrameObjectives(Protocol):
    """Per-frame objectives (e.g. :class:`mmdream.schedules.drive.ChromaObjectives`): ``at(index)`` is frame ``index``'s."""

    @property
    def layers(self) -> tuple[str, ...]: ...

    def at(self, index: int) -> Objective: ...


@dataclass(frozen=True)
class TemporalState:
    """What frame t needs from frame t-1: its source and dream ``(3, H, W)``, the shot's target strength and the
    frame's drive."""

    index: int
    source: torch.Tensor
    dream: torch.Tensor
    target_strength: float
    drive: float = 1.0


@dataclass(frozen=True)
class FrameInfo:
    """Per-frame facts: ``cut`` (dreamed as a still), share of reliable flow, strength = mean |dream - source|,
    the shot's target strength and this frame's drive (its target is their product), and the objective (of the
    last ascent step's jittered input on warm-started frames)."""

    index: int
    cut: bool
    reliable: float
    strength: float
    target_strength: float
    objective: float
    drive: float = 1.0


def quantize(x: torch.Tensor, levels: int = 255) -> torch.Tensor:
    """Round to the levels a frame file stores (255: 8 bits, 65535: 16 bits), so the carried state survives a save
    and reload."""
    return x.mul(levels).round_().div_(levels)


def strength(dream: torch.Tensor, source: torch.Tensor) -> float:
    """Mean absolute dream detail |dream - source| in [0, 1] units."""
    return float((dream - source).abs().mean())


def dream_frame(
    source: torch.Tensor,
    backbone: Backbone,
    objective: Objective,
    still: DreamParams,
    params: VideoParams,
    state: TemporalState | None,
    index: int,
    drive: float = 1.0,
    levels: int = 255,
) -> tuple[TemporalState, FrameInfo]:
    """Dream frame ``index`` (source ``(3, H, W)``) given the previous frame's state (``None``: first frame).

    ``drive``: this frame's strength multiplier (1: the shot's own strength). ``levels``: the dream is rounded to
    these (255: 8-bit frame files, 65535: 16-bit)."""
    seed = still.seed + index
    continues = state is not None and state.index == index - 1 and state.source.shape == source.shape
    mot = None  # no motion: a shot's first frame, or independent frames (blend 0)
    kept = None  # pixels whose flow is unreliable but whose source did not change: their detail stays in place
    if state is not None and continues and params.blend > 0:
        mot = motion(state.source, source, params.flow, min_reliable=params.cut_reliable,
                     max_error=params.cut_error)
        kept = (1.0 - mot.mask) * ((source - state.source).abs().amax(0) <= params.still_tolerance / 255.0)
        if mot.cut and mot.error <= params.cut_error and float((mot.mask + kept).mean()) >= params.cut_reliable:
            mot = dataclasses.replace(mot, cut=False)  # flat colour (no flow to trust) is not a new scene
    shot_start = not continues or (mot is not None and mot.cut)
    reliable = 1.0 if mot is None else mot.reliable
    if state is None or mot is None or mot.cut:
        dream = dream_image(source[None], backbone, objective, dataclasses.replace(still, seed=seed))[0]
        dream = quantize(dream, levels)
        own = strength(dream, source)
        target = max(own, params.min_strength / 255.0)
        for _ in range(3 if target > own else drive != 1.0):  # again where clamping to [0, 1] cost strength
            dream = quantize(_hold(dream, source, target * drive, math.inf), levels)
        value = objective.evaluate(backbone, dream[None])
    else:
        assert kept is not None
        detail = state.dream - state.source
        # Where the flow is unreliable but the source did not change (flat colour, a locked-off camera), the detail
        # stays where it was instead of being dropped and dreamed anew (which would read as flicker).
        carried = warp(detail, mot.backward) * mot.mask + detail * kept
        target_image = source + carried
        x = (source + params.blend * carried).clamp(0.0, 1.0)[None]
        # Warm-start steps keep their size under robust views: the hold, not the steps, keeps the strength.
        step_params = dataclasses.replace(still, step_size=params.frame_step_size, robust_gain=1.0, seed=seed)
        generator = torch.Generator().manual_seed(seed)
        pull = params.temporal_weight * (mot.mask + kept)
        value = objective.evaluate(backbone, x) if params.frame_steps == 0 else 0.0
        for _ in range(params.frame_steps):
            x, value = dream_step(x, backbone, objective, step_params, generator)
            if params.temporal_weight > 0:
                x = (x - pull * (x - target_image)).clamp(0.0, 1.0)
        dream, target = x[0], state.target_strength
        if params.hold_strength or drive != 1.0 or state.drive != 1.0:
            dream = _hold(dream, source, target * drive, 1.05 * max(1.0, drive / max(state.drive, 1e-6)))
        if params.detail_budget > 0:
            dream = _limit_renewal(dream, source, carried, mot.mask + kept, params.detail_budget / 255.0)
        dream = quantize(dream, levels)
    info = FrameInfo(index, shot_start, reliable, strength(dream, source), target, value, drive)
    return TemporalState(index, source, dream, target, drive), info


def _hold(dream: torch.Tensor, source: torch.Tensor, target: float, lift: float = 1.05) -> torch.Tensor:
    """Scale the detail so that its strength does not exceed ``target`` (and lift it by at most ``lift`` a frame:
    5% unless the drive rises)."""
    current = strength(dream, source)
    if current <= 0:
        return dream
    gain = min(target / current, lift)
    return (source + gain * (dream - source)).clamp(0.0, 1.0)


def _limit_renewal(dream: torch.Tensor, source: torch.Tensor, carried: torch.Tensor, weight: torch.Tensor,
                   budget: float) -> torch.Tensor:
    """Shrink the renewal of the detail of ``dream`` ``(3, H, W)`` on the pixels it was carried to (``weight``
    ``(H, W)`` in [0, 1]) so that its mean there is at most ``budget`` ([0, 1] units; per pixel the channel mean, as
    the flicker measure counts it). The renewal is the change from the ``carried`` detail ``(3, H, W)`` scaled as a
    whole (least-squares gain over the unclipped pixels: the hold's and the drive's scaling stays) and clipped to
    the pixel range. Other pixels stay."""
    fit = weight * ((dream > 0) & (dream < 1)).all(0)  # the gain from pixels the pixel range did not clip
    size = float((carried * carried * fit).sum())
    gain = float(((dream - source) * carried * fit).sum()) / size if size > 0 else 1.0
    renewal = (dream - (source + gain * carried).clamp(0.0, 1.0)) * weight
    mean = float(renewal.abs().mean(0).sum() / weight.sum().clamp_min(1.0))
    if mean <= budget:
        return dream
    return dream - (1.0 - budget / mean) * renewal  # between dream and the scaled carried detail: in [0, 1]


def dream_frames(
    frames: Iterable[torch.Tensor],
    backbone: Backbone,
    objective: Objective | FrameObjectives,
    still: DreamParams = DreamParams(),
    params: VideoParams = VideoParams(),
    *,
    start: int = 0,
    state: TemporalState | None = None,
    drive: Sequence[float] | None = None,
    total: int = 0,
    done: int = 0,
    levels: int = 255,
    progress: ProgressFn | None = None,
) -> Iterator[tuple[torch.Tensor, FrameInfo]]:
    """Dream a sequence of source frames ``(3, H, W)`` (indices ``start, start + 1, ...``), yielding each dream.

    ``objective``: one for all frames, or per-frame ones (:class:`FrameObjectives`). ``state``: the previous
    frame's state when resuming at ``start``. ``drive``: per-frame strength multipliers
    indexed by frame index (:func:`mmdream.schedules.drive.drive_schedule`; None: all 1). Progress counts frames: ``done`` of
    ``total`` were finished before this call (a resumed job). ``levels``: dreams are rounded to these (255: 8-bit
    frame files, 65535: 16-bit).
    """
    still.validate()
    params.validate()
    tracker = Tracker(total, progress, stage="frames", done=done)
    for index, source in enumerate(frames, start=start):
        if source.dim() != 3 or source.shape[0] != 3:
            raise ParameterError(f"frames must be (3, H, W) RGB, got shape {tuple(source.shape)}")
        if drive is not None and index >= len(drive):
            raise ParameterError(f"the drive schedule has {len(drive)} frames; frame {index} has none")
        frame_objective = objective.at(index) if isinstance(objective, FrameObjectives) else objective
        state, info = dream_frame(source, backbone, frame_objective, still, params, state, index,
                                  1.0 if drive is None else float(drive[index]), levels)
        yield state.dream, info
        tracker.advance(info.objective)  # after the consumer has handled (saved) the frame
