"""Sound drives the picture: audio features per video frame, smoothed, mapped to each frame's dream strength.

A film's soundtrack ``(C, n)`` at ``rate`` gives, per video frame (at the frame's time, ``fps``), its RMS level,
onset strength, spectral centroid and chroma (librosa, on the mono mix, 512-sample hops, linearly interpolated to
the frame times). The driving feature is normalised to [0, 1] (between its 5th and 99th percentiles), smoothed by an
attack/release envelope follower (fast rise, slow fall, as a compressor's side chain), mapped linearly to
``drive_low``..``drive_high`` and scaled to mean 1: the *drive* of each frame multiplies the dream's strength, so
the film's average strength stays what the undriven dream gives while loud passages dream harder and quiet ones
softer.

The schedule is computed once from the whole soundtrack, before any sharding, so every shard sees the same curve.
The sound's chroma can also choose *what* the picture dreams (``channels_follow="chroma"``): each dream layer's
channels are split into 12 groups, one per pitch class, weighted frame by frame by the chroma (a C major chord
dreams other channels than an F# one). The other way round, the picture's motion (optical-flow energy per frame, the
same mapping) can set the sound dream's intensity over time (``sound_follows="motion"``): the dreamed change of the
soundtrack is scaled by it.

>>> drive = drive_schedule(samples, rate, fps=25.0, frames=132, params=AVParams(drive="rms"))   # (132,) mean 1
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from mmdream.errors import ParameterError, check_options
from mmdream.film import FilmPlan, source_frames
from mmdream.media.video import read_audio
from mmdream.objectives import ChannelGroupsTerm, LayerTerm, Objective
from mmdream.ops.flow import optical_flow

__all__ = ["AVParams", "FEATURES", "PICTURE_FEATURES", "frame_features", "envelope", "drive_schedule", "film_drive",
           "motion_energy", "sound_gain", "chroma_schedule", "ChromaObjectives", "film_chroma"]

FEATURES = ("none", "rms", "onset", "centroid")
PICTURE_FEATURES = ("none", "motion")
_MOTION_SIZE = 160  # frames are measured at this width: motion energy is a coarse, cheap feature
_HOP = 512


@dataclass(frozen=True)
class AVParams:
    """How the soundtrack drives the picture's dream."""

    drive: str = field(default="none", metadata={"help": "audio feature of the soundtrack that drives each "
                                                          "frame's dream strength (none: an even strength)",
                                                  "choices": FEATURES})
    drive_low: float = field(default=0.3, metadata={"help": "relative dream strength at the feature's quietest "
                                                             "(5th percentile)"})
    drive_high: float = field(default=1.0, metadata={"help": "relative dream strength at the feature's loudest "
                                                              "(99th percentile); the curve is then scaled to mean 1"})
    attack_s: float = field(default=0.02, metadata={"help": "drive envelope rise time, seconds (how fast the "
                                                             "dream follows a louder sound)"})
    release_s: float = field(default=0.08, metadata={"help": "drive envelope fall time, seconds (how slowly it "
                                                              "lets go)"})
    channels_follow: str = field(default="none", metadata={"help": "what chooses the channels the picture "
                                                                   "dreams, frame by frame (chroma: the sound's 12 "
                                                                   "pitch classes weight 12 channel groups of each "
                                                                   "dream layer; none: all alike)",
                                                           "choices": ("none", "chroma")})
    sound_follows: str = field(default="none", metadata={"help": "picture feature that sets the sound dream's "
                                                                 "intensity over time (motion: the optical flow's "
                                                                 "energy; none: even)",
                                                         "choices": PICTURE_FEATURES})

    def validate(self) -> AVParams:
        """Raise ParameterError naming the first bad option; return self."""
        checks = [
            (self.drive in FEATURES, "drive", f"one of {', '.join(FEATURES)}"),
            (0.0 <= self.drive_low <= 10.0, "drive_low", "a number from 0 to 10"),
            (self.drive_low <= self.drive_high <= 10.0, "drive_high", "at least drive_low and at most 10"),
            (0.0 <= self.attack_s <= 10.0, "attack_s", "from 0 to 10 seconds"),
            (0.0 <= self.release_s <= 10.0, "release_s", "from 0 to 10 seconds"),
            (self.sound_follows in PICTURE_FEATURES, "sound_follows", f"one of {', '.join(PICTURE_FEATURES)}"),
            (self.channels_follow in ("none", "chroma"), "channels_follow", "none or chroma"),
        ]
        check_options(self, checks)
        return self


def frame_features(samples: np.ndarray, rate: int, fps: float, frames: int) -> dict[str, np.ndarray]:
    """Per-frame features of a soundtrack ``(C, n)`` or ``(n,)``: ``rms``, ``onset``, ``centroid`` (Hz) ``(frames,)``
    and ``chroma`` ``(12, frames)``; frame ``t`` is heard at ``t / fps`` seconds (silence past the sound's end)."""
    import librosa

    if frames <= 0 or fps <= 0:
        raise ParameterError(f"need a positive frame count and rate; got {frames} frames at {fps} fps")
    mono = np.asarray(samples, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    if mono.ndim != 1 or mono.size == 0:
        raise ParameterError(f"samples must be (channels, n) or (n,) with n > 0; got shape {np.shape(samples)}")
    mono = np.pad(mono, (0, max(0, 2048 - mono.size)))
    feats = {
        "rms": librosa.feature.rms(y=mono, frame_length=2048, hop_length=_HOP)[0],
        "onset": librosa.onset.onset_strength(y=mono, sr=rate, hop_length=_HOP),
        "centroid": librosa.feature.spectral_centroid(y=mono, sr=rate, n_fft=2048, hop_length=_HOP)[0],
        "chroma": librosa.feature.chroma_stft(y=mono, sr=rate, n_fft=2048, hop_length=_HOP, tuning=0.0),
    }
    times = np.arange(frames) / fps
    out = {}
    for name, values in feats.items():
        grid = librosa.frames_to_time(np.arange(values.shape[-1]), sr=rate, hop_length=_HOP)
        rows = np.atleast_2d(values)
        interp = np.stack([np.interp(times, grid, row, right=0.0) for row in rows])
        out[name] = interp if values.ndim == 2 else interp[0]
    return out


def envelope(values: np.ndarray, fps: float, attack_s: float, release_s: float) -> np.ndarray:
    """Attack/release envelope follower over a per-frame series ``(frames,)``: it rises toward a larger value with
    time constant ``attack_s`` and falls toward a smaller one with ``release_s`` (0: at once)."""
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
    return _curve(frame_features(samples, rate, fps, frames)[params.drive], fps, params)


def _curve(feature: np.ndarray, fps: float, params: AVParams) -> np.ndarray:
    """A feature ``(frames,)`` -> multipliers: percentile-normalised, enveloped, mapped to low..high, mean 1."""
    frames = len(feature)
    feature = feature.astype(np.float64)
    lo, hi = np.percentile(feature, [5, 99])
    if hi - lo <= 1e-9 * max(abs(hi), 1.0):
        return np.ones(frames)
    level = envelope(np.clip((feature - lo) / (hi - lo), 0.0, 1.0), fps, params.attack_s, params.release_s)
    drive = params.drive_low + (params.drive_high - params.drive_low) * level
    mean = drive.mean()
    return drive / mean if mean > 0 else np.ones(frames)


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
    chroma = frame_features(samples, rate, fps, frames)["chroma"]
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
