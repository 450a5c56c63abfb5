"""Log-mel front-end: librosa as the oracle (chirp and a real clip), TF mel weights by hand, gradients, batching."""

from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from mmdream.errors import ParameterError
from mmdream.media.video import read_audio
from mmdream.ops.mel import (
    LogMel, MelParams, filter_bank, frame_count, log_mel, mel_filters, mel_spectrogram, stft_magnitude, tf_mel_filters,
)

# Measured: max |ours - librosa| / max |librosa| <= 3.3e-7 (float32) on every case below; 1e-5 leaves margin.
REL_TOL = 1e-5


def chirp(sr: int = 22050, seconds: float = 1.5, f0: float = 100.0, f1: float = 4000.0) -> np.ndarray:
    """Linear chirp f0 -> f1 Hz, amplitude 0.5."""
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * seconds) * t**2))).astype(np.float32)


def rel_err(ours: torch.Tensor, ref: np.ndarray) -> float:
    return float(np.abs(ours.detach().numpy() - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("options", [
    {},
    {"n_fft": 1024, "hop_length": 256, "win_length": 800},
    {"pad_mode": "reflect", "n_mels": 40, "fmin": 50.0, "fmax": 8000.0},
    {"center": False, "power": 1.0},
    {"htk": True, "norm": None, "n_mels": 64, "fmin": 125.0, "fmax": 7500.0, "power": 1.0},
])
def test_matches_librosa_on_a_chirp(options: dict) -> None:
    y = chirp()
    ref = librosa.feature.melspectrogram(y=y, sr=22050, **options)
    ours_opts = dict(options)
    if ours_opts.pop("htk", False):
        ours_opts["mel_scale"] = "htk"
    ours = mel_spectrogram(torch.from_numpy(y), sample_rate=22050, **ours_opts)
    assert ours.shape == ref.shape
    assert rel_err(ours, ref) <= REL_TOL


def test_matches_librosa_on_a_real_clip(media_dir: Path) -> None:
    samples, sr = read_audio(media_dir / "audio" / "dog_bark.wav")
    y = samples.mean(axis=0)
    ref = librosa.feature.melspectrogram(y=y, sr=sr)
    ours = mel_spectrogram(torch.from_numpy(y), sample_rate=sr)
    assert ours.shape == ref.shape == (128, 1 + len(y) // 512)
    assert rel_err(ours, ref) <= REL_TOL
    # log domain, down to the offset: measured 7.5e-5
    lm = log_mel(torch.from_numpy(y), sample_rate=sr, log_offset=1e-6)
    assert np.abs(lm.numpy() - np.log(ref + 1e-6)).max() < 1e-3


def test_stft_magnitude_matches_librosa_stft() -> None:
    y = chirp(seconds=0.5)
    ref = np.abs(librosa.stft(y, n_fft=512, hop_length=128, win_length=400))
    ours = stft_magnitude(torch.from_numpy(y), n_fft=512, hop_length=128, win_length=400, power=1.0)
    assert rel_err(ours, ref) <= REL_TOL


def test_tf_framing_starts_windows_at_hop_multiples() -> None:
    """window_at='start': frame t is samples [160 t, 160 t + 400) times a periodic Hann, zero-padded to 512."""
    torch.manual_seed(0)
    y = torch.randn(2000, dtype=torch.float64)
    p = MelParams(sample_rate=16000, n_fft=512, hop_length=160, win_length=400, center=False, window_at="start",
                  power=1.0, n_mels=64, fmin=125.0, fmax=7500.0, mel_scale="tf", norm=None)
    mag = stft_magnitude(y, p)
    assert mag.shape == (257, 1 + (2000 - 400) // 160) and mag.shape[-1] == frame_count(2000, p)
    window = torch.from_numpy(np.hanning(401)[:-1])  # periodic Hann of length 400
    for t in (0, 3, mag.shape[-1] - 1):
        expected = torch.fft.rfft(y[160 * t:160 * t + 400] * window, n=512).abs()
        torch.testing.assert_close(mag[:, t], expected)


def test_tf_mel_weights_by_hand() -> None:
    """One band over 0-8000 Hz, bins at 0, 2000, 4000, 6000, 8000 Hz: triangle linear in HTK mel, DC weight 0."""
    def mel(f: float) -> float:
        return 1127.0 * math.log(1.0 + f / 700.0)

    w = tf_mel_filters(16000, 8, 1, 0.0, 8000.0)[0]
    top = mel(8000.0)
    center = top / 2
    expected = [0.0] + [min(mel(f) / center, (top - mel(f)) / (top - center)) for f in (2000.0, 4000.0, 6000.0)] + [0.0]
    torch.testing.assert_close(w, torch.tensor(expected, dtype=torch.float64))
    assert expected[1] == pytest.approx(0.92862, abs=1e-5)


def test_tf_mel_weights_close_to_librosa_htk() -> None:
    """Same HTK band edges; TF interpolates in mel, librosa in Hz, so triangles differ slightly (measured 0.0044)."""
    tf = tf_mel_filters(16000, 512, 64, 125.0, 7500.0)
    htk = mel_filters(16000, 512, 64, 125.0, 7500.0, True, None)
    assert tf.shape == htk.shape == (64, 257)
    assert tf[:, 0].abs().max() == 0
    assert (tf - htk).abs().max() < 0.01
    assert tf.max() <= 1.0


def test_filter_bank_is_cached_and_follows_the_input() -> None:
    p = MelParams(sample_rate=16000, n_fft=512, n_mels=40)
    assert filter_bank(p) is filter_bank(MelParams(sample_rate=16000, n_fft=512, n_mels=40))
    half = filter_bank(p, torch.zeros(1, dtype=torch.float16))
    assert half.dtype == torch.float16 and half.device.type == "cpu"


def test_batched_equals_per_item_and_dtype_follows_input() -> None:
    torch.manual_seed(1)
    y = torch.randn(2, 3, 4000)
    batched = log_mel(y, sample_rate=16000, n_fft=512, n_mels=40)
    assert batched.shape == (2, 3, 40, 1 + 4000 // 128)
    torch.testing.assert_close(batched[1, 2], log_mel(y[1, 2], sample_rate=16000, n_fft=512, n_mels=40))
    double = log_mel(y.double(), sample_rate=16000, n_fft=512, n_mels=40)
    assert double.dtype == torch.float64
    torch.testing.assert_close(double.float(), batched, atol=1e-4, rtol=1e-4)


def test_gradients_reach_the_waveform_without_nans() -> None:
    torch.manual_seed(2)
    y = torch.zeros(1, 8000)
    y[:, 2000:6000] = torch.randn(1, 4000) * 0.1  # silent edges: |STFT| = 0 there must not give NaN
    y.requires_grad_(True)
    for power in (1.0, 2.0):
        y.grad = None
        log_mel(y, sample_rate=16000, n_fft=512, hop_length=160, win_length=400, power=power).mean().backward()
        assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_module_wraps_the_functions() -> None:
    y = torch.from_numpy(chirp(sr=16000, seconds=0.3))
    m = LogMel(sample_rate=16000, n_fft=512, n_mels=64, log_offset=1e-3)
    torch.testing.assert_close(m(y), log_mel(y, m.params))
    assert not m.state_dict()
    torch.testing.assert_close(LogMel(m.params, log=False)(y), mel_spectrogram(y, m.params))


@pytest.mark.parametrize("changes, match", [
    ({"n_fft": 0}, "n_fft"),
    ({"win_length": 4096}, "exceeds n_fft"),
    ({"window": "kaiser"}, "unknown window"),
    ({"mel_scale": "bark"}, "unknown mel_scale"),
    ({"fmax": 20000.0}, "fmax"),
    ({"log_offset": 0.0}, "log_offset"),
    ({"hop": 3}, "unknown mel option"),
])
def test_bad_parameters_say_what_is_wrong(changes: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        mel_spectrogram(torch.zeros(4096), **changes)


def test_too_short_waveform_is_refused() -> None:
    with pytest.raises(ParameterError, match="shorter than one STFT frame"):
        stft_magnitude(torch.zeros(300), n_fft=512, center=False)
