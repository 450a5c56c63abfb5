"""`mmdream style` and `mmdream video --style` end to end: outputs written, an unfit style weight refused, a
styled film resumes to the same frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmdream.cli import main
from mmdream.media.images import load_image
from mmdream.media.video import probe, read_frames


def test_style_command_blends_two_styles(tmp_path: Path, media_dir: Path, weights_dir: Path) -> None:
    images = media_dir / "images"
    out = tmp_path / "styled.png"
    styles = f"{images / 'style_starry_night.jpg'},{images / 'style_the_scream.jpg'}"
    args = [str(images / "chelsea.png"), styles, str(out), "--weights", str(weights_dir), "--size", "64",
            "--scales", "1", "--steps", "4", "--progress", "none"]
    assert main(["style", *args, "--style-weights", "0.7,0.3"]) == 0
    assert load_image(out).shape == (1, 3, 43, 64)
    assert main(["style", *args[:2], str(tmp_path / "x.png"), *args[3:], "--style-weights", "1"]) == 2
    assert not (tmp_path / "x.png").exists()


def test_styled_film_resumes_to_the_same_frames(tmp_path: Path, media_dir: Path, weights_dir: Path) -> None:
    clip = media_dir / "video" / "bbb_320x180.mp4"
    style = media_dir / "images" / "style_starry_night.jpg"
    args = ["video", str(clip), None, "--style", str(style), "--size", "64", "--frames", "0:5",
            "--style-steps", "5", "--style-frame-steps", "3", "--weights", str(weights_dir), "--progress", "none"]

    def run(out: Path, work: Path) -> list[np.ndarray]:
        argv = [str(out) if a is None else a for a in args] + ["--work-dir", str(work)]
        assert main(argv) == 0
        return list(read_frames(out))

    first = run(tmp_path / "a.mp4", tmp_path / "wa")
    info = probe(tmp_path / "a.mp4")
    assert len(first) == 5 and (info.width, info.height) == (64, 36) and info.audio is not None
    for name in ("000003.json", "000004.json"):  # the run stopped after frame 2
        (tmp_path / "wa" / name).unlink()
    again = run(tmp_path / "b.mp4", tmp_path / "wa")
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
