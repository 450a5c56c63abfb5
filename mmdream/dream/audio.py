"""Audio Deep Dream: gradient ascent on an additive change to a sound, through an audio backbone (YAMNet).

Waveforms are float samples in [-1, 1] shaped ``(C, n)`` (or ``(n,)``) at any rate ``sr``. The network hears the
clip mixed to mono at its own rate (16 kHz); the dream is a *change* ``d`` at that rate, found by gradient ascent
on the mean objective of ``warps`` random warps of ``x + d``, evaluated as one batch. Each warp draws

- a circular time shift of up to ``time_jitter_ms`` (moves the 10 ms STFT frames and the 0.96 s patches),
- a pitch shift of up to ``pitch_jitter`` semitones: a resampling (speed change, linear interpolation) or, for a
  ``vocoder_share`` of the warps, a phase-vocoder shift that keeps the duration (:func:`vocoder_shift`, what
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

The change is then resampled to ``sr`` (soxr) and added to every channel of the original, so whatever the dream
did not touch keeps its full rate and quality; the sum is scaled back to the input's RMS (loudness within 1 dB)
and peak-limited so that no sample exceeds ``PEAK`` (:func:`fit_level`). Long clips are dreamed in segments of
``segment_s`` (memory is bounded by one segment's batch of warps) joined with raised-cosine crossfades
(:func:`mmdream.ops.segments.overlap_add`); each segment draws its warps from its own seed (``seed`` and the
segment's index), so a segment's dream does not depend on the others. :func:`dream_segments` yields the joined
change stretch by stretch and :func:`plan_level` / :func:`apply_level` level it block by block, so
:mod:`mmdream.pipelines.audio_file` dreams files of any length in bounded memory with the same result.

>>> yam = load_backbone("yamnet")
>>> out = dream_audio(wave, 44100, yam, "Bark", AudioDreamParams(steps=20))      # or sound_objective(yam, ...)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from mmdream.backbones.base import Backbone
from mmdream.errors import ParameterError, check_options
from mmdream.media.audio import resample
from mmdream.objectives.terms import ChannelSpec, GuideTerm, LayerTerm, Objective, channel_term, parse_layers
from mmdream.ops.phase import griffin_lim, istft, stft
from mmdream.ops.segments import overlap_add_stream, plan_segments
from mmdream.progress import ProgressFn, Tracker

__all__ = ["AudioDreamParams", "SoundClassTerm", "sound_objective", "dream_audio", "dream_change", "warp",
           "vocoder_shift", "band_mask", "fit_level", "plan_level", "apply_level",
           "check_dream", "dream_segments", "dream_segment", "plan_dream_segments", "SegmentPlan", "segmenting_checks",
           "segment_generator", "limit_peaks", "rms_db", "DOMAINS", "PHASES", "PEAK",
           "dream_change_mel", "dream_change_wave", "keep_peaks", "band_flatness"]

DOMAINS = ("mel", "wave")
PHASES = ("partials", "source", "griffin-lim")
PEAK = 1 - 2**-10  # no output sample goes beyond this (0.99902, -0.0085 dBFS; exact in float16 and float32)
LOUDNESS_TOLERANCE_DB = 1.0
_BAND_FFT = 1024  # STFT of the band mask at the network's rate: 64 ms frames, 15.6 Hz bins
_EPS = 1e-12
# Frame sizes of the phase-vocoder warps at 16 kHz, one drawn per warp: 32 and 64 ms bracket the 46 ms of
# librosa's pitch_shift at 44.1 kHz (n_fft 2048) and the 93 ms it has at 22.05 kHz.
VOCODER_FFTS = (512, 1024)
# STFT of the magnitude domain at 16 kHz: 64 ms frames (15.6 Hz bins) every 16 ms. Long frames make each kept
# peak a steady partial: tonal, and what YAMNet's 25 ms frames resolve as a line.
MEL_FFT = 1024
MEL_HOP = 256


class AudioObjective(Protocol):
    """What :func:`dream_audio` maximises: taps ``layers`` -> a scalar (an :class:`mmdream.objectives.terms.Objective`)."""

    @property
    def layers(self) -> tuple[str, ...]: ...

    def __call__(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor: ...


@dataclass(frozen=True)
class AudioDreamParams:
    """Every option of an audio dream, with defaults that give an audible, robust dream unasked.

    ``step_size``: RMS of each step's change as a fraction of the source's RMS (the gradient is normalised to unit
    RMS), so the dream's strength does not depend on the input's level. ``mix`` scales the final change.
    """

    steps: int = field(default=32, metadata={"help": "gradient-ascent steps per segment"})
    step_size: float = field(default=0.08, metadata={
        "aliases": ("--strength",),
        "help": "RMS of each step's change, as a fraction of the source's RMS: the dream's strength (the mel domain "
                "keeps only its peaks of each step: about 0.03 gives the wave domain the same loudness of change)"})
    domain: str = field(default="mel", metadata={"help": "what the ascent changes: the magnitude spectrogram of "
                                                          "the change, kept to its peaks (mel: tonal), or the "
                                                          "waveform (wave: noise-like)", "choices": DOMAINS})
    peaks: int = field(default=24, metadata={"help": "mel domain: spectral peaks of the change kept in each 64 ms "
                                                     "frame (fewer: more tonal; 0: all 513 bins)"})
    phase: str = field(default="partials", metadata={
        "help": "mel domain: phase of the change: steady partials at the bins' centre frequencies, the source's "
                "phase, or Griffin-Lim after the ascent (starting from the partials)", "choices": PHASES})
    octaves: int = field(default=1, metadata={"help": "mel domain: coarse-to-fine passes over time-frequency (the "
                                                      "gradient averaged over 2^k x 2^k cells, k = octaves-1 .. 0)"})
    time_jitter_ms: float = field(default=20.0, metadata={"help": "maximal random circular time shift per warp, "
                                                                  "milliseconds (0: none)"})
    pitch_jitter: float = field(default=0.7, metadata={"help": "maximal random pitch shift per warp, semitones "
                                                               "(0: none)"})
    vocoder_share: float = field(default=1.0, metadata={"help": "share of the warps whose pitch shift is a "
                                                                "phase vocoder's (keeps the duration, smears phase) "
                                                                "rather than a resampling"})
    warps: int = field(default=8, metadata={"help": "random warps (time and pitch shifts) whose objectives are "
                                                    "averaged at each step, evaluated as one batch"})
    momentum: float = field(default=0.8, metadata={"help": "momentum of the normalised gradient: steps keep this "
                                                         "share of the previous direction (0: none)"})
    mix: float = field(default=1.0, metadata={"help": "how much of the dreamed change is added to the source "
                                                      "(0: the source unchanged)"})
    fmin: float = field(default=0.0, metadata={"help": "lowest frequency of the change, Hz"})
    fmax: float = field(default=7500.0, metadata={"help": "highest frequency of the change, Hz (at most half the "
                                                          "network's rate: 8000 for yamnet)"})
    segment_s: float = field(default=10.0, metadata={
        "aliases": ("--segment",), "help": "dream long clips in segments of this many seconds (bounds memory)"})
    overlap_s: float = field(default=1.0, metadata={
        "aliases": ("--overlap",), "help": "crossfaded overlap between segments, seconds"})
    seed: int = field(default=0, metadata={"help": "random seed: same seed, same input, same output"})

    def validate(self) -> AudioDreamParams:
        """Raise ParameterError naming the first bad option; return self."""
        checks = [
            (isinstance(self.steps, int) and 0 <= self.steps <= 10_000, "steps", "an integer from 0 to 10000"),
            (0.0 < self.step_size <= 1.0, "step_size", "a number above 0 and at most 1"),
            (self.domain in DOMAINS, "domain", f"one of {', '.join(DOMAINS)}"),
            (isinstance(self.peaks, int) and 0 <= self.peaks <= MEL_FFT // 2 + 1, "peaks",
             f"an integer from 0 to {MEL_FFT // 2 + 1}"),
            (self.phase in PHASES, "phase", f"one of {', '.join(PHASES)}"),
            (isinstance(self.octaves, int) and 1 <= self.octaves <= 6, "octaves", "an integer from 1 to 6"),
            (0.0 <= self.time_jitter_ms <= 2000.0, "time_jitter_ms", "from 0 to 2000 milliseconds"),
            (0.0 <= self.pitch_jitter <= 3.0, "pitch_jitter", "from 0 to 3 semitones"),
            (0.0 <= self.vocoder_share <= 1.0, "vocoder_share", "a number from 0 to 1"),
            (isinstance(self.warps, int) and 1 <= self.warps <= 64, "warps", "an integer from 1 to 64"),
            (0.0 <= self.momentum < 1.0, "momentum", "at least 0 and below 1"),
            (0.0 <= self.mix <= 4.0, "mix", "a number from 0 to 4"),
            (0.0 <= self.fmin < self.fmax, "fmin", "at least 0 and below fmax"),
            (self.fmin < self.fmax <= 24_000.0, "fmax", "above fmin and at most 24000 Hz"),
            *segmenting_checks(self),
        ]
        check_options(self, checks)
        return self


def segmenting_checks(params: Any) -> list[tuple[bool, str, str]]:
    """The ``check_options`` rows of the options every segmented sound algorithm has: ``segment_s``,
    ``overlap_s`` and ``seed``."""
    return [
        (1.0 <= params.segment_s <= 600.0, "segment_s", "from 1 to 600 seconds"),
        (0.0 <= params.overlap_s <= params.segment_s / 2, "overlap_s", "at least 0 and at most half of segment_s"),
        (isinstance(params.seed, int) and not isinstance(params.seed, bool) and 0 <= params.seed < 2**62, "seed",
         "a non-negative integer"),
    ]


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


def rms_db(x: torch.Tensor) -> float:
    """RMS level of ``x`` (all samples of all channels) in dB re full scale (1.0)."""
    return 10.0 * math.log10(float(x.double().square().mean()) + _EPS) if x.numel() else -120.0


def band_flatness(x: torch.Tensor, rate: int, fmin: float = 300.0, fmax: float = 4000.0) -> float:
    """Spectral flatness of ``x`` ``(C, n)`` or ``(n,)`` (mixed to mono) within ``fmin``..``fmax`` Hz: geometric
    over arithmetic mean of the power spectrum of each 2048-sample Hann frame (hop 512), averaged over the frames
    weighted by their energy in the band. 1: white noise; near 0: a few tones."""
    mono = (x if x.dim() == 1 else x.mean(dim=0)).detach().double().cpu()
    window = torch.hann_window(2048, dtype=torch.float64)
    power = torch.stft(mono, 2048, 512, window=window, return_complex=True).abs().square()  # (freqs, frames)
    freqs = torch.linspace(0, rate / 2, power.shape[0], dtype=torch.float64)
    p = power[(freqs >= fmin) & (freqs <= fmax)] + 1e-20
    flat = torch.exp(p.log().mean(dim=0)) / p.mean(dim=0)
    energy = p.sum(dim=0)
    return float((flat * energy).sum() / energy.sum())


def warp(x: torch.Tensor, shift: float, ratio: float = 1.0, pivot: float = 0.0) -> torch.Tensor:
    """Circularly shifted and resampled ``x`` ``(..., n)``: ``y[t] = x[(pivot + (t - pivot) ratio - shift) mod n]``.

    ``shift`` (samples, may be fractional) delays the sound; ``ratio > 1`` plays it faster, i.e. higher by
    ``12 log2(ratio)`` semitones (and shorter, around ``pivot``). Linear interpolation: differentiable in ``x``;
    an integer shift with ``ratio == 1`` is exactly ``torch.roll``.
    """
    n = x.shape[-1]
    t = torch.arange(n, dtype=torch.float64, device=x.device)
    pos = torch.remainder(pivot + (t - pivot) * ratio - shift, n)
    i0 = pos.floor()
    frac = (pos - i0).to(x.dtype)
    i0 = i0.long().clamp_(0, n - 1)
    i1 = torch.remainder(i0 + 1, n)
    return x[..., i0] * (1.0 - frac) + x[..., i1] * frac


def _phase_vocoder(spec: torch.Tensor, rate: float, hop: int) -> torch.Tensor:
    """librosa's ``phase_vocoder`` on a complex STFT ``(..., freqs, frames)`` -> ``(..., freqs, ceil(frames / rate))``.

    Magnitudes are interpolated between frames (gradients flow through them); phases are propagated from the
    input's (without gradients), as in librosa.
    """
    n_fft = 2 * (spec.shape[-2] - 1)
    frames = spec.shape[-1]
    steps = torch.arange(0, frames, rate, dtype=torch.float64, device=spec.device)
    padded = F.pad(spec, (0, 2))
    t0 = steps.floor().long()
    alpha = (steps - t0).to(spec.real.dtype)
    mag = padded.abs()
    mag = mag[..., t0] * (1 - alpha) + mag[..., t0 + 1] * alpha
    phase = padded.detach().angle()
    advance = (2 * math.pi * hop / n_fft) * torch.arange(spec.shape[-2], dtype=phase.dtype, device=spec.device)
    dphase = phase[..., t0 + 1] - phase[..., t0] - advance[:, None]
    dphase = dphase - 2 * math.pi * torch.round(dphase / (2 * math.pi))
    acc = torch.cumsum(dphase + advance[:, None], dim=-1)
    acc = phase[..., :1] + torch.cat([torch.zeros_like(acc[..., :1]), acc[..., :-1]], dim=-1)
    return torch.polar(mag, acc.to(mag.dtype))


def vocoder_shift(x: torch.Tensor, semitones: float, n_fft: int = 1024) -> torch.Tensor:
    """``x`` ``(..., n)`` shifted in pitch by ``semitones`` keeping its duration, like
    ``librosa.effects.pitch_shift``: phase-vocoder time stretch by ``2 ** (-semitones / 12)``, then linear
    resampling back to ``n`` samples. Differentiable in ``x`` through the STFT magnitudes."""
    n = x.shape[-1]
    if semitones == 0 or n < n_fft:
        return x
    rate = 2.0 ** (-semitones / 12)
    hop = n_fft // 4
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    lead = x.shape[:-1]
    flat = x.reshape(-1, n)
    spec = torch.stft(flat, n_fft, hop, window=window, center=True, pad_mode="constant", return_complex=True)
    long = round(n / rate)
    stretched = torch.istft(_phase_vocoder(spec, rate, hop), n_fft, hop, window=window, center=True, length=long)
    pos = torch.arange(n, dtype=torch.float64, device=x.device) * (long / n)
    i0 = pos.floor().long().clamp_(0, long - 1)
    frac = (pos - i0).to(x.dtype)
    i1 = (i0 + 1).clamp_(max=long - 1)
    out = stretched[..., i0] * (1 - frac) + stretched[..., i1] * frac
    return out.reshape(*lead, n)


def band_mask(x: torch.Tensor, rate: int, fmin: float, fmax: float) -> torch.Tensor:
    """``x`` ``(..., n)`` with frequencies outside ``fmin``..``fmax`` removed (STFT mask, raised-cosine edges a
    sixth of an octave wide, inverse STFT). Returns ``x`` itself when the band is the whole spectrum."""
    nyquist = rate / 2
    if fmin <= 0.0 and fmax >= nyquist or x.shape[-1] == 0:
        return x
    n_fft = min(_BAND_FFT, 1 << max(int(math.log2(max(x.shape[-1], 2))), 1))
    freqs = torch.linspace(0.0, nyquist, n_fft // 2 + 1, dtype=torch.float64)
    mask = torch.ones_like(freqs)
    edge = 2 ** (1 / 6)
    if fmin > 0:
        lo = torch.clamp((torch.log2(freqs.clamp_min(1e-3) / (fmin / edge))) / math.log2(edge), 0, 1)
        mask = mask * torch.sin(lo * math.pi / 2).square()
    if fmax < nyquist:
        hi = torch.clamp((torch.log2((fmax * edge) / freqs.clamp_min(1e-3))) / math.log2(edge), 0, 1)
        mask = mask * torch.sin(hi * math.pi / 2).square()
    lead = x.shape[:-1]
    flat = x.reshape(-1, x.shape[-1])
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(flat, n_fft, n_fft // 4, window=window, center=True, pad_mode="constant", return_complex=True)
    spec = spec * mask.to(device=x.device, dtype=x.dtype)[:, None]
    out = torch.istft(spec, n_fft, n_fft // 4, window=window, center=True, length=x.shape[-1])
    return out.reshape(*lead, -1)


def segment_generator(seed: int, index: int) -> torch.Generator:
    """The random generator of segment ``index``'s warps: a segment's dream does not depend on the others."""
    return torch.Generator().manual_seed((seed * 1_000_003 + index) % 2**63)


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
    gradient is band-limited (:func:`band_mask`), normalised and accumulated with momentum."""
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


def keep_peaks(magnitude: torch.Tensor, k: int) -> torch.Tensor:
    """``magnitude`` ``(..., freqs, frames)`` with all but the ``k`` largest bins of each frame set to 0
    (``k == 0`` or ``k >= freqs``: unchanged)."""
    if k <= 0 or k >= magnitude.shape[-2]:
        return magnitude
    top = magnitude.topk(k, dim=-2).indices
    return torch.zeros_like(magnitude).scatter_(-2, top, magnitude.gather(-2, top))


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
    projected back to ``A >= 0`` with only the largest bins of each frame (:func:`keep_peaks`; their number falls
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


def limit_peaks(y: torch.Tensor, peak: float = PEAK, window: int = 220) -> torch.Tensor:
    """``y`` ``(..., C, n)`` (or ``(n,)``) under a look-ahead peak limiter: no sample beyond ``peak``.

    The gain each sample needs (``peak / |y|``, at most 1, linked across channels) is spread by a running minimum
    over ``±window`` samples and smoothed by a moving average of the same width, so it dips smoothly around
    peaks (ramps of ``window`` samples; 5 ms is inaudible) and is never above what any sample needs.
    """
    if y.numel() == 0 or float(y.abs().max()) <= peak:
        return y
    level = y.abs().reshape(-1, y.shape[-1]).amax(dim=0) if y.dim() > 1 else y.abs()
    need = (peak / level.clamp_min(1e-30)).clamp_(max=1.0)
    size = 2 * window + 1
    spread = -F.max_pool1d(-need[None, None], size, stride=1, padding=window)
    gain = F.avg_pool1d(spread, size, stride=1, padding=window, count_include_pad=False)[0, 0]
    return (y * gain).clamp_(-peak, peak)  # the clamp only absorbs rounding


LevelStats = Callable[[float, tuple[float, ...]], tuple[float, float]]


def apply_level(source: torch.Tensor, change: torch.Tensor, a: float, gains: Sequence[float], *, peak: float = PEAK,
                window: int = 220) -> torch.Tensor:
    """``source + a change`` multiplied by each of ``gains`` in turn, peak-limited (:func:`limit_peaks`) after each.

    Local: each output sample depends on the input within ``2 window len(gains)`` samples, so a long clip can be
    rendered in blocks with that much context on each side, with the same result.
    """
    y = source + a * change
    for gain in gains:
        y = limit_peaks(y * gain, peak, window)
    return y


def plan_level(stats: LevelStats, target: float, *, tolerance_db: float = LOUDNESS_TOLERANCE_DB,
               peak: float = PEAK) -> tuple[float, tuple[float, ...]]:
    """The ``a`` and ``gains`` of :func:`apply_level` that :func:`fit_level` renders: the sum scaled to ``target``
    RMS and limited, re-scaled and limited again a few times; ``a < 1`` (bisection) only if the loudness would end
    more than ``0.9 tolerance_db`` below ``target`` (a source that is all peaks).

    ``stats(a, gains)`` returns the RMS and the peak ``|sample|`` of ``apply_level(source, change, a, gains)``: a
    function, so that a clip on disk can be measured block by block (one pass per call). For each ``a`` it is
    called with no gains first, then with one more gain each time, so it may go on from its previous result.
    """
    floor = 10 ** (-(tolerance_db * 0.9) / 20)  # aim inside the tolerance

    def gains_for(a: float) -> tuple[tuple[float, ...], float]:
        gains: tuple[float, ...] = ()
        for _ in range(4):
            level, top = stats(a, gains)
            gain = target / level if level > 0 and target > 0 else 1.0
            gains += (gain,)
            if top * gain <= peak:  # nothing to limit: the level is the target
                return gains, (level * gain / target if target > 0 else 1.0)
        level, _ = stats(a, gains)
        return gains, (level / target if target > 0 else 1.0)

    gains, ratio = gains_for(1.0)
    if ratio >= floor:
        return 1.0, gains
    lo, hi = 0.0, 1.0
    for _ in range(12):
        mid = (lo + hi) / 2
        if gains_for(mid)[1] >= floor:
            lo = mid
        else:
            hi = mid
    return lo, gains_for(lo)[0]


def fit_level(source: torch.Tensor, change: torch.Tensor, *, tolerance_db: float = LOUDNESS_TOLERANCE_DB,
              peak: float = PEAK, window: int = 220) -> torch.Tensor:
    """``source + a change`` at the RMS of ``source``, with no sample beyond ``peak``.

    The sum is scaled to the source's RMS and peak-limited (:func:`limit_peaks`, re-scaled and limited again a
    few times); if the loudness still ends more than ``0.9 tolerance_db`` below the source's (a source that is
    all peaks), the change is scaled down (``a < 1``, by bisection) until it does not (:func:`plan_level`).
    Shapes broadcast (a mono change ``(n,)`` onto ``(C, n)``); returns ``source``'s shape.
    """

    last: list[torch.Tensor] = []  # what the previous call measured: this one adds a gain to it, or starts again

    def stats(a: float, gains: tuple[float, ...]) -> tuple[float, float]:
        y = limit_peaks(last.pop() * gains[-1], peak, window) if gains else source + a * change
        last[:] = [y]
        return float(y.double().square().mean().sqrt()), float(y.abs().max())

    target = float(source.double().square().mean().sqrt())
    a, gains = plan_level(stats, target, tolerance_db=tolerance_db, peak=peak)
    return apply_level(source, change, a, gains, peak=peak, window=window)


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


def plan_dream_segments(n: int, level: float, net_rate: int, params: AudioDreamParams) -> SegmentPlan:
    """The :class:`SegmentPlan` of a clip of ``n`` samples at ``net_rate`` whose RMS is ``level``."""
    overlap = round(params.overlap_s * net_rate)
    segments = plan_segments(n, round(params.segment_s * net_rate), overlap)
    return SegmentPlan(net_rate, tuple(segments), overlap, params.step_size * max(level, 1e-4))


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
    stretches ``(k,)`` that concatenate to ``(n,)``.

    ``x`` is cut into the segments of :func:`plan_dream_segments` (``segment_s``, ``overlap_s``); each is dreamed
    on its own (:func:`dream_segment`) and crossfaded into the previous one
    (:func:`~mmdream.ops.segments.overlap_add_stream`), so memory is bounded by a segment, not the clip.
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

    ``objective``: an :class:`~mmdream.objectives.terms.Objective` over the backbone's taps (see :func:`sound_objective`),
    a class (name or index) to raise, or ``None`` for the backbone's default dream layers. See the module
    docstring for the method. Progress: one event per ascent step, ``segments x steps`` in all.
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
    mono = source.detach().mean(dim=0).double().cpu().numpy()
    weight = next(backbone.module.parameters(), None)  # the network runs in its own dtype (float32 weights)
    x = torch.from_numpy(np.ascontiguousarray(resample(mono, sample_rate, rate))).to(
        device=waveform.device, dtype=waveform.dtype if weight is None else weight.dtype)
    level = float(x.double().square().mean().sqrt())
    change16 = torch.cat(list(dream_segments(lambda a, b: x[a:b], x.shape[-1], level, backbone, objective, params,
                                             progress=progress)))

    n = source.shape[-1]
    back = resample(change16.detach().double().cpu().numpy(), rate, sample_rate)[:n]
    change = torch.zeros(n, dtype=waveform.dtype, device=waveform.device)
    change[:back.shape[-1]] = torch.from_numpy(np.ascontiguousarray(back)).to(change)
    out = fit_level(source.detach(), change, window=max(1, round(0.005 * sample_rate)))
    return out if waveform.dim() == 2 else out[0]
