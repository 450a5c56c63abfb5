"""Spectrogram previews: where a tone and a chirp land, the time axis, long clips in bounded columns, streamed ==
in memory, the PNG, atomic writes."""

from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from PIL import Image

import mmdream.media.spectrogram as spectrogram
from mmdream.errors import MediaError
from mmdream.media.spectrogram import N_MELS, save_spectrogram_preview, spectrogram_panel

RATE = 22050


def tone(freq: float, seconds: float, rate: int = RATE) -> torch.Tensor:
    t = torch.arange(round(seconds * rate), dtype=torch.float64) / rate
    return (0.5 * torch.sin(2 * math.pi * freq * t)).float()


def band_of(freq: float, rate: int = RATE) -> float:
    """Fractional mel band whose centre is ``freq`` (the panel's frequency axis)."""
    return float(np.interp(freq, librosa.mel_frequencies(n_mels=N_MELS, fmax=rate / 2), np.arange(N_MELS)))


def test_a_tone_lands_on_its_band_and_the_time_axis_is_the_clip() -> None:
    panel = spectrogram_panel("tone", tone(1000.0, 2.0)[None].repeat(2, 1), RATE)  # stereo: channels averaged
    assert panel.duration_s == pytest.approx(2.0) and panel.rate == RATE
    assert panel.db.shape == (N_MELS, 1 + 2 * RATE // spectrogram.HOP)  # every frame of the clip, one column each
    loudest = panel.db[:, 5:-5].argmax(axis=0)
    assert np.all(np.abs(loudest - band_of(1000.0)) <= 1.0)
    assert panel.db.max() == 0.0 and panel.db.min() >= -spectrogram.RANGE_DB


def test_a_chirp_rises_and_long_clips_are_pooled_into_bounded_columns() -> None:
    seconds = 30.0
    t = np.arange(round(seconds * RATE)) / RATE
    chirp = torch.from_numpy(0.5 * np.sin(2 * np.pi * 200 * seconds / np.log(20) * (20 ** (t / seconds) - 1)))
    panel = spectrogram_panel("chirp", chirp.float(), RATE, max_columns=100)  # 200 Hz -> 4 kHz exponentially
    assert 50 < panel.db.shape[1] <= 100 and panel.duration_s == pytest.approx(seconds)
    loudest = panel.db.argmax(axis=0)
    assert np.all(np.diff(loudest[2:-2]) >= 0) and loudest[2] < band_of(300) and loudest[-3] > band_of(3000)


def test_streamed_blocks_give_the_picture_of_the_whole_clip() -> None:
    clip = torch.randn(2, 3 * RATE, generator=torch.Generator().manual_seed(0)) * 0.1
    whole = spectrogram_panel("noise", clip, RATE, max_columns=40)
    blocks = (clip[:, i:i + 5000].numpy() for i in range(0, clip.shape[-1], 5000))  # odd sizes, as decoded
    streamed = spectrogram_panel("noise", blocks, RATE, max_columns=40)
    assert streamed.db.shape == whole.db.shape and streamed.duration_s == whole.duration_s
    np.testing.assert_allclose(streamed.db, whole.db, atol=1e-3)


def test_preview_png_stacks_labelled_panels(tmp_path: Path) -> None:
    out = tmp_path / "preview.png"
    clips = [("before", tone(440.0, 1.5), RATE), ("after", tone(880.0, 3.0, 16000), 16000)]
    panels = save_spectrogram_preview(out, clips)
    assert [p.label for p in panels] == ["before", "after"] and panels[1].duration_s == pytest.approx(3.0)
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (1200, 520)  # 12 x 2.6 in per panel at 100 dpi
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 20  # drawn, not blank
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preview.png"]  # no temporary file left


def test_failed_preview_leaves_the_old_file_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "preview.png"
    out.write_bytes(b"old")

    def broken(_panels: object, path: Path) -> None:
        path.write_bytes(b"half a png")
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(spectrogram, "_draw", broken)
    with pytest.raises(RuntimeError):
        save_spectrogram_preview(out, [("x", tone(440.0, 0.5), RATE)])
    assert out.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["preview.png"]
    with pytest.raises(MediaError, match=r"\.png"):
        save_spectrogram_preview(tmp_path / "preview.jpg", [("x", tone(440.0, 0.5), RATE)])
