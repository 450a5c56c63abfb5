import math

import torch

from mmdream.ops.phase import griffin_lim, istft, stft


def _spectral_convergence(y: torch.Tensor, magnitude: torch.Tensor) -> float:
    return float((stft(y, 512, 128).abs() - magnitude).norm() / magnitude.norm())


def test_stft_round_trip_is_exact():
    x = torch.randn(2, 5000, dtype=torch.float64)
    assert torch.allclose(istft(stft(x, 512, 128), 512, 128, 5000), x, atol=1e-10)


def test_griffin_lim_recovers_a_chord_from_its_magnitude():
    t = torch.arange(16000, dtype=torch.float64) / 16000
    x = sum(torch.sin(2 * math.pi * f * t) for f in (220.0, 330.0, 440.0)) / 3
    magnitude = stft(x, 512, 128).abs()
    g = torch.Generator().manual_seed(0)
    plain = griffin_lim(magnitude, 512, 128, 16000, iters=0, generator=g)  # random phase only
    fast = griffin_lim(magnitude, 512, 128, 16000, iters=32, generator=torch.Generator().manual_seed(0))
    slow = griffin_lim(magnitude, 512, 128, 16000, iters=32, momentum=0.0, generator=torch.Generator().manual_seed(0))
    assert _spectral_convergence(fast, magnitude) < 0.5 * _spectral_convergence(plain, magnitude)
    assert _spectral_convergence(fast, magnitude) < _spectral_convergence(slow, magnitude)  # momentum helps
    kept = griffin_lim(magnitude, 512, 128, 16000, iters=4, init=stft(x, 512, 128))
    assert _spectral_convergence(kept, magnitude) < 1e-6  # the true phase is a fixed point
