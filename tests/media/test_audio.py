"""load_audio: any container, mono mix, soxr_hq resampling identical to librosa's, clear errors."""

from __future__ import annotations

import wave
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from mmdream.errors import MediaError, ParameterError
from mmdream.media.audio import load_audio
from mmdream.media.video import read_audio


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """16-bit PCM WAV of float ``(channels, n)`` samples, with the standard library only."""
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.T.tobytes())
    return path


def test_own_rate_and_channels(media_dir: Path) -> None:
    path = media_dir / "audio" / "dog_bark.wav"
    samples, rate = load_audio(path)
    assert rate == 44100 and samples.dtype == torch.float32 and samples.shape == (1, 41150)
    np.testing.assert_array_equal(samples.numpy(), read_audio(path)[0])


def test_resampling_is_librosa_soxr_hq(media_dir: Path) -> None:
    path = media_dir / "audio" / "speech_front_center.wav"
    samples, rate = load_audio(path, rate=16000)
    assert rate == 16000 and samples.shape == (1, 22849)  # REFERENCE.json: samples_16k
    expected = librosa.resample(read_audio(path)[0], orig_sr=48000, target_sr=16000, res_type="soxr_hq")
    np.testing.assert_array_equal(samples.numpy(), expected)


def test_mono_averages_the_channels_before_resampling(tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    left, right = 0.5 * np.sin(2 * np.pi * 440 * t), 0.25 * np.sin(2 * np.pi * 660 * t)
    path = write_wav(tmp_path / "stereo.wav", np.stack([left, right]), 8000)
    stereo, _ = load_audio(path)
    mono, rate = load_audio(path, mono=True)
    assert stereo.shape == (2, 8000) and mono.shape == (1, 8000) and rate == 8000
    torch.testing.assert_close(mono, stereo.mean(0, keepdim=True))
    up, rate = load_audio(path, rate=16000, mono=True)
    assert rate == 16000 and up.shape == (1, 16000)
    expected = librosa.resample(mono.numpy(), orig_sr=8000, target_sr=16000, res_type="soxr_hq")
    np.testing.assert_array_equal(up.numpy(), expected)


def test_sound_of_a_video(media_dir: Path) -> None:
    samples, rate = load_audio(media_dir / "video" / "bbb_320x180.mp4", rate=16000, mono=True)
    assert rate == 16000 and samples.shape[0] == 1
    assert abs(samples.shape[1] - 5.28 * 16000) < 0.1 * 16000
    assert samples.abs().max() <= 1.0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="does not exist"):
        load_audio(tmp_path / "nothing.wav")


def test_undecodable_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all\n" * 20)
    with pytest.raises(MediaError, match="cannot decode .*notes.wav as audio"):
        load_audio(bad)


def test_bad_rate(media_dir: Path) -> None:
    with pytest.raises(ParameterError, match="positive integer"):
        load_audio(media_dir / "audio" / "dog_bark.wav", rate=0)
