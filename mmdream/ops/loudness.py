"""Loudness of sounds ``(..., C, time)``: RMS level, a look-ahead peak limiter, and a change added to a source at
the source's loudness with no sample beyond :data:`PEAK` (measured and rendered whole, or block by block).

>>> out = fit_level(source, change, window=limiter_window(rate))     # source (C, n) + change (n,) -> (C, n)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["PEAK", "LOUDNESS_TOLERANCE_DB", "LIMITER_S", "WINDOW", "rms", "rms_db", "limiter_window", "limit_peaks",
           "LevelStats", "apply_level", "plan_level", "fit_level"]

PEAK = 1 - 2**-10  # no output sample goes beyond this (0.99902, -0.0085 dBFS; exact in float16 and float32)
LOUDNESS_TOLERANCE_DB = 1.0
LIMITER_S = 0.005  # the limiter's gain ramps: 5 ms is inaudible
WINDOW = 220  # the limiter's window where no rate is given: LIMITER_S at 44.1 kHz
_EPS = 1e-12


def rms(x: torch.Tensor) -> float:
    """RMS of ``x`` (all samples of all channels), computed in float64."""
    return float(x.double().square().mean().sqrt())


def rms_db(x: torch.Tensor) -> float:
    """RMS level of ``x`` (all samples of all channels) in dB re full scale (1.0)."""
    return 10.0 * math.log10(float(x.double().square().mean()) + _EPS) if x.numel() else -120.0



def limiter_window(rate: int) -> int:
    """The limiter's ``window`` (samples) at ``rate``: :data:`LIMITER_S`, at least one sample."""
    return max(1, round(LIMITER_S * rate))


def limit_peaks(y: torch.Tensor, peak: float = PEAK, window: int = WINDOW) -> torch.Tensor:
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
                window: int = WINDOW) -> torch.Tensor:
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
              peak: float = PEAK, window: int = WINDOW) -> torch.Tensor:
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
        return rms(y), float(y.abs().max())

    a, gains = plan_level(stats, rms(source), tolerance_db=tolerance_db, peak=peak)
    return apply_level(source, change, a, gains, peak=peak, window=window)

