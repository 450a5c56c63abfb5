"""Sound drives the picture: audio features per video frame, smoothed, mapped to each frame's dream strength.

A film's soundtrack ``(C, n)`` at ``rate`` gives, per video frame, features of what is heard with the frame (levels
over a frame's length of sound, attacks while the frame shows: the features follow the frame rate): its RMS level,
strongest onset, spectral centroid, and from a harmonic/percussive separation (median filtering of the STFT) the
percussive part's strongest onset (the drums), the harmonic part's RMS (the tones) and chroma (constant-Q; librosa,
on the mono mix, 512-sample hops). The driving feature is normalised to [0, 1] (between its 5th and 99th percentiles),
smoothed by an attack/release envelope follower (time constants in seconds, the same response at any frame rate),
mapped linearly to ``drive_low``..``drive_high`` and scaled to mean 1: the *drive* of each frame multiplies the
dream's strength, so the film's average strength stays what the undriven dream gives while loud passages dream
harder and quiet ones softer. A flicker budget (``max_change``) bounds the drive's mean change per frame: where the
music moves faster than that (a drum loop at 10 fps), the curve keeps its shape (and its correlation with the
sound) but pulses less deeply, so the modulation reads as a pulse rather than as frame-to-frame noise.

The schedule is computed once from the whole soundtrack, before any sharding, so every shard sees the same curve.
The sound's chroma can also choose *what* the picture dreams (``channels_follow="chroma"``): each dream layer's
channels are split into 12 groups, one per pitch class, weighted frame by frame by the harmonic part's chroma (a C
major chord dreams other channels than an F# one; the drums do not blur it). The other way round, the picture's
motion (optical-flow energy per frame, the same mapping) can set the sound dream's intensity over time
(``sound_follows="motion"``): the dreamed change of the soundtrack is scaled by it.

>>> drive = drive_schedule(samples, rate, fps=25.0, frames=132, params=AVParams(drive="rms"))   # (132,) mean 1
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mmdream.errors import ParameterError
from mmdream.pipelines.film import FilmPlan, source_frames
from mmdream.media.video import read_audio
from mmdream.objectives.terms import ChannelGroupsTerm, LayerTerm, Objective
from mmdream.options import Options, option
from mmdream.ops.flow import optical_flow

__all__ = ["AVParams", "FEATURES", "PICTURE_FEATURES", "frame_features", "frame_rms", "separate", "envelope",
           "drive_schedule", "film_drive",
           "motion_energy", "sound_gain", "chroma_schedule", "ChromaObjectives", "film_chroma"]

FEATURES = ("none", "rms", "onset", "centroid", "percussive", "harmonic")
PICTURE_FEATURES = ("none", "motion")
_MOTION_SIZE = 160  # frames are measured at this width: motion energy is a coarse, cheap feature
_HOP, _FFT = 512, 2048
# A level (RMS, chroma, ...) of frame t is taken over [(t - _LEAD) / fps, (t + 1 - _LEAD) / fps): a frame's length of
# sound from a quarter frame before it shows, between the conventions that take a frame's sound from its start and
# centred on it (it correlates with both above 0.84 at 10 fps; either one alone falls to 0.65 against the other). An
# attack (onset) is an instant: it belongs to the frame on screen when it is heard, [t / fps, (t + 1) / fps).
_LEAD = 0.25


@dataclass(frozen=True)
class AVParams(Options):
    """How the soundtrack drives the picture's dream."""

    drive: str = option("none", "audio feature of the soundtrack that drives each frame's dream strength (rms: "
                                "loudness; onset: attacks; centroid: brightness; percussive: the drums' attacks, "
                                "harmonic: the loudness of the tones, both from a harmonic/percussive separation; "
                                "none: an even strength)", choices=FEATURES)
    drive_low: float = option(0.3, "relative dream strength at the feature's quietest (5th percentile)", ge=0.0,
                              le=10.0)
    drive_high: float = option(1.0, "relative dream strength at the feature's loudest (99th percentile); the curve "
                                    "is then scaled to mean 1", le=10.0)
    attack_s: float = option(0.0, "drive envelope rise time, seconds (how fast the dream follows a louder sound; 0: "
                                  "within the frame)", ge=0.0, le=10.0, unit="seconds")
    release_s: float = option(0.0, "drive envelope fall time, seconds (how slowly it lets go; 0: within the frame)",
                              ge=0.0, le=10.0, unit="seconds")
    max_change: float = option(0.08, "flicker budget: the drive's mean change from frame to frame (relative "
                                     "strength) at most this; a faster curve pulses less deeply (same shape)",
                               gt=0.0, le=10.0)
    channels_follow: str = option("none", "what chooses the channels the picture dreams, frame by frame (chroma: "
                                          "the pitch classes of the sound's harmonic part weight 12 channel groups "
                                          "of each dream layer; none: all alike)", choices=("none", "chroma"))
    sound_follows: str = option("none", "picture feature that sets the sound dream's intensity over time (motion: "
                                        "the optical flow's energy; none: even)", choices=PICTURE_FEATURES)

    def cross_checks(self) -> Iterable[tuple[bool, str, str]]:
        return [(self.drive_low <= self.drive_high, "drive_high", "at least drive_low")]


def _per_frame(values: np.ndarray, rate: int, fps: float, frames: int, how: str) -> np.ndarray:
    """Hop-wise values ``(..., hops)`` (hop ``k`` centred at ``k * 512 / rate`` s) -> per frame ``(..., frames)``:
    the mean of the hops heard with frame ``t`` (``how="mean"``, a level: from a quarter frame before it shows) or
    their maximum (``"max"``, attacks: while it shows); a frame shorter than a hop takes the value at its middle; 0
    past the sound's end."""
    lead = _LEAD if how == "mean" else 0.0
    flat = values.reshape(-1, values.shape[-1]).astype(np.float64)
    centres = np.arange(flat.shape[1]) * _HOP / rate
    bins = np.floor(centres * fps + lead + 1e-9).astype(np.int64)
    keep = bins < frames
    counts = np.bincount(bins[keep], minlength=frames)
    middles = (np.arange(frames) + 0.5 - lead) / fps
    empty = np.flatnonzero((counts == 0) & (middles <= centres[-1]))
    out = np.zeros((flat.shape[0], frames))
    for row, target in zip(flat, out):
        if how == "max":
            np.maximum.at(target, bins[keep], row[keep])
        else:
            target[:] = np.bincount(bins[keep], weights=row[keep], minlength=frames) / np.maximum(counts, 1)
        target[empty] = np.interp(middles[empty], centres, row)
    return out.reshape(values.shape[:-1] + (frames,))


def frame_rms(mono: np.ndarray, rate: int, fps: float, frames: int) -> np.ndarray:
    """RMS of the samples heard with each frame ``(frames,)``: a frame's length of sound from a quarter frame before
    it shows, ``[(t - 1/4) / fps, (t + 3/4) / fps)`` (0 past the end) — the loudness at the frame rate, whatever the
    rate, between the conventions that take a frame's sound from its start and centred on it."""
    times = (np.arange(frames + 1) - _LEAD) * rate / fps
    edges = np.clip(np.round(times).astype(np.int64), 0, mono.size)
    power = np.concatenate([[0.0], np.cumsum(mono.astype(np.float64) ** 2)])
    span = np.diff(edges)
    return np.sqrt(np.diff(power[edges]) / np.maximum(span, 1)) * (span > 0)


def separate(mono: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive complex spectrograms ``(1025, hops)`` of a mono clip (2048-point STFT, hop 512;
    librosa's median-filter separation, soft masks): tones are horizontal ridges, drum hits vertical ones."""
    import librosa

    harmonic, percussive = librosa.decompose.hpss(librosa.stft(mono, n_fft=_FFT, hop_length=_HOP))
    return harmonic, percussive


def frame_features(samples: np.ndarray, rate: int, fps: float, frames: int,
                   names: Iterable[str] = ("rms", "onset", "centroid", "chroma")) -> dict[str, np.ndarray]:
    """Per-frame features of a soundtrack ``(C, n)`` or ``(n,)`` over what is heard with each frame (frame ``t``: a
    frame's length from a quarter frame before it shows; silence past the sound's end): ``rms``, ``onset`` (the frame's
    strongest attack), ``centroid`` (Hz), ``percussive`` (the percussive part's strongest attack), ``harmonic``
    (the harmonic part's RMS) ``(frames,)``, and ``chroma`` of the harmonic part ``(12, frames)``."""
    import librosa

    if frames <= 0 or fps <= 0:
        raise ParameterError(f"need a positive frame count and rate; got {frames} frames at {fps} fps")
    mono = np.asarray(samples, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    if mono.ndim != 1 or mono.size == 0:
        raise ParameterError(f"samples must be (channels, n) or (n,) with n > 0; got shape {np.shape(samples)}")
    mono = np.pad(mono, (0, max(0, _FFT - mono.size)))
    names = tuple(names)
    parts = separate(mono) if {"percussive", "harmonic", "chroma"} & set(names) else None
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name == "rms":
            out[name] = frame_rms(mono, rate, fps, frames)
        elif name == "onset":
            env = librosa.onset.onset_strength(y=mono, sr=rate, hop_length=_HOP)
            out[name] = _per_frame(env, rate, fps, frames, "max")
        elif name == "centroid":
            centroid = librosa.feature.spectral_centroid(y=mono, sr=rate, n_fft=_FFT, hop_length=_HOP)[0]
            out[name] = _per_frame(centroid, rate, fps, frames, "mean")
        elif name == "percussive":
            assert parts is not None
            env = librosa.onset.onset_strength(S=librosa.power_to_db(np.abs(parts[1]) ** 2, ref=np.max), sr=rate)
            out[name] = _per_frame(env, rate, fps, frames, "max")
        elif name == "harmonic":
            assert parts is not None
            power = librosa.feature.rms(S=np.abs(parts[0]), frame_length=_FFT)[0] ** 2
            out[name] = np.sqrt(_per_frame(power, rate, fps, frames, "mean"))
        elif name == "chroma":
            assert parts is not None
            # Constant-Q: a 2048-point STFT cannot tell the semitones of bass notes apart (21 Hz bins at 44.1 kHz).
            tones = librosa.istft(parts[0], hop_length=_HOP, length=mono.size)
            chroma = librosa.feature.chroma_cqt(y=tones, sr=rate, hop_length=_HOP, tuning=0.0)
            out[name] = _per_frame(chroma, rate, fps, frames, "mean")
        else:
            raise ParameterError(f"unknown sound feature {name!r}; one of {', '.join(FEATURES[1:])}, chroma")
    return out


def envelope(values: np.ndarray, fps: float, attack_s: float, release_s: float) -> np.ndarray:
    """Attack/release envelope follower over a per-frame series ``(frames,)``: it rises toward a larger value with
    time constant ``attack_s`` and falls toward a smaller one with ``release_s`` (0: at once). The time constants
    are seconds, so the response is the same at any frame rate (per frame: ``1 - exp(-1 / (fps * seconds))``)."""
    def coefficient(seconds: float) -> float:
        return 1.0 if seconds <= 0 else 1.0 - math.exp(-1.0 / (fps * seconds))

    up, down = coefficient(attack_s), coefficient(release_s)
    out = np.empty(len(values), dtype=np.float64)
    level = float(values[0]) if len(values) else 0.0
    for i, v in enumerate(values):
        level += (up if v > level else down) * (float(v) - level)
        out[i] = level
    return out


def drive_schedule(samples: np.ndarray, rate: int, fps: float, frames: int, params: AVParams = AVParams()
                   ) -> np.ndarray:
    """Each frame's dream-strength multiplier ``(frames,)`` (mean 1; all ones for ``drive="none"`` or a flat
    feature such as silence)."""
    params.validate()
    if params.drive == "none":
        return np.ones(frames)
    feature = frame_features(samples, rate, fps, frames, (params.drive,))[params.drive]
    return _curve(feature, fps, params, params.max_change)


def _curve(feature: np.ndarray, fps: float, params: AVParams, max_change: float | None = None) -> np.ndarray:
    """A feature ``(frames,)`` -> multipliers: percentile-normalised, enveloped, mapped to low..high, mean 1; with
    ``max_change``, its depth limited so that the mean change per frame is at most that (an affine map: the shape
    stays)."""
    frames = len(feature)
    feature = feature.astype(np.float64)
    lo, hi = np.percentile(feature, [5, 99])
    if hi - lo <= 1e-9 * max(abs(hi), 1.0):
        return np.ones(frames)
    level = envelope(np.clip((feature - lo) / (hi - lo), 0.0, 1.0), fps, params.attack_s, params.release_s)
    drive = params.drive_low + (params.drive_high - params.drive_low) * level
    mean = drive.mean()
    if mean <= 0:
        return np.ones(frames)
    drive = drive / mean
    change = float(np.abs(np.diff(drive)).mean()) if frames > 1 else 0.0
    if max_change is None or change <= max_change:
        return drive
    return 1.0 + (drive - 1.0) * (max_change / change)


def film_drive(input_path: str | os.PathLike[str], plan: FilmPlan, params: AVParams) -> list[float] | None:
    """The drive of every frame of a film job, indexed by frame index (frames before ``plan.start``: 1), from the
    stretch of its soundtrack the frames cover; None when nothing drives the picture."""
    params.validate()
    if params.drive == "none":
        return None
    if plan.sound is None:
        raise ParameterError(f"av.drive={params.drive!r} needs a soundtrack and {input_path} has none; "
                             "set drive to none")
    samples, rate = read_audio(plan.sound, start_s=plan.start / plan.fps, duration_s=plan.count / plan.fps)
    return [1.0] * plan.start + drive_schedule(samples, rate, plan.fps, plan.count, params).tolist()


def motion_energy(frames: Iterable[torch.Tensor]) -> np.ndarray:
    """Mean optical-flow magnitude (pixels at a width of 160) of each frame ``(3, H, W)`` against the one before
    ``(frames,)``; the first frame gets the second's value."""
    out: list[float] = []
    prev = None
    for frame in frames:
        small = F.interpolate(frame[None], scale_factor=_MOTION_SIZE / frame.shape[-1], mode="area")[0]
        if prev is not None:
            out.append(float(optical_flow(prev, small).norm(dim=0).mean()))
        prev = small
    if not out:
        return np.zeros(0 if prev is None else 1)
    return np.array(out[:1] + out)


def sound_gain(input_path: str | os.PathLike[str], plan: FilmPlan, params: AVParams) -> np.ndarray | None:
    """Per-frame gain ``(count,)`` (mean 1) of the sound dream's change over the film's frames, from the picture
    (``sound_follows``); None when the sound dream is even."""
    params.validate()
    if params.sound_follows == "none":
        return None
    energy = motion_energy(source_frames(input_path, plan, plan.start, plan.stop))
    return _curve(energy, plan.fps, params)


def chroma_schedule(samples: np.ndarray, rate: int, fps: float, frames: int, params: AVParams = AVParams()
                    ) -> np.ndarray:
    """Per-frame weights of the 12 pitch classes ``(frames, 12)``: the chroma, each bin through the attack/release
    envelope, sharpened (squared) and normalised to sum 1 (uniform where the sound is silent)."""
    chroma = frame_features(samples, rate, fps, frames, ("chroma",))["chroma"]
    smooth = np.stack([envelope(row, fps, params.attack_s, params.release_s) for row in chroma], axis=1) ** 2
    total = smooth.sum(axis=1, keepdims=True)
    return np.where(total > 1e-12, smooth / np.maximum(total, 1e-12), 1.0 / 12)


@dataclass(frozen=True)
class ChromaObjectives:
    """Per-frame objectives: each layer term of ``base`` becomes a :class:`ChannelGroupsTerm` weighted by the frame's
    chroma (``weights[index]``, 12 values); other terms stay."""

    base: Objective
    weights: Sequence[Sequence[float]]

    def __post_init__(self) -> None:
        if not any(isinstance(t, LayerTerm) for t in self.base.terms):
            raise ParameterError("channels_follow=chroma weights the channels of the objective's layers; this "
                                 "objective has none (dream layers rather than a class or a guide)")

    @property
    def layers(self) -> tuple[str, ...]:
        return self.base.layers

    def at(self, index: int) -> Objective:
        w = tuple(float(v) for v in self.weights[index])
        return Objective(tuple(ChannelGroupsTerm(t.layer, w, t.weight) if isinstance(t, LayerTerm) else t
                               for t in self.base.terms))


def film_chroma(input_path: str | os.PathLike[str], plan: FilmPlan, params: AVParams) -> list[list[float]] | None:
    """Every frame's chroma weights ``[[12 floats]]`` by frame index (frames before ``plan.start``: uniform), from
    the stretch of the soundtrack the frames cover; None unless ``channels_follow`` is chroma."""
    params.validate()
    if params.channels_follow == "none":
        return None
    if plan.sound is None:
        raise ParameterError(f"av.channels_follow=chroma needs a soundtrack and {input_path} has none")
    samples, rate = read_audio(plan.sound, start_s=plan.start / plan.fps, duration_s=plan.count / plan.fps)
    weights = chroma_schedule(samples, rate, plan.fps, plan.count, params)
    return [[1.0 / 12] * 12] * plan.start + np.round(weights, 6).tolist()
