"""Signal operations on sounds: warps roll and resample, the vocoder shift is librosa's, band masks keep their band,
peak keeping keeps the largest bins, flatness tells noise from tones."""

from __future__ import annotations

import math

import librosa
import pytest
import torch

from mmdream.ops.audio import band_flatness, band_mask, keep_peaks, vocoder_shift, warp


def test_warp_rolls_resamples_and_passes_gradients() -> None:
    x = torch.randn(3, 1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(warp(x, 7.0), torch.roll(x, 7, dims=-1))
    torch.testing.assert_close(warp(x, 2.5), (torch.roll(x, 2, -1) + torch.roll(x, 3, -1)) / 2)
    t = torch.arange(16000, dtype=torch.float64) / 16000
    up = warp(torch.sin(2 * math.pi * 500 * t), 0.0, 2 ** (1 / 12), 8000)  # a semitone up around the middle
    peak = torch.fft.rfft(up[4000:12000]).abs().argmax() * 2  # 2 Hz bins
    assert abs(float(peak) - 500 * 2 ** (1 / 12)) <= 2
    y = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(warp(y, 3.3, 1.02, 10).sum(), y)
    assert float(g.sum()) == pytest.approx(3000, rel=1e-9)  # every output sample is a convex mix of inputs



def test_vocoder_shift_matches_librosa_and_keeps_the_duration() -> None:
    t = torch.arange(16000, dtype=torch.float64) / 16000
    tone = 0.3 * torch.sin(2 * math.pi * 440 * t)
    ref = librosa.effects.pitch_shift(tone.numpy(), sr=16000, n_steps=0.5, n_fft=1024, hop_length=256)
    out = vocoder_shift(tone, 0.5, 1024)
    assert out.shape == tone.shape
    spec = lambda y: torch.as_tensor(y)[2000:14000].abs()  # noqa: E731
    peak = torch.fft.rfft(out[2000:14000]).abs().argmax() * 16000 / 12000
    assert abs(float(peak) - 440 * 2 ** (0.5 / 12)) < 2.0
    assert abs(float(spec(out).mean()) / float(spec(ref).mean()) - 1) < 0.05
    y = tone.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(vocoder_shift(y, -0.5).square().sum(), y)
    assert bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0



def test_band_mask_keeps_the_band_and_removes_the_rest() -> None:
    noise = torch.randn(2, 32000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = band_mask(noise, 16000, 1000.0, 3000.0)
    assert out.shape == noise.shape and band_mask(noise, 16000, 0.0, 8000.0) is noise
    power = torch.fft.rfft(out, dim=-1).abs().square().mean(0)
    ratio = power / torch.fft.rfft(noise, dim=-1).abs().square().mean(0)
    freqs = torch.fft.rfftfreq(32000, 1 / 16000)
    band = lambda lo, hi: float(ratio[(freqs >= lo) & (freqs <= hi)].mean())  # noqa: E731
    assert band(1300, 2500) == pytest.approx(1.0, abs=0.05)
    assert band(0, 700) < 1e-3 and band(4000, 8000) < 1e-3



def test_keep_peaks_keeps_the_largest_bins_of_each_frame() -> None:
    mag = torch.tensor([[1.0, 5.0], [3.0, 0.0], [2.0, 4.0], [0.5, 6.0]])  # (freqs 4, frames 2)
    assert torch.equal(keep_peaks(mag, 2), torch.tensor([[0.0, 5.0], [3.0, 0.0], [2.0, 0.0], [0.0, 6.0]]))
    assert keep_peaks(mag, 0) is mag and keep_peaks(mag, 4) is mag



def test_band_flatness_of_noise_and_tones() -> None:
    t = torch.arange(48000, dtype=torch.float64) / 48000
    noise = torch.randn(2, 48000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    # A Gaussian periodogram is exponential per bin: geometric / arithmetic mean = exp(-Euler gamma) = 0.561.
    assert band_flatness(noise, 48000) == pytest.approx(math.exp(-0.5772), abs=0.02)
    chord = sum(torch.sin(2 * math.pi * f * t) for f in (440.0, 660.0, 1100.0))
    assert band_flatness(chord, 48000) < 0.01
    assert band_flatness(chord + noise[0], 48000, 2000.0, 4000.0) > 0.5  # no tone in that band
