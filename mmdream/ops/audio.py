"""Pure signal operations on sounds ``(..., time)``: warps (circular shift and resampling, phase-vocoder pitch
shift), band masks, spectral peak keeping and spectral flatness. No files, no globals.

>>> y = warp(x, shift=80.5, ratio=2 ** (0.5 / 12))          # delayed 80.5 samples, half a semitone higher
>>> y = vocoder_shift(x, -0.5, n_fft=1024)                    # half a semitone lower, same duration
>>> y = band_mask(x, 16000, 300.0, 4000.0)                    # only 300..4000 Hz
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["warp", "vocoder_shift", "band_mask", "keep_peaks", "band_flatness"]

_BAND_FFT = 1024  # STFT of the band mask at the network's rate: 64 ms frames, 15.6 Hz bins


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



def keep_peaks(magnitude: torch.Tensor, k: int) -> torch.Tensor:
    """``magnitude`` ``(..., freqs, frames)`` with all but the ``k`` largest bins of each frame set to 0
    (``k == 0`` or ``k >= freqs``: unchanged)."""
    if k <= 0 or k >= magnitude.shape[-2]:
        return magnitude
    top = magnitude.topk(k, dim=-2).indices
    return torch.zeros_like(magnitude).scatter_(-2, top, magnitude.gather(-2, top))



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

