"""Audio Deep Dream: gradient ascent on an additive change to a sound, through an audio backbone (YAMNet).

Waveforms are float samples in [-1, 1] shaped ``(C, n)`` (or ``(n,)``) at any rate ``sr``. The network hears the
clip mixed to mono at its own rate (16 kHz); the dream is a *change* ``d`` at that rate, found by gradient ascent
on the mean objective of ``warps`` random warps of ``x + d``, evaluated as one batch. Each warp draws

- a circular time shift of up to ``time_jitter_ms`` (moves the 10 ms STFT frames and the 0.96 s patches),
- a pitch shift of up to ``pitch_jitter`` semitones: a resampling (speed change, linear interpolation) or, for a
  ``vocoder_share`` of the warps, a phase-vocoder shift that keeps the duration (:func:`~mmdream.ops.audio.vocoder_shift`, what
  ``librosa.effects.pitch_shift`` does; it smears phase, so the dream cannot hide in fine phase detail).

This is the audio analogue of the image dream's jitter and octaves (an expectation over transformations): a
change that raises the objective under all these warps does not depend on the exact frame grid, pitch or phase,
so it survives a delay, a pitch shift, AAC and noise, where plain ascent finds fragile changes (measured by
``bench/audio_robustness.py``). Each step's gradient is band-limited (``fmin``..``fmax``), normalised to unit
RMS, accumulated with ``momentum``, and the step adds ``step_size x`` the source's RMS. Two domains
(:func:`dream_change`):

- ``mel`` (the default): the change is a magnitude spectrogram (64 ms frames) synthesised with fixed phases,
  steady partials by default (:func:`dream_change_mel`); after each step only its ``peaks`` strongest bins per
  frame are kept, so the change is a few sustained partials: tonal (spectral flatness 0.02-0.06 in
  300-4000 Hz), where the wave domain's is noise-like (0.34-0.40), with the same robustness;
- ``wave``: the change is the samples themselves (:func:`dream_change_wave`).

One call of :func:`dream_change` dreams one segment: a mono clip at the network's rate, its own random generator
and the ascent step given. Mixing to mono, resampling, segments (each with its own seed), crossfaded joins, the
way back to the source's rate and the loudness are the stages of :mod:`mmdream.pipelines.audio`, whose
``dream_audio`` dreams a whole waveform; the signal operations are :mod:`mmdream.ops.audio`'s.

>>> yam = load_backbone("yamnet")
>>> objective = check_dream(yam, "Bark", params)                 # or sound_objective(yam, layers=...)
>>> change = dream_change(x, yam, objective, params, step=0.01, generator=torch.Generator().manual_seed(0))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from mmdream.backbones.base import Backbone
from mmdream.errors import ParameterError
from mmdream.objectives.terms import ChannelSpec, GuideTerm, LayerTerm, Objective, channel_term, parse_layers
from mmdream.ops.audio import band_mask, keep_peaks, vocoder_shift, warp
from mmdream.options import Options, option, seed_option
from mmdream.ops.phase import griffin_lim, istft, stft

__all__ = ["AudioDreamParams", "AudioObjective", "SoundClassTerm", "sound_objective", "check_dream", "dream_change",
           "dream_change_mel", "dream_change_wave", "segmenting_checks", "DOMAINS", "PHASES"]

DOMAINS = ("mel", "wave")
PHASES = ("partials", "source", "griffin-lim")
# Frame sizes of the phase-vocoder warps at 16 kHz, one drawn per warp: 32 and 64 ms bracket the 46 ms of
# librosa's pitch_shift at 44.1 kHz (n_fft 2048) and the 93 ms it has at 22.05 kHz.
VOCODER_FFTS = (512, 1024)
# STFT of the magnitude domain at 16 kHz: 64 ms frames (15.6 Hz bins) every 16 ms. Long frames make each kept
# peak a steady partial: tonal, and what YAMNet's 25 ms frames resolve as a line.
MEL_FFT = 1024
MEL_HOP = 256


class AudioObjective(Protocol):
    """What an audio dream maximises: taps ``layers`` -> a scalar (an :class:`mmdream.objectives.terms.Objective`)."""

    @property
    def layers(self) -> tuple[str, ...]: ...

    def __call__(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor: ...


@dataclass(frozen=True)
class AudioDreamParams(Options):
    """Every option of an audio dream, with defaults that give an audible, robust dream unasked.

    ``step_size``: RMS of each step's change as a fraction of the source's RMS (the gradient is normalised to unit
    RMS), so the dream's strength does not depend on the input's level. ``mix`` scales the final change.
    """

    steps: int = option(32, "gradient-ascent steps per segment", ge=0, le=10_000)
    step_size: float = option(0.08, "RMS of each step's change, as a fraction of the source's RMS: the dream's "
                                    "strength (the mel domain keeps only its peaks of each step: about 0.03 gives "
                                    "the wave domain the same loudness of change)", gt=0.0, le=1.0,
                              aliases=("--strength",))
    domain: str = option("mel", "what the ascent changes: the magnitude spectrogram of the change, kept to its peaks "
                                "(mel: tonal), or the waveform (wave: noise-like)", choices=DOMAINS)
    peaks: int = option(24, "mel domain: spectral peaks of the change kept in each 64 ms frame (fewer: more tonal; "
                            "0: all 513 bins)", ge=0, le=MEL_FFT // 2 + 1)
    phase: str = option("partials", "mel domain: phase of the change: steady partials at the bins' centre "
                                    "frequencies, the source's phase, or Griffin-Lim after the ascent (starting "
                                    "from the partials)", choices=PHASES)
    octaves: int = option(1, "mel domain: coarse-to-fine passes over time-frequency (the gradient averaged over "
                             "2^k x 2^k cells, k = octaves-1 .. 0)", ge=1, le=6)
    time_jitter_ms: float = option(20.0, "maximal random circular time shift per warp, milliseconds (0: none)",
                                   ge=0.0, le=2000.0, unit="milliseconds")
    pitch_jitter: float = option(0.7, "maximal random pitch shift per warp, semitones (0: none)", ge=0.0, le=3.0,
                                 unit="semitones")
    vocoder_share: float = option(1.0, "share of the warps whose pitch shift is a phase vocoder's (keeps the "
                                       "duration, smears phase) rather than a resampling", ge=0.0, le=1.0)
    warps: int = option(8, "random warps (time and pitch shifts) whose objectives are averaged at each step, "
                           "evaluated as one batch", ge=1, le=64)
    momentum: float = option(0.8, "momentum of the normalised gradient: steps keep this share of the previous "
                                  "direction (0: none)", ge=0.0, lt=1.0)
    mix: float = option(1.0, "how much of the dreamed change is added to the source (0: the source unchanged)",
                        ge=0.0, le=4.0)
    fmin: float = option(0.0, "lowest frequency of the change, Hz", ge=0.0, unit="Hz")
    fmax: float = option(7500.0, "highest frequency of the change, Hz (at most half the network's rate: 8000 for "
                                 "yamnet)", le=24_000.0, unit="Hz")
    segment_s: float = option(10.0, "dream long clips in segments of this many seconds (bounds memory)", ge=1.0,
                              le=600.0, unit="seconds", aliases=("--segment",))
    overlap_s: float = option(1.0, "crossfaded overlap between segments, seconds", ge=0.0, unit="seconds",
                              aliases=("--overlap",))
    seed: int = seed_option("random seed: same seed, same input, same output")

    def cross_checks(self) -> Iterable[tuple[bool, str, str]]:
        return [(self.fmin < self.fmax, "fmin", "below fmax"), *segmenting_checks(self)]


def segmenting_checks(params: Any) -> list[tuple[bool, str, str]]:
    """The cross check of the options every segmented sound algorithm has (``segment_s``, ``overlap_s``): an
    overlap of at most half a segment."""
    return [(params.overlap_s <= params.segment_s / 2, "overlap_s", "at most half the segment length")]


@dataclass(frozen=True)
class SoundClassTerm:
    """``log sigmoid`` of a class's logit, averaged over patches (YAMNet is multi-label: one sigmoid per class,
    so raising a class does not need to lower the others, unlike :class:`mmdream.objectives.terms.ClassTerm`)."""

    index: int
    weight: float = 1.0
    layer: str = "logits"

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return F.logsigmoid(acts[self.layer][:, self.index]).mean()


def sound_objective(backbone: Backbone, *, class_: str | int | None = None,
                    layers: str | Sequence[str] | None = None, channels: ChannelSpec | None = None,
                    guide: torch.Tensor | None = None) -> Objective:
    """Objective of an audio dream from user options, as for images.

    ``class_`` (index or (part of) a name): raise that class's score (:class:`SoundClassTerm`); with ``layers``
    too, both. ``channels``: those channels of the (single) layer (:class:`ChannelTerm`). ``guide`` ``(n,)``: a
    mono clip at the network's rate whose features at the layers the dream matches (:class:`GuideTerm`: each
    position moves toward the guide feature it resembles most). Otherwise the L2 of ``layers``
    (``"layer8:1,layer10:0.5"``; default the backbone's dream layers).
    """
    if backbone.modality != "audio":
        raise ParameterError(f"{backbone.name} is an image backbone; dream sounds with an audio one (yamnet)")
    terms: list = []
    if class_ is not None:
        terms.append(SoundClassTerm(backbone.resolve_class(class_)))
    if class_ is not None and layers is None and channels is None and guide is None:
        return Objective(tuple(terms))
    named = parse_layers(layers, backbone)
    if channels is not None:
        terms.append(channel_term(backbone, named, channels))
    elif guide is not None:
        if guide.dim() != 1 or guide.shape[0] < (backbone.sample_rate or 16000):
            raise ParameterError("the guide clip must be mono samples (n,) at the network's rate, at least 1 s long")
        with torch.no_grad():
            acts = backbone.taps(guide[None].to(backbone.device), [n for n, _ in named])
        terms += [GuideTerm(n, acts[n].transpose(0, 1).flatten(1), w) for n, w in named]  # (C, patches x h x w)
    else:
        terms += [LayerTerm(name, weight) for name, weight in named]
    return Objective(tuple(terms))


def _random_warp(x: torch.Tensor, max_shift: float, max_semitones: float, vocoder_share: float,
                 generator: torch.Generator) -> torch.Tensor:
    """``x`` ``(n,)`` with a random pitch shift (phase vocoder or resampling) and circular time shift."""
    shift, semitones, pivot, kind = torch.rand(4, generator=generator, dtype=torch.float64).tolist()
    semitones = (2 * semitones - 1) * max_semitones
    shift = (2 * shift - 1) * max_shift
    if kind < vocoder_share:
        n_fft = VOCODER_FFTS[min(int(kind / vocoder_share * len(VOCODER_FFTS)), len(VOCODER_FFTS) - 1)]
        return warp(vocoder_shift(x, semitones, n_fft), shift)
    return warp(x, shift, 2.0 ** (semitones / 12), pivot * x.shape[-1])


def _warped_value(z: torch.Tensor, backbone: Backbone, objective: AudioObjective, params: AudioDreamParams,
                  max_shift: float, generator: torch.Generator) -> torch.Tensor:
    """The objective (a scalar) of ``z`` ``(n,)``, averaged over ``params.warps`` random warps of it (one batch)."""
    if max_shift or params.pitch_jitter:
        y = torch.stack([_random_warp(z, max_shift, params.pitch_jitter, params.vocoder_share, generator)
                         for _ in range(params.warps)])
    else:
        y = z[None]
    return objective(backbone.taps(y, objective.layers))


def dream_change(
    x: torch.Tensor,
    backbone: Backbone,
    objective: AudioObjective,
    params: AudioDreamParams,
    *,
    step: float,
    generator: torch.Generator,
    advance: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """Dreamed change ``(n,)`` to a mono clip ``x`` ``(n,)`` at ``backbone.sample_rate`` (one segment), in the
    domain ``params.domain`` (:func:`dream_change_mel` or :func:`dream_change_wave`).

    ``step``: RMS added per step (in sample units). ``advance(value)`` is called after every step with the
    objective's value before that step's update.
    """
    change = dream_change_mel if params.domain == "mel" else dream_change_wave
    return change(x, backbone, objective, params, step=step, generator=generator, advance=advance)


def dream_change_wave(
    x: torch.Tensor,
    backbone: Backbone,
    objective: AudioObjective,
    params: AudioDreamParams,
    *,
    step: float,
    generator: torch.Generator,
    advance: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """:func:`dream_change` in the waveform domain: ascent on the samples of the change ``(n,)``; each step's
    gradient is band-limited (:func:`~mmdream.ops.audio.band_mask`), normalised and accumulated with momentum."""
    rate = backbone.sample_rate or 16000
    x = x.detach()
    delta = torch.zeros_like(x)
    max_shift = params.time_jitter_ms * rate / 1000.0
    velocity = torch.zeros_like(x)
    for _ in range(params.steps):
        d = delta.requires_grad_(True)
        value = _warped_value(x + d, backbone, objective, params, max_shift, generator)
        (grad,) = torch.autograd.grad(value, d)
        delta = delta.detach()
        grad = band_mask(grad, rate, params.fmin, params.fmax)
        velocity = params.momentum * velocity + grad / (grad.square().mean().sqrt() + 1e-20)
        delta = delta + step * velocity / (velocity.square().mean().sqrt() + 1e-20)
        if advance is not None:
            advance(float(value.detach()))
    return delta.detach()


def _partial_phases(freqs: int, frames: int, like: torch.Tensor) -> torch.Tensor:
    """Unit phasors ``(freqs, frames)`` of steady sinusoids at the bins' centre frequencies (``MEL_HOP`` apart):
    a constant magnitude row synthesises a pure partial."""
    k = torch.arange(freqs, dtype=torch.float64)[:, None]
    t = torch.arange(frames, dtype=torch.float64)[None]
    angle = torch.remainder(k * t * (MEL_HOP / MEL_FFT), 1.0) * (2 * math.pi)
    return torch.polar(torch.ones_like(angle), angle).to(device=like.device, dtype=like.dtype)


def _peaks_at(i: int, params: AudioDreamParams, bins: int) -> int:
    """Peaks kept per frame after step ``i``: from all ``bins`` down to ``params.peaks`` geometrically over the first
    three quarters of the steps, then ``params.peaks`` (a sparse dream grown from a dense one: measured 0.42 vs
    0.37 Bark on the amen loop at the same flatness). The last step always keeps ``params.peaks``."""
    last = (3 * params.steps) // 4 - 1
    if params.peaks == 0 or i >= last:
        return params.peaks
    return round(params.peaks * (bins / params.peaks) ** (1.0 - i / last))


def _coarse(grad: torch.Tensor, octave: int) -> torch.Tensor:
    """``grad`` ``(freqs, frames)`` averaged over cells of ``2^octave x 2^octave`` bins and frames (bilinear back)."""
    if octave == 0:
        return grad
    f = 2 ** octave
    pooled = F.avg_pool2d(grad[None, None], f, ceil_mode=True)
    return F.interpolate(pooled, size=tuple(grad.shape), mode="bilinear", align_corners=False)[0, 0]


def dream_change_mel(
    x: torch.Tensor,
    backbone: Backbone,
    objective: AudioObjective,
    params: AudioDreamParams,
    *,
    step: float,
    generator: torch.Generator,
    advance: Callable[[float], None] | None = None,
) -> torch.Tensor:
    """:func:`dream_change` in the magnitude domain: the change ``(n,)`` is ``istft(A * U)``, ascended on its
    magnitude spectrogram ``A`` ``(MEL_FFT // 2 + 1, frames)`` (64 ms frames, 16 ms hop) with phases ``U``.

    ``U`` (``params.phase``): steady partials (``partials``: a frame's peak continues the previous frame's sinusoid)
    or the source's STFT phase (``source``); ``griffin-lim`` ascends with the partials, then re-phases the final
    ``A`` by fast Griffin-Lim (:func:`mmdream.ops.phase.griffin_lim`). Each step: the gradient of the warped
    objective (the wave domain's warps, through the synthesis) with respect to ``A``, zero outside
    ``fmin``..``fmax``, coarse-to-fine over ``octaves`` (the first steps see it averaged over large time-frequency
    cells), normalised, with momentum; the update is scaled so that its waveform has RMS ``step``; then ``A`` is
    projected back to ``A >= 0`` with only the largest bins of each frame (:func:`~mmdream.ops.audio.keep_peaks`; their number falls
    from all bins to ``params.peaks`` over the first three quarters of the steps), which keeps the change tonal.
    """
    rate = backbone.sample_rate or 16000
    x = x.detach()
    n = x.shape[-1]
    spec = stft(x, MEL_FFT, MEL_HOP)
    if params.phase == "source":
        phases = spec / spec.abs().clamp_min(1e-12)
        phases = torch.where(spec.abs() > 0, phases, torch.ones_like(phases))
    else:
        phases = _partial_phases(spec.shape[-2], spec.shape[-1], spec)
    freqs = torch.arange(spec.shape[-2], dtype=x.dtype, device=x.device) * (rate / MEL_FFT)
    band = ((freqs >= params.fmin) & (freqs <= params.fmax)).to(x.dtype)[:, None]
    max_shift = params.time_jitter_ms * rate / 1000.0
    amp = torch.zeros(spec.shape, dtype=x.dtype, device=x.device)
    velocity = torch.zeros_like(amp)
    for i in range(params.steps):
        a = amp.requires_grad_(True)
        value = _warped_value(x + istft(a * phases, MEL_FFT, MEL_HOP, n), backbone, objective, params, max_shift,
                              generator)
        (grad,) = torch.autograd.grad(value, a)
        amp = amp.detach()
        grad = _coarse(grad, params.octaves - 1 - i * params.octaves // params.steps) * band
        velocity = params.momentum * velocity + grad / (grad.square().mean().sqrt() + 1e-20)
        update = velocity / (velocity.square().mean().sqrt() + 1e-20)
        heard = istft(update * phases, MEL_FFT, MEL_HOP, n).square().mean().sqrt()
        amp = keep_peaks((amp + update * (step / (heard + 1e-20))).clamp_min_(0.0), _peaks_at(i, params, len(freqs)))
        if advance is not None:
            advance(float(value.detach()))
    if params.phase == "griffin-lim":
        return griffin_lim(amp, MEL_FFT, MEL_HOP, n, init=amp * phases).to(x.dtype)
    return istft(amp * phases, MEL_FFT, MEL_HOP, n)


def check_dream(backbone: Backbone, objective: AudioObjective | str | int | None,
                params: AudioDreamParams) -> AudioObjective:
    """Validate ``params`` for ``backbone`` (an audio one, ``fmax`` within its band); return the objective, a class
    (name or index) or ``None`` (the default dream layers) resolved to an :class:`~mmdream.objectives.terms.Objective`."""
    params.validate()
    if backbone.modality != "audio" or backbone.sample_rate is None:
        raise ParameterError(f"{backbone.name} is an image backbone; dream sounds with an audio one (yamnet)")
    if params.fmax > backbone.sample_rate / 2:
        raise ParameterError(f"fmax={params.fmax!r} is invalid: {backbone.name} hears up to "
                             f"{backbone.sample_rate / 2:g} Hz")
    if objective is None or isinstance(objective, (str, int)):
        objective = sound_objective(backbone, class_=objective)
    return objective
