"""``mmdream info`` and ``--like``: outputs say how they were made, and the record repeats them byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mmdream.cli import main
from mmdream.provenance import read_record

TINY = ["--size", "48", "--steps", "2", "--octaves", "1", "--progress", "none", "--seed", "3"]


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    y, x = np.mgrid[0:36, 0:48]
    path = tmp_path / "in.png"
    Image.fromarray(np.stack([x * 5, y * 7, (x + y) * 3], -1).astype(np.uint8)).save(path)
    return path


def test_like_repeats_an_image_byte_for_byte_and_options_override(
        tmp_path: Path, picture: Path, weights_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, again, changed = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    assert main(["image", str(picture), str(first), *TINY, "--layer", "relu3_3", "--step-size", "0.01"]) == 0
    assert main(["image", str(picture), str(again), "--like", str(first), "--progress", "none"]) == 0
    assert again.read_bytes() == first.read_bytes()
    assert main(["image", str(picture), str(changed), "--like", str(first), "--seed", "4", "--progress",
                 "none"]) == 0
    assert changed.read_bytes() != first.read_bytes()
    capsys.readouterr()
    assert main(["info", str(changed), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["command"] == "image" and record["seed"] == 4 and record["inputs"] == {"input": str(picture)}
    assert record["options"]["layer"] == "relu3_3" and record["params"]["DreamParams"]["step_size"] == 0.01
    net = record["networks"][0]
    assert net["name"] == "vgg16" and len(net["weights"]["sha256"]) == 64
    assert main(["info", str(first)]) == 0
    text = capsys.readouterr().out
    assert "made by: mmdream" in text and "backbone: vgg16 (caffe)" in text and "  steps: 2" in text


def test_like_repeats_a_sound_and_a_gan_sample(tmp_path: Path, media_dir: Path, weights_dir: Path) -> None:
    bark = str(media_dir / "audio" / "dog_bark.wav")
    a, b = tmp_path / "a.flac", tmp_path / "b.flac"
    assert main(["audio", bark, str(a), "--steps", "1", "--class", "Bark", "--progress", "none"]) == 0
    assert main(["audio", bark, str(b), "--like", str(a), "--progress", "none"]) == 0
    assert a.read_bytes() == b.read_bytes()
    first, again = tmp_path / "g1.png", tmp_path / "g2.png"
    assert main(["gan", "sample", "dcgan_faces64", str(first), "--count", "2", "--seed", "9",
                 "--weights", str(weights_dir)]) == 0
    assert main(["gan", "sample", "dcgan_faces64", str(again), "--like", str(first), "--weights",
                 str(weights_dir)]) == 0
    assert again.read_bytes() == first.read_bytes()
    record = read_record(first)
    assert record["command"] == "gan sample" and record["seed"] == 9 and record["inputs"] == {"ckpt": "dcgan_faces64"}
    assert record["networks"][0]["role"] == "generator" and len(record["networks"][0]["weights"]["sha256"]) == 64
