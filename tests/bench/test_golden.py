"""bench/golden.py fingerprints decoded content: a picture's pixels whatever its metadata, a film's frames and sound;
its comparison names each part that differs, is missing or is new."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import av
import numpy as np
from PIL import Image, PngImagePlugin

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("golden", ROOT / "bench" / "golden.py")
golden = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(golden)  # type: ignore[union-attr]


def _png(path: Path, pixels: np.ndarray, note: str) -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("mmdream", note)  # like a provenance record: differs between runs, not part of the picture
    Image.fromarray(pixels).save(path, pnginfo=info)
    return path


def test_a_picture_is_fingerprinted_by_its_pixels_not_its_metadata(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    a = golden.fingerprints("still", _png(tmp_path / "a.png", pixels, "made at 01:00"))
    b = golden.fingerprints("still", _png(tmp_path / "b.png", pixels, "made at 02:00"))
    pixels[0, 0, 0] ^= 1
    c = golden.fingerprints("still", _png(tmp_path / "c.png", pixels, "made at 01:00"))
    assert list(a) == ["still"] and a == b and a != c


def test_a_film_is_fingerprinted_frame_by_frame_with_its_sound(tmp_path: Path) -> None:
    path = tmp_path / "film.mp4"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 32, 16, "yuv420p"
        sound = out.add_stream("aac", rate=48000)
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((16, 32, 3), 60 * i, np.uint8), format="rgb24")
            out.mux(video.encode(frame))
        out.mux(video.encode())
        tone = np.sin(np.arange(4800, dtype=np.float32) / 10)[None].astype(np.float32)
        for start in range(0, 4800, 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + 1024]), format="fltp",
                                               layout="mono")
            chunk.sample_rate = 48000
            out.mux(sound.encode(chunk))
        out.mux(sound.encode())
    prints = golden.fingerprints("film", path)
    assert sorted(prints) == ["film/audio", "film/frame000", "film/frame001", "film/frame002"]
    assert len(set(prints.values())) == 4 and prints == golden.fingerprints("film", path)


def test_the_comparison_names_what_differs(capsys) -> None:  # type: ignore[no-untyped-def]
    stored = {"still": "a", "film/frame000": "b", "sound/audio": "c"}
    assert golden.compare(stored, dict(stored))
    assert not golden.compare(stored, {"still": "a", "film/frame000": "x", "walk/audio": "d"})
    table = capsys.readouterr().out
    assert "film/frame000 | differs" in table and "sound/audio | missing" in table and "walk/audio | new" in table
