"""Loudness: the limiter keeps every sample under PEAK and touches only what is near a peak; a change is fitted to
the source's loudness; block by block with context gives the whole clip's samples."""

from __future__ import annotations

import pytest
import torch

from mmdream.ops.loudness import PEAK, apply_level, fit_level, limit_peaks, limiter_window, plan_level, rms, rms_db


def test_limiter_and_level_fit() -> None:
    g = torch.Generator().manual_seed(0)
    quiet = 0.1 * torch.randn(2, 20000, generator=g)
    loud = quiet.clone()
    loud[:, 5000] = 3.0  # one spike far over full scale
    limited = limit_peaks(loud, window=50)
    assert float(limited.abs().max()) <= PEAK
    assert torch.equal(limited[:, :4900], loud[:, :4900]) and torch.equal(limited[:, 5101:], loud[:, 5101:])
    assert limit_peaks(quiet) is quiet
    change = 0.5 * torch.randn(20000, generator=g)  # mono change onto a stereo source, far louder than it
    out = fit_level(quiet, change)
    assert out.shape == quiet.shape and abs(rms_db(out) - rms_db(quiet)) < 0.01
    hot = torch.sign(quiet) * 0.99  # a source that is all peaks: the change must shrink to keep the loudness
    out = fit_level(hot, change)
    assert float(out.abs().max()) <= PEAK and abs(rms_db(out) - rms_db(hot)) <= 1.0


def test_rms_and_limiter_window() -> None:
    assert rms(torch.full((2, 100), -0.5)) == 0.5 and rms_db(torch.full((3,), 0.1)) == pytest.approx(-20.0)
    assert limiter_window(44100) == 220 and limiter_window(16000) == 80 and limiter_window(10) == 1


def test_level_rendered_block_by_block_equals_the_whole_clip() -> None:
    g = torch.Generator().manual_seed(1)
    source = 0.3 * torch.randn(2, 6000, generator=g, dtype=torch.float64)
    source[:, 2000] = 0.99  # peaks the limiter must take down once the change is added
    change = 0.4 * torch.randn(6000, generator=g, dtype=torch.float64)
    window = 30

    def stats(a: float, gains: tuple[float, ...]) -> tuple[float, float]:
        y = apply_level(source, change, a, gains, window=window)
        return rms(y), float(y.abs().max())

    a, gains = plan_level(stats, rms(source))
    whole = apply_level(source, change, a, gains, window=window)
    assert len(gains) > 1 and float(whole.abs().max()) <= PEAK  # the limiter had work to do
    assert torch.equal(whole, fit_level(source, change, window=window))
    context, block = 2 * window * len(gains), 1000
    parts = []
    for lo in range(0, 6000, block):  # each block with the context apply_level looks at: the same samples
        start, stop = max(0, lo - context), min(6000, lo + block + context)
        y = apply_level(source[:, start:stop], change[start:stop], a, gains, window=window)
        parts.append(y[:, lo - start:lo - start + block])
    torch.testing.assert_close(torch.cat(parts, dim=-1), whole, rtol=0, atol=1e-12)
