"""Latent walks with sound: a generator's latent space travelled in time with music.

The path is a slerp through seeded key latents; the position along it advances every video frame by a step that
follows the music's onset strength (or RMS loudness): percentile-normalised to [0, 1] like :mod:`mmdream.schedules.drive`'s
drive, through an attack/release envelope, mapped to ``low``..1 and scaled so that the walk passes ``speed`` keys
per second on average. Beside the path, a drift whose direction is the frame's chroma (12 pitch classes, squared
and normalised) mixing 12 seeded orthonormal directions: it grows as the walk moves and decays as it moves on, so
a chord pulls the picture its own way and the motion stays tied to the beat. The latent keeps the path's norm.

Everything is a pure function of (audio, rate, fps, params, seed): the same inputs give the same latents, so a
film's frames can be rendered in shards by time and agree exactly.

>>> walk = latent_walk(mono, 44100, 25.0, WalkParams(), seed=0, latent_dim=100)   # walk.latents: (T, 100)
(:mod:`mmdream.pipelines.walk` renders it as a film.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mmdream.errors import MediaError, ParameterError
from mmdream.options import Options, option
from mmdream.schedules.drive import envelope, frame_features

__all__ = ["WalkParams", "Walk", "FOLLOW", "latent_walk", "slerp"]

FOLLOW = ("onset", "rms")
SILENCE = 1e-4  # peak amplitude (-80 dBFS) below which a sound counts as silent


@dataclass(frozen=True)
class WalkParams(Options):
    """How the music moves the latent."""

    speed: float = option(0.5, "key latents passed per second on average", gt=0.0, le=100.0)
    follow: str = option("onset", "audio feature the walk's speed follows (onset strength or rms loudness)",
                         choices=FOLLOW)
    low: float = option(0.05, "speed at the feature's quietest, relative to its loudest", ge=0.0, le=1.0)
    attack_s: float = option(0.0, "speed envelope rise time, seconds", ge=0.0, le=10.0, unit="seconds")
    release_s: float = option(0.04, "speed envelope fall time, seconds", ge=0.0, le=10.0, unit="seconds")
    chroma: float = option(0.5, "strength of the chroma-steered drift beside the path (0: the bare path)", ge=0.0,
                           le=10.0)


@dataclass(frozen=True)
class Walk:
    """Per-frame latents ``(T, latent_dim)`` float32, class vectors ``(T, num_classes)`` (None: unconditional),
    the walk's position in keys ``(T,)`` and each frame's relative speed ``(T,)`` (mean 1)."""

    latents: np.ndarray
    classes: np.ndarray | None
    position: np.ndarray
    speed: np.ndarray

    def __len__(self) -> int:
        return len(self.latents)


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between rows ``a`` and ``b`` ``(T, D)`` at fractions ``t`` ``(T,)`` (norms
    interpolated linearly; nearly parallel pairs fall back to a linear blend)."""
    na, nb = np.linalg.norm(a, axis=1, keepdims=True), np.linalg.norm(b, axis=1, keepdims=True)
    ua, ub = a / np.maximum(na, 1e-12), b / np.maximum(nb, 1e-12)
    omega = np.arccos(np.clip((ua * ub).sum(axis=1, keepdims=True), -1.0, 1.0))
    t = t[:, None]
    sin = np.sin(omega)
    safe = sin > 1e-6
    wa = np.where(safe, np.sin((1 - t) * omega) / np.where(safe, sin, 1.0), 1 - t)
    wb = np.where(safe, np.sin(t * omega) / np.where(safe, sin, 1.0), t)
    return (wa * ua + wb * ub) * ((1 - t) * na + t * nb)


def _speed(feature: np.ndarray, fps: float, params: WalkParams) -> np.ndarray:
    """Relative speed per frame ``(T,)``, mean 1: the feature normalised between its 5th and 99th percentiles,
    enveloped, mapped to low..1 (a flat feature: constant speed)."""
    lo, hi = np.percentile(feature, [5, 99])
    if hi - lo <= 1e-9 * max(abs(hi), 1.0):
        return np.ones(len(feature))
    level = envelope(np.clip((feature - lo) / (hi - lo), 0.0, 1.0), fps, params.attack_s, params.release_s)
    speed = params.low + (1.0 - params.low) * level
    return speed / speed.mean()


def latent_walk(audio: np.ndarray, rate: int, fps: float, params: WalkParams = WalkParams(), seed: int = 0, *,
                latent_dim: int = 100, num_classes: int = 0, class_index: int | None = None) -> Walk:
    """The walk for mono ``audio`` ``(n,)`` at ``rate``: one latent per video frame at ``fps`` for the sound's
    length (``ceil(n / rate * fps)`` frames). Conditional generators (``num_classes`` > 0) get class vectors:
    ``class_index`` throughout, or seeded key classes blended along the path."""
    params.validate()
    mono = np.asarray(audio, dtype=np.float64)
    if mono.ndim != 1:
        raise ParameterError(f"audio must be mono (n,); got shape {mono.shape}")
    if not 0 < fps <= 1000 or rate <= 0:
        raise ParameterError(f"need a positive frame rate and sample rate; got {fps} fps, {rate} Hz")
    if mono.size == 0 or float(np.abs(mono).max()) < SILENCE:
        raise MediaError("the audio holds no sound (silent or empty); give music to walk to")
    if class_index is not None and not 0 <= class_index < num_classes:
        raise ParameterError(f"generator class {class_index} is out of range: the generator has {num_classes} "
                             "classes" if num_classes else "this generator is not class-conditional; give no class")
    frames = math.ceil(mono.size / rate * fps)
    if frames < 2:
        raise MediaError(f"the audio lasts {mono.size / rate:.3f} s: under two frames at {fps:g} fps")
    feats = frame_features(mono.astype(np.float32), rate, fps, frames)
    speed = _speed(feats[params.follow].astype(np.float64), fps, params)
    steps = speed * params.speed / fps  # step into frame t, in keys (step 0 unused)
    position = np.concatenate([[0.0], np.cumsum(steps[1:])])
    keys_gen = torch.Generator().manual_seed(seed)  # key by key: key i does not depend on the sound's length
    keys = np.stack([torch.randn(latent_dim, generator=keys_gen, dtype=torch.float64).numpy()
                     for _ in range(int(position[-1]) + 2)])
    index = np.minimum(np.floor(position).astype(int), len(keys) - 2)
    path = slerp(keys[index], keys[index + 1], position - index)
    latents = path
    if params.chroma > 0:
        dirs_gen = torch.Generator().manual_seed(seed + 1)
        directions = torch.linalg.qr(torch.randn(latent_dim, 12, generator=dirs_gen, dtype=torch.float64))[0]
        directions = directions.numpy().T[: min(12, latent_dim)]  # (12, D) orthonormal
        chroma = feats["chroma"].T.astype(np.float64) ** 2  # (T, 12)
        weights = chroma / np.maximum(chroma.sum(axis=1, keepdims=True), 1e-12)
        pull = weights[:, : len(directions)] @ directions
        pull *= math.sqrt(latent_dim) / np.maximum(np.linalg.norm(pull, axis=1, keepdims=True), 1e-12)
        drift = np.zeros((frames, latent_dim))
        for t in range(1, frames):  # grows along the chroma's direction as the walk moves, decays likewise
            drift[t] = drift[t - 1] * max(0.0, 1.0 - steps[t]) + params.chroma * steps[t] * (math.pi / 2) * pull[t]
        mixed = path + drift
        latents = mixed * (np.linalg.norm(path, axis=1, keepdims=True)
                           / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12))
    classes = None
    if num_classes:
        if class_index is not None:
            classes = np.zeros((frames, num_classes))
            classes[:, class_index] = 1.0
        else:
            class_gen = torch.Generator().manual_seed(seed + 2)
            key_classes = [int(torch.randint(num_classes, (), generator=class_gen)) for _ in range(len(keys))]
            onehots = np.eye(num_classes)[key_classes]
            t = (position - index)[:, None]
            classes = (1 - t) * onehots[index] + t * onehots[index + 1]
    return Walk(latents.astype(np.float32), None if classes is None else classes.astype(np.float32), position,
                speed)
