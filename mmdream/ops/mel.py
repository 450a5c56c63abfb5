"""Differentiable STFT magnitude, mel spectrogram and log-mel over waveforms ``(..., time)``.

Pure functions (gradients flow to the waveform) plus a thin :class:`LogMel` module that holds a :class:`MelParams`.
The defaults are ``librosa.feature.melspectrogram``'s (centred frames, zero padding, periodic Hann, power 2,
Slaney mel filters with Slaney area normalisation), so ``mel_spectrogram(y, sample_rate=sr)`` matches
``librosa.feature.melspectrogram(y=y, sr=sr)``. Two further conventions cover TensorFlow's ``tf.signal``
front-ends (YAMNet, VGGish): ``window_at="start"`` (frames of ``win_length`` samples, zero-padded at their end to
``n_fft``) and ``mel_scale="tf"`` (``tf.signal.linear_to_mel_weight_matrix``).

>>> mel = mel_spectrogram(y, sample_rate=22050)           # y (..., time) -> (..., 128, frames)
>>> lm = log_mel(y, MelParams(sample_rate=16000, n_mels=64, log_offset=1e-3))

Mel filter banks are built once per set of parameters (on the CPU, in float64) and cast to the input's device
and dtype on use.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmdream.errors import ParameterError

__all__ = [
    "MelParams", "LogMel", "stft_magnitude", "mel_filters", "tf_mel_filters", "filter_bank", "apply_mel",
    "mel_spectrogram", "log_mel", "frame_count",
]

_WINDOWS = ("hann", "hamming", "rect")
_PAD_MODES = ("constant", "reflect", "replicate", "circular")
_MEL_SCALES = ("slaney", "htk", "tf")


@dataclass(frozen=True)
class MelParams:
    """Every option of the log-mel front-end; the defaults are librosa's ``melspectrogram``.

    - ``hop_length`` defaults to ``n_fft // 4``, ``win_length`` to ``n_fft``; ``fmax`` to ``sample_rate / 2``.
    - ``window``: periodic ``"hann"``, ``"hamming"`` or ``"rect"`` of ``win_length`` samples.
    - ``center``: pad ``frame // 2`` samples on both sides (``pad_mode``) so frame ``t`` is centred at
      ``t * hop_length``; otherwise frame ``t`` starts there.
    - ``window_at``: ``"center"`` (librosa, torch.stft: frames are ``n_fft`` long, a shorter window sits in their
      middle) or ``"start"`` (tf.signal.stft: frames are ``win_length`` long, zero-padded at their end to ``n_fft``).
    - ``power``: 1 for magnitude, 2 for power.
    - ``mel_scale``: ``"slaney"`` / ``"htk"`` (librosa's filters, ``htk=False/True``, with ``norm``) or ``"tf"``
      (tf.signal.linear_to_mel_weight_matrix: HTK mel, triangles linear in mel, no normalisation, DC weight 0).
    - ``log_offset``: :func:`log_mel` is ``log(mel + log_offset)`` (natural log).
    """

    sample_rate: int = 22050
    n_fft: int = 2048
    hop_length: int | None = None
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    window_at: str = "center"
    power: float = 2.0
    n_mels: int = 128
    fmin: float = 0.0
    fmax: float | None = None
    mel_scale: str = "slaney"
    norm: str | None = "slaney"
    log_offset: float = 1e-6

    def __post_init__(self) -> None:
        def positive_int(name: str, value: Any) -> None:
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ParameterError(f"mel {name} must be a positive integer; got {value!r}")

        for name in ("sample_rate", "n_fft", "n_mels"):
            positive_int(name, getattr(self, name))
        for name in ("hop_length", "win_length"):
            if getattr(self, name) is not None:
                positive_int(name, getattr(self, name))
        if self.win_length is not None and self.win_length > self.n_fft:
            raise ParameterError(f"mel win_length {self.win_length} exceeds n_fft {self.n_fft}; raise n_fft")
        if self.window not in _WINDOWS:
            raise ParameterError(f"unknown window '{self.window}'; available: {', '.join(_WINDOWS)}")
        if self.pad_mode not in _PAD_MODES:
            raise ParameterError(f"unknown pad_mode '{self.pad_mode}'; available: {', '.join(_PAD_MODES)}")
        if self.window_at not in ("center", "start"):
            raise ParameterError(f"window_at must be 'center' or 'start'; got {self.window_at!r}")
        if self.mel_scale not in _MEL_SCALES:
            raise ParameterError(f"unknown mel_scale '{self.mel_scale}'; available: {', '.join(_MEL_SCALES)}")
        if not self.power > 0:
            raise ParameterError(f"mel power must be > 0; got {self.power!r}")
        if not 0 <= self.fmin < self.top_hz <= self.sample_rate / 2:
            raise ParameterError(
                f"mel band {self.fmin}..{self.top_hz} Hz must satisfy 0 <= fmin < fmax <= {self.sample_rate / 2}"
            )
        if not self.log_offset > 0:
            raise ParameterError(f"log_offset must be > 0; got {self.log_offset!r}")

    @property
    def hop(self) -> int:
        return self.hop_length or self.n_fft // 4

    @property
    def win(self) -> int:
        return self.win_length or self.n_fft

    @property
    def top_hz(self) -> float:
        return float(self.fmax) if self.fmax is not None else self.sample_rate / 2

    @property
    def n_freqs(self) -> int:
        return self.n_fft // 2 + 1


def _window(kind: str, length: int, like: torch.Tensor) -> torch.Tensor:
    dtype = like.dtype if like.is_floating_point() else torch.float32
    if kind == "hann":
        return torch.hann_window(length, periodic=True, dtype=dtype, device=like.device)
    if kind == "hamming":
        return torch.hamming_window(length, periodic=True, dtype=dtype, device=like.device)
    return torch.ones(length, dtype=dtype, device=like.device)


def frame_count(samples: int, params: MelParams) -> int:
    """Number of STFT frames :func:`stft_magnitude` gives for ``samples`` samples."""
    frame = params.n_fft if params.window_at == "center" else params.win
    if params.center:
        samples += 2 * (frame // 2)
    return 0 if samples < frame else 1 + (samples - frame) // params.hop


def stft_magnitude(waveform: torch.Tensor, params: MelParams | None = None, **changes: Any) -> torch.Tensor:
    """``|STFT| ** power`` of ``waveform`` ``(..., time)`` -> ``(..., n_fft // 2 + 1, frames)``.

    Options come from ``params`` (default :class:`MelParams`) with ``changes`` applied; only the STFT ones matter
    here. Differentiable; a frame of zeros gives zero gradient, not NaN.
    """
    p = _params(params, changes)
    if waveform.dim() < 1 or not waveform.is_floating_point():
        raise ParameterError(f"waveform must be a float tensor (..., time); got {waveform.dtype} {tuple(waveform.shape)}")
    window = _window(p.window, p.win, waveform)
    if p.window_at == "center":
        left = (p.n_fft - p.win) // 2
        window = F.pad(window, (left, p.n_fft - p.win - left))
    frame = window.numel()
    x = waveform
    if p.center:
        half = frame // 2
        if p.pad_mode == "constant":
            x = F.pad(x, (half, half))
        else:
            if p.pad_mode == "reflect" and x.shape[-1] <= half:
                raise ParameterError(f"reflect padding needs more than {half} samples; got {x.shape[-1]}")
            lead = x.shape[:-1]
            x = F.pad(x.reshape(-1, 1, x.shape[-1]), (half, half), mode=p.pad_mode).reshape(*lead, -1)
    if x.shape[-1] < frame:
        raise ParameterError(
            f"waveform of {waveform.shape[-1]} samples is shorter than one STFT frame ({frame} samples); "
            "give a longer clip or pad it"
        )
    frames = x.unfold(-1, frame, p.hop) * window  # (..., frames, frame)
    spec = torch.fft.rfft(frames, n=p.n_fft, dim=-1).transpose(-1, -2)  # (..., freqs, frames)
    if p.power == 2.0:
        return spec.real.square() + spec.imag.square()
    mag = spec.abs()
    return mag if p.power == 1.0 else mag.pow(p.power)


def _hz_to_mel_htk(f: np.ndarray | float) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)


@lru_cache(maxsize=32)
def mel_filters(sample_rate: int, n_fft: int, n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None,
                htk: bool = False, norm: str | None = "slaney") -> torch.Tensor:
    """librosa's mel filter bank ``(n_mels, n_fft // 2 + 1)``, float64 on the CPU (cached; do not modify)."""
    import librosa

    fb = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk,
                             norm=norm, dtype=np.float64)
    return torch.from_numpy(fb)


@lru_cache(maxsize=32)
def tf_mel_filters(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> torch.Tensor:
    """``tf.signal.linear_to_mel_weight_matrix`` transposed: ``(n_mels, n_fft // 2 + 1)``, float64, cached.

    Bin frequencies ``linspace(0, sr / 2, n_fft // 2 + 1)``; ``n_mels + 2`` band edges equally spaced in HTK mel
    (``1127 ln(1 + f / 700)``) from ``fmin`` to ``fmax``; triangles linear in mel, peak 1, no area normalisation;
    the DC bin has weight 0.
    """
    bins_mel = _hz_to_mel_htk(np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1))[1:, None]
    edges = np.linspace(_hz_to_mel_htk(fmin), _hz_to_mel_htk(fmax), n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel - lower) / (center - lower)
    falling = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rising, falling))  # (freqs - 1, n_mels)
    weights = np.concatenate([np.zeros((1, n_mels)), weights], axis=0)
    return torch.from_numpy(np.ascontiguousarray(weights.T))


def filter_bank(params: MelParams, like: torch.Tensor | None = None) -> torch.Tensor:
    """The mel filter bank ``(n_mels, n_fft // 2 + 1)`` of ``params``, on ``like``'s device and dtype if given."""
    if params.mel_scale == "tf":
        fb = tf_mel_filters(params.sample_rate, params.n_fft, params.n_mels, float(params.fmin), params.top_hz)
    else:
        fb = mel_filters(params.sample_rate, params.n_fft, params.n_mels, float(params.fmin), params.top_hz,
                         params.mel_scale == "htk", params.norm)
    return fb if like is None else fb.to(device=like.device, dtype=like.dtype)


def apply_mel(spec: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """``(..., freqs, frames)`` spectrogram -> ``(..., n_mels, frames)`` with a filter bank ``(n_mels, freqs)``."""
    return torch.matmul(fb.to(device=spec.device, dtype=spec.dtype), spec)


def mel_spectrogram(waveform: torch.Tensor, params: MelParams | None = None, **changes: Any) -> torch.Tensor:
    """Mel spectrogram of ``waveform`` ``(..., time)`` -> ``(..., n_mels, frames)``, like librosa's."""
    p = _params(params, changes)
    spec = stft_magnitude(waveform, p)
    return apply_mel(spec, filter_bank(p, spec))


def log_mel(waveform: torch.Tensor, params: MelParams | None = None, **changes: Any) -> torch.Tensor:
    """``log(mel_spectrogram + log_offset)`` (natural log) of ``waveform`` ``(..., time)`` -> ``(..., n_mels, frames)``."""
    p = _params(params, changes)
    return torch.log(mel_spectrogram(waveform, p) + p.log_offset)


def _params(params: MelParams | None, changes: dict[str, Any]) -> MelParams:
    base = params if params is not None else MelParams()
    if not changes:
        return base
    unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(MelParams)})
    if unknown:
        raise ParameterError(f"unknown mel option(s) {', '.join(unknown)}; see MelParams")
    return dataclasses.replace(base, **changes)


class LogMel(nn.Module):
    """``(..., time)`` waveform -> ``(..., n_mels, frames)``: log-mel (``log=True``) or mel spectrogram.

    Holds its :class:`MelParams`; no buffers or parameters (the filter bank is cached per parameters and follows
    the input's device and dtype), so it adds nothing to a state dict.
    """

    def __init__(self, params: MelParams | None = None, *, log: bool = True, **changes: Any) -> None:
        super().__init__()
        self.params = _params(params, changes)
        self.log = log

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return log_mel(waveform, self.params) if self.log else mel_spectrogram(waveform, self.params)

    def extra_repr(self) -> str:
        p = self.params
        return (f"sample_rate={p.sample_rate}, n_fft={p.n_fft}, hop={p.hop}, win={p.win}, n_mels={p.n_mels}, "
                f"mel_scale={p.mel_scale}, log={self.log}")
