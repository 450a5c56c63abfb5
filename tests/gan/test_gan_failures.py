"""Bad inputs to `mmdream gan ...`: one line saying what to do, exit status 2, no traceback, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from mmdream.cli import main as cli


def fails(capsys: pytest.CaptureFixture[str], argv: list[str], *fragments: str) -> None:
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmdream: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def test_bad_generators_and_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "o.png")
    fails(capsys, ["gan", "sample", "dcgan_cats", out], "unknown generator 'dcgan_cats'", "dcgan_faces64")
    fails(capsys, ["gan", "sample", str(tmp_path / "none.safetensors"), out], "does not exist")
    fails(capsys, ["gan", "sample", "dcgan_faces64", out, "--gen-class", "1"], "not class-conditional")
    fails(capsys, ["gan", "sample", "dcgan_eyes128", out, "--gen-class", "purple"], "amber", "red")
    fails(capsys, ["gan", "dream", "dcgan_faces64", out, "--class", "sunglasses", "--gen-class", "0"],
          "not class-conditional")
    fails(capsys, ["gan", "dream", "dcgan_faces64", out, "--class", "no such class"], "no class of efficientnet")
    fails(capsys, ["gan", "dream", "dcgan_faces64", out, "--photo", str(tmp_path / "missing.png")], "does not exist")
    fails(capsys, ["gan", "dream", "dcgan_faces64", out, "--steps", "0"], "steps=0 is invalid")
    assert list(tmp_path.iterdir()) == []


def test_bad_datasets_and_outputs(shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = str(tmp_path / "g.safetensors")
    fails(capsys, ["gan", "train", str(tmp_path / "missing"), "--out", ckpt], "is not a folder")
    (tmp_path / "empty").mkdir()
    fails(capsys, ["gan", "train", str(tmp_path / "empty"), "--out", ckpt], "holds 0 image")
    fails(capsys, ["gan", "train", str(shapes / "disc"), "--out", ckpt, "--conditional"], "no class folders")
    fails(capsys, ["gan", "train", str(shapes), "--out", str(tmp_path / "g.pt")], "must end in .safetensors")
    fails(capsys, ["gan", "train", str(shapes), "--out", ckpt, "--epochs", "0"], "epochs=0 is invalid")
    fails(capsys, ["gan", "train", str(shapes), "--out", ckpt, "--resume", "--size", "32"], "nothing to resume")
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]


def test_walk_needs_sound(tmp_path: Path, capsys: pytest.CaptureFixture[str], media_dir: Path) -> None:
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(22050, np.float32), 22050)
    out = tmp_path / "w.mp4"
    fails(capsys, ["gan", "walk", "dcgan_faces64", str(out), "--audio", str(silent)], "no sound")
    fails(capsys, ["gan", "walk", "dcgan_faces64", str(out), "--audio", str(media_dir / "images" / "dog.jpg")])
    fails(capsys, ["gan", "walk", "dcgan_faces64", str(tmp_path / "w.gif"), "--audio", str(silent)], ".mp4")
    fails(capsys, ["gan", "walk", "dcgan_eyes128", str(out), "--audio", str(silent), "--gen-class", "9"],
          "unknown or ambiguous")
    assert [p.name for p in tmp_path.iterdir()] == ["silent.wav"]
