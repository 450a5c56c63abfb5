"""Zoom dreams: each frame is a dream of the previous frame moved by a small zoom / rotation / shift.

A frame ``(3, H, W)`` in [0, 1] is moved about its centre (:func:`move`: bicubic resampling, mirrored borders),
dreamed for a few steps over a few octaves (the still dream's algorithm, :func:`mmdream.dream.image.dream_image`,
so any image objective works), then held to the film's first frame's look by a *colour anchor*
(:func:`anchor`): each channel's mean and standard deviation are pulled toward the first frame's, and values past
``knee`` are compressed smoothly toward 0 and 1 (a soft clip) instead of piling up there. Without the anchor a long
zoom runs away: the dream's gradient steps keep adding contrast and saturation until the picture is clipped noise.

Motion and strength are per-frame schedules (:func:`zoom_schedule`) so that a sound can drive them
(:mod:`mmdream.schedules.drive`): frame t moves by ``zoom ** (d_t / fps)`` and dreams with step size ``frame_step_size * d_t``
for a drive ``d_t`` (mean 1). Frames are quantised to 8 bits, what a frame file holds, so a resumed render equals
an uninterrupted one.

>>> sched = zoom_schedule(250, 25.0, ZoomParams(zoom=1.3))
>>> ref = channel_stats(first)                       # first: the dreamed start frame (3, H, W)
>>> frame = dream_zoom_frame(prev, backbone, objective, DreamParams(), ZoomParams(), sched.at(t), ref, t)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mmdream.backbones.base import Backbone
from mmdream.dream.image import DreamParams, dream_image
from mmdream.dream.temporal import quantize
from mmdream.errors import ParameterError
from mmdream.objectives.terms import Objective
from mmdream.options import Options, option

__all__ = ["ZoomParams", "ZoomStep", "ZoomSchedule", "zoom_schedule", "move", "channel_stats", "anchor",
           "soft_clip", "dream_start", "dream_zoom_frame"]


@dataclass(frozen=True)
class ZoomParams(Options):
    """How each frame moves and how much it dreams (rates per second, so a film at another frame rate moves alike)."""

    zoom: float = option(1.25, "scale per second (above 1 zooms in, below 1 out)", ge=0.2, le=5.0)
    rotate: float = option(0.0, "rotation per second, degrees (clockwise)", ge=-360.0, le=360.0, unit="degrees")
    shift_x: float = option(0.0, "shift per second, share of the width (content moves right for positive values)",
                            ge=-1.0, le=1.0)
    shift_y: float = option(0.0, "shift per second, share of the height (content moves down for positive values)",
                            ge=-1.0, le=1.0)
    frame_steps: int = option(3, "ascent steps per octave on each frame after the first", ge=0, le=1000)
    frame_octaves: int = option(2, "octaves dreamed on each frame after the first", ge=1, le=12)
    frame_step_size: float = option(0.005, "pixel change per step on frames after the first: the zoom's dream "
                                           "strength", gt=0.0, le=1.0)
    anchor: float = option(1.0, "pull of each channel's mean and std toward the first frame's, per frame (0: off; "
                                "the zoom then runs away)", ge=0.0, le=1.0)
    knee: float = option(0.85, "soft clip: values above KNEE (and below 1 - KNEE) are compressed smoothly toward 1 "
                               "(0) instead of clipping (1: hard clip only)", gt=0.5, le=1.0)


@dataclass(frozen=True)
class ZoomStep:
    """How frame t is made from frame t-1: ``scale`` (>1: zoom in), ``angle`` (degrees), ``shift`` (dx, dy as
    shares of the frame) and ``strength`` (the drive: multiplies the step size)."""

    scale: float
    angle: float
    shift: tuple[float, float]
    strength: float


@dataclass(frozen=True)
class ZoomSchedule:
    """Per-frame motion and strength ``(T,)`` arrays (frame 0's entries are unused: it is the dreamed still)."""

    scale: np.ndarray
    angle: np.ndarray
    shift: np.ndarray  # (T, 2)
    strength: np.ndarray

    def __len__(self) -> int:
        return len(self.scale)

    def at(self, t: int) -> ZoomStep:
        return ZoomStep(float(self.scale[t]), float(self.angle[t]), (float(self.shift[t, 0]),
                                                                     float(self.shift[t, 1])),
                        float(self.strength[t]))


def zoom_schedule(frames: int, fps: float, params: ZoomParams, drive: Sequence[float] | None = None) -> ZoomSchedule:
    """The schedule of a ``frames``-frame zoom at ``fps``: the motion per second spread over the frames, each
    frame's share (and its dream strength) multiplied by ``drive[t]`` (None: all 1)."""
    params.validate()
    if frames < 1 or not 0 < fps <= 240:
        raise ParameterError(f"a zoom needs at least one frame and a rate above 0 up to 240 fps; got {frames} "
                             f"frames at {fps} fps")
    d = np.ones(frames) if drive is None else np.asarray(drive, dtype=np.float64)
    if d.shape != (frames,) or not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ParameterError(f"the drive must be {frames} finite non-negative values; got shape {d.shape}")
    per = d / fps  # seconds of motion each frame makes
    shift = np.stack([params.shift_x * per, params.shift_y * per], axis=1)
    return ZoomSchedule(np.exp(math.log(params.zoom) * per), params.rotate * per, shift, d)


def move(x: torch.Tensor, step: ZoomStep) -> torch.Tensor:
    """``x`` ``(N, C, H, W)`` zoomed by ``step.scale`` about its centre, rotated by ``step.angle`` and shifted by
    ``step.shift`` (bicubic, mirrored borders, clamped to [0, 1])."""
    n, _, h, w = x.shape
    a = math.radians(step.angle)
    cos, sin = math.cos(a) / step.scale, math.sin(a) / step.scale
    # Output pixel p samples the input at R(-angle) p / scale - shift, in pixels about the centre; grid_sample's
    # coordinates are [-1, 1] across each axis, so rotations are taken through pixel units (non-square frames).
    theta = torch.tensor([[cos, sin * h / w, -2.0 * step.shift[0]],
                          [-sin * w / h, cos, -2.0 * step.shift[1]]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(n, 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bicubic", padding_mode="reflection", align_corners=False).clamp_(0.0, 1.0)


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation ``(C,)`` of ``x`` ``(C, H, W)``."""
    flat = x.reshape(x.shape[0], -1)
    return flat.mean(dim=1), flat.std(dim=1)


def soft_clip(x: torch.Tensor, knee: float) -> torch.Tensor:
    """Values above ``knee`` approach 1 (below ``1 - knee`` approach 0) along a tanh curve with slope 1 at the
    knee; values in between are unchanged (``knee`` 1: a hard clip)."""
    if knee >= 1.0:
        return x.clamp(0.0, 1.0)
    room = 1.0 - knee
    high = knee + room * torch.tanh((x - knee) / room)
    low = room - room * torch.tanh((room - x) / room)
    return torch.where(x > knee, high, torch.where(x < room, low, x))


def anchor(x: torch.Tensor, reference: tuple[torch.Tensor, torch.Tensor], amount: float, knee: float) -> torch.Tensor:
    """``x`` ``(3, H, W)`` with each channel's mean and std moved ``amount`` of the way to ``reference``'s, then
    :func:`soft_clip`'s."""
    if amount > 0:
        mean, std = channel_stats(x)
        ref_mean, ref_std = reference
        matched = (x - mean[:, None, None]) * (ref_std / std.clamp_min(1e-6))[:, None, None] + ref_mean[:, None, None]
        x = x + amount * (matched - x)
    return soft_clip(x, knee)


def dream_start(image: torch.Tensor, backbone: Backbone, objective: Objective, still: DreamParams,
                params: ZoomParams) -> torch.Tensor:
    """The zoom's first frame ``(3, H, W)``: ``image`` ``(3, H, W)`` dreamed as a still, soft-clipped, quantised
    (its :func:`channel_stats` are the anchor's reference)."""
    return quantize(soft_clip(dream_image(image[None], backbone, objective, still)[0], params.knee))


def dream_zoom_frame(prev: torch.Tensor, backbone: Backbone, objective: Objective, still: DreamParams,
                     params: ZoomParams, step: ZoomStep, reference: tuple[torch.Tensor, torch.Tensor], index: int
                     ) -> tuple[torch.Tensor, float]:
    """Frame ``index`` ``(3, H, W)`` from the previous frame ``prev``: moved by ``step``, dreamed
    ``params.frame_octaves`` × ``params.frame_steps`` steps (``still``'s other options, seed ``still.seed +
    index``), anchored to ``reference`` (:func:`channel_stats` of the first frame) and quantised; and the dream's
    detail on it (mean |dreamed - moved|, before the anchor: the realised strength)."""
    moved = move(prev[None], step)
    dreamed = moved
    if params.frame_steps > 0 and step.strength > 0:
        frame_params = dataclasses.replace(still, steps=params.frame_steps, octaves=params.frame_octaves,
                                           step_size=min(1.0, params.frame_step_size * step.strength),
                                           seed=still.seed + index, preserve_colors="none")
        dreamed = dream_image(moved, backbone, objective, frame_params)
    detail = float((dreamed - moved).abs().mean())
    return quantize(anchor(dreamed[0], reference, params.anchor, params.knee)), detail
