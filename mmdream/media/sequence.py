"""Numbered frame sequences (``frames/%05d.png``, or a folder of numbered images) read and written as float RGB.

A sequence is named by a printf pattern (``%d``, ``%05d``) or by a folder holding numbered images of one naming
scheme (``shot_0001.png``, ``shot_0002.png``, ...). Frames are decoded without quantising to 8 bits: 16-bit PNG and
TIFF keep all their levels as float32 in [0, 1]. Output sequences are PNG, 8 or 16 bits, each file written
atomically (temporary name, renamed).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mmdream.errors import MediaError, ParameterError
from mmdream.media import storage
from mmdream.media.files import atomic_path
from mmdream.media.provenance import png_with_text

FRAME_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".webp", ".bmp")
BIT_DEPTHS = (8, 16)
_PRINTF = re.compile(r"%(0?)(\d*)d")
_NUMBERED = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")


@dataclass(frozen=True)
class FrameSequence:
    """Frames ``pattern % n`` for ``n`` in ``[start, start + count)``; size and bit depth of the first frame."""

    pattern: str  # printf pattern with its folder, e.g. /data/shot/%05d.png
    start: int
    count: int
    width: int
    height: int
    bit_depth: int  # 8 or 16

    def path(self, index: int) -> Path:
        """The file of frame ``index`` (0: the first)."""
        return Path(self.pattern % (self.start + index))


def is_pattern(uri: str | os.PathLike[str]) -> bool:
    """Whether ``uri`` is a printf frame pattern (``%d``, ``%05d`` in its file name)."""
    return _PRINTF.search(Path(uri).name) is not None


def is_sequence(uri: str | os.PathLike[str]) -> bool:
    """Whether ``uri`` names a frame sequence: a printf pattern, or an existing local folder."""
    return is_pattern(uri) or (not str(uri).startswith("s3://") and Path(uri).is_dir())


@contextmanager
def local_media_input(uri: str | os.PathLike[str]) -> Iterator[Path]:
    """:func:`mmdream.media.storage.local_input`, but a frame sequence (local only) passes as it is."""
    if is_sequence(uri):
        yield Path(uri)
        return
    with storage.local_input(uri) as path:
        yield path


def _check_local(uri: str | os.PathLike[str]) -> None:
    if str(uri).startswith("s3://"):
        raise MediaError(f"{uri}: frame sequences are read and written on local disks only; copy the frames to a "
                         "local folder (or give a film)")


def _scan(folder: Path, prefix: str, suffix: str, padding: int | None) -> dict[int, Path]:
    """Numbered files ``prefix<digits>suffix`` in ``folder`` (``padding``: exactly that many digits, else any)."""
    digits = r"\d+" if not padding else rf"\d{{{padding}}}"
    rule = re.compile(rf"^{re.escape(prefix)}({digits}){re.escape(suffix)}$")
    found = {}
    for p in folder.iterdir():
        m = rule.match(p.name)
        if m and p.is_file():
            found[int(m.group(1))] = p
    return found


def _folder_pattern(folder: Path) -> str:
    """The one numbering scheme of the images in ``folder``, as a printf pattern."""
    schemes: dict[tuple[str, int, str], int] = {}
    for p in folder.iterdir():
        m = _NUMBERED.match(p.name)
        if m and m.group(3).lower() in FRAME_SUFFIXES and p.is_file():
            key = (m.group(1), len(m.group(2)) if m.group(2).startswith("0") else 0, m.group(3))
            schemes[key] = schemes.get(key, 0) + 1
    if not schemes:
        raise MediaError(f"{folder} holds no numbered images (frame_0001.png, ...); give a folder of frames or a "
                         "pattern such as frames/%05d.png")
    (prefix, width, suffix), _ = max(schemes.items(), key=lambda kv: kv[1])
    return str(folder / f"{prefix.replace('%', '%%')}%{f'0{width}' if width else ''}d{suffix}")


def _info(path: Path) -> tuple[int, int, int]:
    """Width, height and bit depth (8 or 16) of an image file, without decoding its pixels twice."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise MediaError(f"cannot read {path} as an image; give PNG, TIFF, JPEG or WebP frames")
    depth = 16 if pixels.dtype == np.uint16 else 8
    if pixels.dtype not in (np.uint8, np.uint16):
        raise MediaError(f"{path} holds {pixels.dtype} pixels; give 8- or 16-bit frames")
    return pixels.shape[1], pixels.shape[0], depth


def open_sequence(uri: str | os.PathLike[str]) -> FrameSequence:
    """The sequence a pattern or folder names: its first number, its length (numbers run without gaps from the
    first), and the first frame's size and bit depth."""
    _check_local(uri)
    p = Path(uri)
    pattern = _folder_pattern(p) if p.is_dir() else str(p)
    folder, name = Path(pattern).parent, Path(pattern).name
    m = _PRINTF.search(name)
    if m is None:
        raise ParameterError(f"{uri} is neither a folder nor a frame pattern such as frames/%05d.png")
    if not folder.is_dir():
        raise MediaError(f"the folder of {uri} does not exist; check the path")
    found = _scan(folder, name[:m.start()].replace("%%", "%"), name[m.end():].replace("%%", "%"),
                  int(m.group(2)) if m.group(1) and m.group(2) else None)
    if not found:
        raise MediaError(f"no frame matches {pattern}; check the pattern (e.g. frames/%05d.png)")
    start, count = min(found), 0
    while start + count in found:
        count += 1
    if count < len(found):
        raise MediaError(f"{pattern}: frame {start + count} is missing (frames {start}..{start + count - 1} run "
                         f"without a gap, {len(found) - count} more follow); renumber or restore the frames")
    width, height, depth = _info(found[start])
    return FrameSequence(pattern, start, count, width, height, depth)


def read_frame(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """RGB ``(H, W, 3)`` float32 in [0, 1] at the file's own precision (8 or 16 bits), alpha composited on white,
    resized (Lanczos) to ``size = (width, height)`` if given."""
    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise MediaError(f"cannot read frame {path}; replace it or remove it from the sequence")
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    x = pixels.astype(np.float32) / scale
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    if x.shape[2] == 4:
        alpha = x[..., 3:]
        x = x[..., :3] * alpha + (1.0 - alpha)
    x = np.ascontiguousarray(x[..., 2::-1])  # BGR -> RGB
    if size is not None and (x.shape[1], x.shape[0]) != tuple(size):
        x = np.clip(cv2.resize(x, tuple(size), interpolation=cv2.INTER_LANCZOS4), 0.0, 1.0)
    return x


def read_sequence(seq: FrameSequence, *, size: tuple[int, int] | None = None, start: int = 0,
                  stop: int | None = None) -> Iterator[np.ndarray]:
    """Frames ``[start, stop)`` of ``seq`` (indices from 0) as :func:`read_frame` gives them, one at a time."""
    stop = seq.count if stop is None else min(stop, seq.count)
    for index in range(start, stop):
        yield read_frame(seq.path(index), size)


def encode_frame(frame: np.ndarray, bit_depth: int) -> bytes:
    """``(H, W, 3)`` float RGB in [0, 1] -> PNG bytes of ``bit_depth`` (8 or 16) bits, rounded."""
    if bit_depth not in BIT_DEPTHS:
        raise ParameterError(f"bit depth {bit_depth} is invalid: give 8 or 16")
    top, dtype = (65535.0, np.uint16) if bit_depth == 16 else (255.0, np.uint8)
    levels = (np.clip(frame[..., ::-1], 0.0, 1.0) * top + 0.5).astype(dtype)
    ok, data = cv2.imencode(".png", levels)
    if not ok:
        raise MediaError("cannot encode a frame as PNG")
    return data.tobytes()


def decode_frame(data: bytes, name: str = "frame") -> np.ndarray:
    """PNG bytes (8 or 16 bits) -> RGB ``(H, W, 3)`` float32 in [0, 1]."""
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.ndim != 3:
        raise MediaError(f"cannot read {name} as an RGB image; remove it so it is made again")
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(pixels[..., 2::-1].astype(np.float32) / scale)


def output_pattern(uri: str | os.PathLike[str], like: FrameSequence | None) -> str:
    """The printf pattern of an output sequence: ``uri`` itself if it is one; for a folder, the input sequence's
    file names (``like``) or ``%06d.png``. Output frames are PNG."""
    _check_local(uri)
    p = Path(uri)
    pattern = str(p) if is_pattern(p) else str(p / (Path(like.pattern).name if like is not None else "%06d.png"))
    if Path(pattern).suffix.lower() != ".png":
        pattern = str(Path(pattern).with_suffix(".png"))
    if not Path(pattern).parent.is_dir():
        raise MediaError(f"output folder {Path(pattern).parent} does not exist; create it first")
    return pattern


def write_frame(pattern: str, number: int, frame: np.ndarray, bit_depth: int, provenance: str | None = None
                ) -> Path:
    """Write frame ``number`` (``(H, W, 3)`` float RGB in [0, 1]) of the output sequence ``pattern`` atomically as
    a PNG of ``bit_depth`` bits; ``provenance``: a record text it carries."""
    target = Path(pattern % number)
    data = png_with_text(encode_frame(frame, bit_depth), provenance)
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target
