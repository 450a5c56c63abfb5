"""Measures of a dreamed film against its source: flicker, strength, luminance drift. Frames ``(3, H, W)`` in [0, 1].
Of a sound: spectral flux at segment joins (:func:`join_flux_ratio`).

Flicker (the video issue's definition): the mean over frames of |D_t - warp(D_{t-1})| on pixels whose flow is
reliable, with flow and mask taken from the *source* frames, divided by the same quantity of the source itself.
Flicker excess: the same difference minus the source's, on the 0-255 scale (what the dream adds; bound 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmdream.ops.flow import consistency_mask, optical_flow, warp

_LUMA = (0.299, 0.587, 0.114)


def warped_differences(frames: Sequence[torch.Tensor], source: Sequence[torch.Tensor],
                       method: str = "dis") -> list[float]:
    """Per transition t-1 -> t: mean |frames_t - warp(frames_{t-1})| on reliable pixels, flow from ``source``."""
    if len(frames) != len(source) or len(frames) < 2:
        raise ValueError("need two or more frames and as many source frames")
    out = []
    for t in range(1, len(frames)):
        backward = optical_flow(source[t], source[t - 1], method)
        mask = consistency_mask(optical_flow(source[t - 1], source[t], method), backward)
        diff = (frames[t] - warp(frames[t - 1], backward)).abs().mean(0)
        out.append(float((diff * mask).sum() / mask.sum().clamp_min(1.0)))
    return out


def warped_difference(frames: Sequence[torch.Tensor], source: Sequence[torch.Tensor], method: str = "dis") -> float:
    """Mean over t of mean |frames_t - warp(frames_{t-1})| on reliable pixels, flow from ``source``."""
    diffs = warped_differences(frames, source, method)
    return sum(diffs) / len(diffs)


def flicker(dreams: Sequence[torch.Tensor], source: Sequence[torch.Tensor], method: str = "dis") -> float:
    """Flicker ratio of a dreamed sequence: its warped frame difference over the source's (1: as steady as it)."""
    return warped_difference(dreams, source, method) / warped_difference(source, source, method)


def flicker_excess(dreams: Sequence[torch.Tensor], source: Sequence[torch.Tensor], method: str = "dis") -> float:
    """The frame-to-frame change a dream adds to its source's, on the 0-255 scale: 255 × (warped frame difference
    of ``dreams`` − that of ``source``). 0: as steady as the source; the film bound is 1."""
    return 255.0 * (warped_difference(dreams, source, method) - warped_difference(source, source, method))


def strengths(dreams: Sequence[torch.Tensor], source: Sequence[torch.Tensor]) -> list[float]:
    """Per-frame dream strength mean |D - S| in [0, 1] units (× 255 for the 8-bit scale)."""
    return [float((d - s).abs().mean()) for d, s in zip(dreams, source)]


def luminance(frame: torch.Tensor) -> float:
    w = torch.tensor(_LUMA, dtype=frame.dtype, device=frame.device).view(3, 1, 1)
    return float((frame * w).sum(0).mean())


def luminance_drift(dreams: Sequence[torch.Tensor], source: Sequence[torch.Tensor]) -> float:
    """Largest relative change over the clip of the dream's mean luminance against the source's.

    r_t = luma(D_t) / luma(S_t); drift = max_t |r_t - r_0| / r_0, with r smoothed over a tenth of the clip.
    """
    r = torch.tensor([luminance(d) / max(luminance(s), 1e-6) for d, s in zip(dreams, source)])
    k = max(1, len(r) // 10)
    smooth = torch.nn.functional.avg_pool1d(r.view(1, 1, -1), k, stride=1).flatten()
    return float((smooth - smooth[0]).abs().max() / smooth[0])


def tenths_ratio(values: Sequence[float]) -> float:
    """Mean of the last tenth of ``values`` over the mean of the first tenth (1: stable)."""
    k = max(1, len(values) // 10)
    return (sum(values[-k:]) / k) / max(sum(values[:k]) / k, 1e-12)


FLUX_FFT, FLUX_HOP = 512, 128


def spectral_flux(x: torch.Tensor) -> torch.Tensor:
    """Spectral flux per STFT frame of a clip ``(n,)`` (512-point Hann, hop 128): the L1 change of the magnitude
    over the previous frame, relative to the frame's L1 magnitude. Entry ``t`` is the change from frame ``t`` to
    ``t + 1``."""
    mag = torch.stft(x, FLUX_FFT, FLUX_HOP, window=torch.hann_window(FLUX_FFT, dtype=x.dtype), center=True,
                     return_complex=True).abs()
    return (mag[:, 1:] - mag[:, :-1]).abs().sum(0) / (mag[:, 1:].sum(0) + 1e-12)


def join_flux_ratio(y: torch.Tensor, plan: Sequence[tuple[int, int]], overlap: int, q: float | None = None
                    ) -> float:
    """Spectral flux at the joins of segments ``plan`` (each shared stretch of ``overlap`` samples, plus an FFT
    length on each side) over the flux elsewhere, for a clip ``y`` ``(n,)`` (1: joins as smooth as the rest; the
    audio issue's bound is 1.2).

    ``q=None``: the highest flux at the joins over the median elsewhere — strict, for a steady signal such as a
    chirp, where any join click stands out. ``q`` in (0, 1): that quantile at the joins over the same quantile
    elsewhere — like for like, for content whose own flux varies (a dream, music): a click at the joins lifts the
    joins' upper quantiles above the rest's."""
    f = spectral_flux(y)
    centres = torch.arange(f.shape[0]) * FLUX_HOP + FLUX_HOP // 2  # between frames t and t + 1
    near = torch.zeros_like(f, dtype=torch.bool)
    for a, _ in plan[1:]:
        near |= (centres >= a - FLUX_FFT) & (centres < a + overlap + FLUX_FFT)
    if q is None:
        return float(f[near].max() / f[~near].median())
    return float(torch.quantile(f[near], q) / torch.quantile(f[~near], q))
