"""Phase for magnitude spectrograms: STFT helpers and fast Griffin-Lim (Perraudin et al. 2013, with momentum).

Spectrograms are complex or magnitude tensors ``(..., n_fft // 2 + 1, frames)`` of a centred STFT with a periodic
Hann window of ``n_fft`` samples and hop ``hop`` (``torch.stft(center=True)``), so ``istft(stft(x)) == x``.

>>> spec = stft(x, 1024, 256)                                   # x (..., n) -> complex (..., 513, frames)
>>> y = griffin_lim(new_magnitude, 1024, 256, length=n, init=spec)  # keep the source's phase as the start
"""

from __future__ import annotations

import torch

from mmdream.errors import ParameterError

__all__ = ["stft", "istft", "griffin_lim"]


def _window(n_fft: int, like: torch.Tensor) -> torch.Tensor:
    dtype = like.real.dtype if like.is_complex() else like.dtype
    return torch.hann_window(n_fft, periodic=True, dtype=dtype, device=like.device)


def stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Complex STFT of ``x`` ``(..., n)`` -> ``(..., n_fft // 2 + 1, 1 + n // hop)`` (centred, zero-padded)."""
    lead = x.shape[:-1]
    spec = torch.stft(x.reshape(-1, x.shape[-1]), n_fft, hop, window=_window(n_fft, x), center=True,
                      pad_mode="constant", return_complex=True)
    return spec.reshape(*lead, *spec.shape[-2:])


def istft(spec: torch.Tensor, n_fft: int, hop: int, length: int) -> torch.Tensor:
    """Inverse of :func:`stft`: complex ``(..., freqs, frames)`` -> ``(..., length)`` (least-squares overlap-add)."""
    lead = spec.shape[:-2]
    out = torch.istft(spec.reshape(-1, *spec.shape[-2:]), n_fft, hop, window=_window(n_fft, spec), center=True,
                      length=length)
    return out.reshape(*lead, length)


def griffin_lim(magnitude: torch.Tensor, n_fft: int, hop: int, length: int, *, iters: int = 32,
                momentum: float = 0.99, init: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """A waveform ``(..., length)`` whose STFT magnitude approximates ``magnitude`` ``(..., freqs, frames)``.

    Fast Griffin-Lim: alternate projections between consistent spectrograms and the given magnitude, with
    ``momentum`` (0: classic Griffin-Lim; 0.99 converges in a few dozen iterations). ``init``: complex spectrogram
    whose phase starts the search (e.g. the source's: a dreamed magnitude then keeps the source's timing and
    transients); otherwise random phases from ``generator``.
    """
    if magnitude.shape[-2] != n_fft // 2 + 1:
        raise ParameterError(f"magnitude has {magnitude.shape[-2]} frequency bins; an n_fft of {n_fft} needs "
                             f"{n_fft // 2 + 1}")
    if iters < 0 or not 0.0 <= momentum < 1.0:
        raise ParameterError(f"iters must be >= 0 and momentum in [0, 1); got {iters}, {momentum}")
    magnitude = magnitude.detach()
    if init is not None:
        if init.shape != magnitude.shape:
            raise ParameterError(f"init spectrogram {tuple(init.shape)} does not match the magnitude "
                                 f"{tuple(magnitude.shape)}")
        angles = init / init.abs().clamp_min(1e-12)
    else:
        phase = torch.rand(magnitude.shape, generator=generator, dtype=torch.float64) * (2 * torch.pi)
        angles = torch.polar(torch.ones_like(phase), phase).to(device=magnitude.device)
    angles = angles.to(torch.complex128 if magnitude.dtype == torch.float64 else torch.complex64)
    previous = torch.zeros_like(angles)
    for _ in range(iters):
        rebuilt = stft(istft(magnitude * angles, n_fft, hop, length), n_fft, hop)
        angles = rebuilt - previous * (momentum / (1 + momentum))
        angles = angles / angles.abs().clamp_min(1e-12)
        previous = rebuilt
    return istft(magnitude * angles, n_fft, hop, length)
