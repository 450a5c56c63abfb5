"""The audio pipeline: the stages every sound path chains, in process, streamed, on Ray and for style transfer.

::

    source (C, n) at rate ── to_network_rate ──► x (m,) mono at the network's rate
        ── plan_dream_segments ──► SegmentPlan (segments, overlap, ascent step)
        ── dream_segment (each on its own: segment_generator(seed, index)) ──► pieces (k,)
        ── join_segments / dream_segments (crossfaded, times mix) ──► change (m,)
        ── from_network_rate (optionally times a gain curve) ──► change (n,) at rate
        ── fit_to_source (the source's loudness, peaks limited) ──► output (C, n)

:func:`dream_audio` and :func:`style_audio` run every stage in memory; :mod:`mmdream.pipelines.audio_file` runs
them as streams over a file (the same functions on blocks, :class:`~mmdream.ops.resample.StreamResampler`);
:mod:`mmdream.pipelines.soundtrack` plans, stores each segment's change and joins them, so the segments can be
dreamed anywhere (the Ray actors call :func:`dream_segment`). Each path gives the same samples as the others.

>>> out = dream_audio(wave, 44100, load_backbone("yamnet"), "Bark", AudioDreamParams(steps=20))
>>> out = style_audio(speech, 48000, loop, 44100, AudioStyleParams())
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mmdream.backbones.base import Backbone
from mmdream.dream.audio import AudioDreamParams, AudioObjective, check_dream, dream_change
from mmdream.dream.audio_style import AudioStyleParams, StyleNetwork, check_style, style_segment, style_target
from mmdream.errors import ParameterError
from mmdream.ops.loudness import fit_level, limiter_window, rms
from mmdream.ops.resample import resample
from mmdream.ops.segments import overlap_add, overlap_add_stream, plan_segments
from mmdream.progress import ProgressFn, Tracker

__all__ = ["mono_mix", "to_network_rate", "SegmentPlan", "segment_bounds", "plan_dream_segments",
           "segment_generator", "dream_segment", "dream_segments", "join_segments", "from_network_rate",
           "fit_to_source", "dream_audio", "style_audio"]


def mono_mix(source: torch.Tensor) -> torch.Tensor:
    """``source`` ``(..., n)`` mixed to mono: the mean over all leading dims, ``(n,)`` float64 on the CPU."""
    return source.detach().reshape(-1, source.shape[-1]).mean(dim=0).double().cpu()


def to_network_rate(source: torch.Tensor, rate: int, net_rate: int, *, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """What the network hears of ``source`` ``(..., n)`` at ``rate``: mixed to mono and resampled to ``net_rate``,
    ``(m,)`` in ``dtype`` on ``device``."""
    x = resample(mono_mix(source).numpy(), rate, net_rate)
    return torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=dtype)


@dataclass(frozen=True)
class SegmentPlan:
    """How a mono clip at the network's rate ``net_rate`` is dreamed: its segments ``[(start, stop)]``, their
    ``overlap`` (samples) and the ascent ``step`` (``step_size`` x the RMS of the whole clip, so every segment
    dreams at the same strength, wherever and in whatever order it is dreamed)."""

    net_rate: int
    segments: tuple[tuple[int, int], ...]
    overlap: int
    step: float

    @property
    def samples(self) -> int:
        return self.segments[-1][1]


def segment_bounds(n: int, rate: int, segment_s: float, overlap_s: float) -> tuple[list[tuple[int, int]], int]:
    """The segments ``[(start, stop)]`` of ``segment_s`` seconds overlapping by ``overlap_s`` that cover ``n``
    samples at ``rate`` (:func:`~mmdream.ops.segments.plan_segments`), and the overlap in samples."""
    overlap = round(overlap_s * rate)
    return plan_segments(n, round(segment_s * rate), overlap), overlap


def plan_dream_segments(n: int, level: float, net_rate: int, params: AudioDreamParams) -> SegmentPlan:
    """The :class:`SegmentPlan` of a clip of ``n`` samples at ``net_rate`` whose RMS is ``level``."""
    segments, overlap = segment_bounds(n, net_rate, params.segment_s, params.overlap_s)
    return SegmentPlan(net_rate, tuple(segments), overlap, params.step_size * max(level, 1e-4))


def segment_generator(seed: int, index: int) -> torch.Generator:
    """The random generator of segment ``index``: a segment's result does not depend on the others."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index) % 2**63)


def dream_segment(piece: torch.Tensor, plan: SegmentPlan, index: int, backbone: Backbone,
                  objective: AudioObjective, params: AudioDreamParams,
                  advance: Callable[[float], None] | None = None) -> torch.Tensor:
    """The change ``(k,)`` that segment ``index`` of ``plan`` dreams from its samples ``piece`` ``(k,)``
    (``x[start:stop]``), found on its own (its own seed), on the backbone's device and in its dtype."""
    a, b = plan.segments[index]
    if piece.shape != (b - a,):
        raise ParameterError(f"segment {index} has {b - a} samples; got a piece of shape {tuple(piece.shape)}")
    weight = next(backbone.module.parameters(), None)
    if weight is not None:
        piece = piece.to(dtype=weight.dtype, device=weight.device)
    return dream_change(piece, backbone, objective, params, step=plan.step,
                        generator=segment_generator(params.seed, index), advance=advance)


def dream_segments(read: Callable[[int, int], torch.Tensor], n: int, level: float, backbone: Backbone,
                   objective: AudioObjective, params: AudioDreamParams, *,
                   progress: ProgressFn | None = None) -> Iterator[torch.Tensor]:
    """The dreamed change of a mono clip ``x`` ``(n,)`` at ``backbone.sample_rate``, times ``mix``, as consecutive
    stretches ``(k,)`` that concatenate to ``(n,)``: :func:`join_segments` of every :func:`dream_segment`, taken
    as they come (:func:`~mmdream.ops.segments.overlap_add_stream`), so memory is bounded by a segment.

    ``read(a, b)`` returns ``x[a:b]`` (on the backbone's device, in its dtype); ``level`` is the RMS of all of
    ``x`` (each step adds ``step_size x level``). Progress: one event per ascent step, ``segments x steps``.
    """
    plan = plan_dream_segments(n, level, backbone.sample_rate or 16000, params)
    tracker = Tracker(len(plan.segments) * params.steps, progress, stage="audio dream")

    def pieces() -> Iterator[torch.Tensor]:
        for i, (a, b) in enumerate(plan.segments):
            stage = f"segment {i + 1}/{len(plan.segments)}"
            yield dream_segment(read(a, b), plan, i, backbone, objective, params,
                                advance=lambda value, stage=stage: tracker.advance(value, stage=stage))

    for part in overlap_add_stream(pieces(), n, plan.overlap):
        yield part * params.mix


def join_segments(pieces: Sequence[torch.Tensor], plan: SegmentPlan, mix: float) -> torch.Tensor:
    """The change ``(plan.samples,)`` of every segment's ``pieces`` (in order), crossfaded, times ``mix``."""
    if len(pieces) != len(plan.segments):
        raise ParameterError(f"{len(pieces)} dreamed segments for a plan of {len(plan.segments)}")
    return overlap_add(pieces, plan.samples, plan.overlap) * mix


def from_network_rate(change: torch.Tensor, net_rate: int, rate: int, like: torch.Tensor,
                      gain: tuple[np.ndarray, float] | None = None) -> torch.Tensor:
    """``change`` ``(m,)`` at ``net_rate`` back at ``rate``, cut or zero-padded to ``like``'s length ``n``:
    ``(n,)`` in ``like``'s dtype and device. ``gain``: per-frame multipliers and their frame rate (linearly
    interpolated; the picture sets the sound dream's intensity, :func:`mmdream.schedules.drive.sound_gain`)."""
    n = like.shape[-1]
    back = resample(change.detach().double().cpu().numpy(), net_rate, rate)[:n]
    if gain is not None:
        curve, fps = gain
        back = back * np.interp(np.arange(back.shape[-1]) * (fps / rate), np.arange(len(curve)), curve)
    out = torch.zeros(n, dtype=like.dtype, device=like.device)
    out[:back.shape[-1]] = torch.from_numpy(np.ascontiguousarray(back)).to(out)
    return out


def fit_to_source(source: torch.Tensor, change: torch.Tensor, rate: int) -> torch.Tensor:
    """``source`` ``(C, n)`` at ``rate`` plus ``change`` (``(n,)`` or ``(C, n)``) at the source's loudness, no
    sample beyond :data:`~mmdream.ops.loudness.PEAK` (:func:`~mmdream.ops.loudness.fit_level`; the limiter's
    window: :func:`~mmdream.ops.loudness.limiter_window` at ``rate``)."""
    return fit_level(source.detach(), change, window=limiter_window(rate))


def dream_audio(
    waveform: torch.Tensor,
    sample_rate: int,
    backbone: Backbone,
    objective: AudioObjective | str | int | None = None,
    params: AudioDreamParams = AudioDreamParams(),
    *,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """Dreamed ``waveform`` ``(C, n)`` (or ``(n,)``) at ``sample_rate``: same shape, rate, dtype and device.

    The backbone must be on the waveform's device; it runs in its own dtype whatever the waveform's.
    ``objective``: an :class:`~mmdream.objectives.terms.Objective` over the backbone's taps (see
    :func:`~mmdream.dream.audio.sound_objective`), a class (name or index) to raise, or ``None`` for the backbone's
    default dream layers; the method is :mod:`mmdream.dream.audio`'s. Every stage of this module, in memory.
    Progress: one event per ascent step, ``segments x steps`` in all.
    """
    objective = check_dream(backbone, objective, params)
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ParameterError(f"sample_rate must be a positive integer; got {sample_rate!r}")
    if waveform.dim() not in (1, 2) or not waveform.is_floating_point() or waveform.shape[-1] == 0:
        raise ParameterError(
            f"waveform must be float samples (channels, n) or (n,) with n > 0; got {waveform.dtype} "
            f"{tuple(waveform.shape)}"
        )
    if not bool(torch.isfinite(waveform).all()):
        raise ParameterError("waveform holds NaN or infinite samples")
    rate = backbone.sample_rate

    source = waveform if waveform.dim() == 2 else waveform[None]
    weight = next(backbone.module.parameters(), None)  # the network runs in its own dtype (float32 weights)
    x = to_network_rate(source, sample_rate, rate, device=waveform.device,
                        dtype=waveform.dtype if weight is None else weight.dtype)
    change = torch.cat(list(dream_segments(lambda a, b: x[a:b], x.shape[-1], rms(x), backbone, objective, params,
                                           progress=progress)))
    out = fit_to_source(source, from_network_rate(change, rate, sample_rate, source), sample_rate)
    return out if waveform.dim() == 2 else out[0]


def style_audio(
    content: torch.Tensor,
    content_rate: int,
    style: torch.Tensor,
    style_rate: int,
    params: AudioStyleParams = AudioStyleParams(),
    *,
    network: Backbone | StyleNetwork | None = None,
    progress: ProgressFn | None = None,
    history: list[float] | None = None,
) -> torch.Tensor:
    """``content`` ``(C, n)`` (or ``(n,)``) at ``content_rate`` in the style of ``style`` ``(C', m)`` at
    ``style_rate``: same shape, rate, dtype and device as ``content``.

    ``network``: the YAMNet backbone for ``params.network == "yamnet"`` (or a ready
    :class:`~mmdream.dream.audio_style.StyleNetwork`); the random network is built from the params. The style is
    heard at the content's loudness; each segment of the content is styled on its own
    (:func:`~mmdream.dream.audio_style.style_segment`) and the stages of this module join them and bring them back.
    ``history``: if given, receives each segment's style loss before each step and after the last, one segment
    after the other. Progress: one event per step, ``segments x steps``. The method is
    :mod:`mmdream.dream.audio_style`'s.
    """
    net = check_style(content, content_rate, style, style_rate, params, network).to(content.device)
    x = to_network_rate(content, content_rate, net.rate, device=content.device)
    s = to_network_rate(style, style_rate, net.rate, device=content.device)
    s = s * (rms(x) / max(rms(s), 1e-8))  # texture, not level: the style is heard at the content's loudness
    segments, overlap = segment_bounds(x.shape[-1], net.rate, params.segment_s, params.overlap_s)
    target = style_target(s, net, params.stats, round(params.segment_s * net.rate))
    tracker = Tracker(len(segments) * params.steps, progress, stage="audio style")
    pieces = []
    for i, (a, b) in enumerate(segments):
        stage = f"segment {i + 1}/{len(segments)}"
        piece, losses = style_segment(x[a:b], net, target, params, generator=segment_generator(params.seed, i),
                                      advance=lambda v, stage=stage: tracker.advance(v, stage=stage))
        pieces.append(piece)
        if history is not None:
            history.extend(losses)
    styled = overlap_add(pieces, x.shape[-1], overlap)

    source = content if content.dim() == 2 else content[None]
    back = from_network_rate(styled, net.rate, content_rate, source)
    result = fit_to_source(source, back - source.detach(), content_rate)
    return result if content.dim() == 2 else result[0]
