"""``mmdream analyze`` on trained checkpoints (``ckpt:``): an own image CNN and an own mel CNN, trained for one
epoch (the report's plumbing is checked, not what they learned): channels by class, sound visualisations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmdream.cli import main
from mmdream.train.data import AudioDataset, ImageDataset
from mmdream.train.finetune import TrainParams, save_trained, train_audio, train_image

TINY = ["--steps", "2", "--sound-steps", "2", "--size", "32", "--progress", "none"]

pytestmark = pytest.mark.usefixtures("one_thread")


def test_image_checkpoint_report_by_class(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    images = tuple(torch.rand(3, 16, 16, generator=g) * (0.5 if i % 2 else 1.0) for i in range(8))
    ds = ImageDataset(images, tuple(i % 2 for i in range(8)), ("dim", "bright"), tuple(map(str, range(8))))
    ckpt = tmp_path / "own.safetensors"
    save_trained(train_image(ds, "small", TrainParams(epochs=1, batch_size=8, size=16, holdout=0)), str(ckpt))
    out = tmp_path / "report"
    assert main(["analyze", f"ckpt:{ckpt}", "--layer", "block2", "--class", "bright", "--top-k", "3", *TINY,
                 str(out)]) == 0
    settings = json.loads((out / "settings.json").read_text())
    assert len(set(settings["channels"])) == 3 and "bright" in settings["note"]
    assert len(list((out / "vis").glob("*.png"))) == 3 and (out / "index.html").is_file()


def test_audio_checkpoint_report(media_dir: Path, tmp_path: Path) -> None:
    sounds = AudioDataset.open(media_dir / "datasets" / "animals" / "sounds", 16000)
    ckpt = tmp_path / "mel.safetensors"
    save_trained(train_audio(sounds, "mel-small", TrainParams(epochs=1, holdout=0)), str(ckpt))
    out = tmp_path / "report"
    assert main(["analyze", f"ckpt:{ckpt}", "--layer", "block2", "--channels", "0,1", "--seconds", "1", *TINY,
                 str(out)]) == 0
    for c in (0, 1):
        assert (out / "vis" / f"c000{c}.wav").is_file() and (out / "vis" / f"c000{c}.png").is_file()
    assert '<audio controls preload="none" src="vis/c0001.wav">' in (out / "index.html").read_text()
