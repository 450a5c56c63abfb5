"""``mmdream video`` with frame sequences in and out: 16-bit precision through the dream, numbering like the
input, resume, and a sequence plus a sound made into a film."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mmdream.cli import main
from mmdream.media.video import probe
from mmdream.provenance import read_record

# A faint dream (tiny steps, no lift to the films' minimum strength), so that what the output holds is mostly the
# input's precision.
FAINT = ["--steps", "1", "--octaves", "1", "--step-size", "0.0005", "--frame-steps", "1", "--frame-step-size",
         "0.0005", "--min-strength", "0", "--progress", "none", "--layer", "relu3_3"]


def ramp16(shift: int) -> np.ndarray:
    """``(64, 320, 3)`` uint16 RGB: 320 distinct levels across, moving ``shift`` levels per frame."""
    ramp = np.round(np.linspace(0, 60000, 320)).astype(np.int64) + 97 * shift
    y = np.linspace(0, 40000, 64).astype(np.int64)[:, None]
    return np.stack([np.broadcast_to(ramp, (64, 320)), (ramp[::-1] + y) % 65536,
                     np.broadcast_to(y, (64, 320))], -1).clip(0, 65535).astype(np.uint16)


@pytest.fixture
def frames16(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f_{i + 41:05d}.png"), ramp16(i)[..., ::-1])
    return folder


def levels(path: Path) -> tuple[np.ndarray, int]:
    x = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1]
    return x, len(np.unique(x[..., 0]))


def test_sixteen_bit_sequence_round_trip(tmp_path: Path, frames16: Path, weights_dir: Path) -> None:
    out16, out8 = tmp_path / "out16", tmp_path / "out8"
    out16.mkdir(), out8.mkdir()
    assert main(["video", str(frames16), f"{out16}/", *FAINT]) == 0
    assert sorted(p.name for p in out16.iterdir()) == ["f_00041.png", "f_00042.png", "f_00043.png"]
    for i in range(3):
        x, distinct = levels(out16 / f"f_{i + 41:05d}.png")
        assert x.dtype == np.uint16 and distinct > 256
        # the dream is faint: the output follows the 16-bit input far closer than one 8-bit step (257)
        assert np.median(np.abs(x.astype(np.int64) - ramp16(i))) < 64
    assert read_record(out16 / "f_00041.png")["command"] == "video"
    assert main(["video", str(frames16 / "f_%05d.png"), str(out8 / "g%03d.png"), "--bit-depth", "8", *FAINT]) == 0
    x, distinct = levels(out8 / "g041.png")
    assert x.dtype == np.uint8 and distinct <= 256


def test_resumed_sixteen_bit_sequence_equals_an_uninterrupted_one(tmp_path: Path, frames16: Path,
                                                                  weights_dir: Path) -> None:
    whole, parts, work = tmp_path / "whole", tmp_path / "parts", tmp_path / "work"
    whole.mkdir(), parts.mkdir()
    assert main(["video", str(frames16), f"{whole}/", *FAINT, "--size", "160"]) == 0
    assert main(["video", str(frames16), f"{parts}/", *FAINT, "--size", "160", "--frames", "0:2",
                 "--work-dir", str(work)]) == 0
    assert main(["video", str(frames16), f"{parts}/", *FAINT, "--size", "160", "--work-dir", str(work)]) == 0
    for name in ("f_00041.png", "f_00042.png", "f_00043.png"):
        assert np.array_equal(levels(whole / name)[0], levels(parts / name)[0])


def test_sequence_with_a_sound_makes_a_film(tmp_path: Path, frames16: Path, media_dir: Path,
                                            weights_dir: Path) -> None:
    film = tmp_path / "film.mp4"
    assert main(["video", str(frames16), str(film), "--fps", "6", "--audio",
                 str(media_dir / "audio" / "music_ambi_piano.wav"), *FAINT, "--size", "96"]) == 0
    info = probe(film)
    assert (info.frame_count, info.fps, info.width, info.height) == (3, 6.0, 96, 18)
    assert info.audio is not None and info.audio.codec == "aac" and abs(info.audio.duration_s - 0.5) < 0.05
    assert read_record(film)["options"]["audio"].endswith("music_ambi_piano.wav")
