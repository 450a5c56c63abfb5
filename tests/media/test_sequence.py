"""Frame sequences: patterns and folders, numbering and gaps, 16-bit precision kept, atomic numbered PNG output."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mmdream.errors import MediaError
from mmdream.media.provenance import read_text
from mmdream.media.sequence import (decode_frame, encode_frame, is_sequence, open_sequence, output_pattern,
                                    read_sequence, write_frame)


def gradient16(height: int = 12, width: int = 700) -> np.ndarray:
    """A 16-bit RGB ramp with ``width`` distinct levels per channel, ``(H, W, 3)`` uint16 (RGB order)."""
    ramp = np.round(np.linspace(0, 65535, width)).astype(np.uint16)
    return np.repeat(np.stack([ramp, ramp[::-1], ramp], -1)[None], height, axis=0)


def write_frames(folder: Path, numbers: range, name: str = "shot_%04d.png") -> None:
    folder.mkdir(exist_ok=True)
    for n in numbers:
        cv2.imwrite(str(folder / (name % n)), gradient16()[..., ::-1])


def test_folder_and_pattern_name_the_same_sequence(tmp_path: Path) -> None:
    write_frames(tmp_path / "f", range(7, 11))
    (tmp_path / "f" / "notes.txt").write_text("not a frame")
    by_folder, by_pattern = open_sequence(tmp_path / "f"), open_sequence(str(tmp_path / "f" / "shot_%04d.png"))
    assert by_folder == by_pattern
    assert (by_folder.start, by_folder.count, by_folder.width, by_folder.height, by_folder.bit_depth) == \
        (7, 4, 700, 12, 16)
    assert by_folder.path(3).name == "shot_0010.png"
    assert is_sequence(tmp_path / "f") and is_sequence("x/%05d.png") and not is_sequence(tmp_path / "f.mp4")


def test_sixteen_bits_survive_reading_and_writing(tmp_path: Path) -> None:
    write_frames(tmp_path / "f", range(2))
    seq = open_sequence(tmp_path / "f")
    frame = next(read_sequence(seq))
    assert frame.dtype == np.float32 and len(np.unique(frame[..., 0])) == 700
    assert np.array_equal(np.round(frame * 65535).astype(np.uint16), gradient16())
    assert np.array_equal(decode_frame(encode_frame(frame, 16)), frame)
    assert len(np.unique(decode_frame(encode_frame(frame, 8))[..., 0])) == 256
    pattern = output_pattern(tmp_path, seq)
    assert pattern == str(tmp_path / "shot_%04d.png")
    out = write_frame(pattern, 5, frame, 16, provenance='{"mmdream": "x", "command": "video"}')
    assert out.name == "shot_0005.png" and read_text(out) == '{"mmdream": "x", "command": "video"}'
    assert np.array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED)[..., ::-1], gradient16())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f", "shot_0005.png"]  # no temporary files left


def test_bad_sequences_say_what_to_do(tmp_path: Path) -> None:
    write_frames(tmp_path / "gap", [1, 2, 4])
    with pytest.raises(MediaError, match="frame 3 is missing"):
        open_sequence(tmp_path / "gap")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaError, match="no numbered images"):
        open_sequence(tmp_path / "empty")
    with pytest.raises(MediaError, match="no frame matches"):
        open_sequence(str(tmp_path / "gap" / "other_%03d.png"))
    with pytest.raises(MediaError, match="local"):
        open_sequence("s3://bucket/frames/%05d.png")
    with pytest.raises(MediaError, match="does not exist"):
        output_pattern(tmp_path / "missing" / "%05d.png", None)
