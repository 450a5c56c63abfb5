"""`mmdream train image|audio` end to end, and its checkpoints as ``--backbone ckpt:PATH`` in the other commands
and in job specs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


Checkpoint = tuple[Path, "subprocess.CompletedProcess[str]"]  # the file, and the training run's output


def run_cli(*args: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "mmdream.cli", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def image_ckpt(media_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    out = tmp_path_factory.mktemp("image") / "animals.safetensors"
    proc = run_cli("train", "image", media_dir / "datasets" / "animals" / "images", "--base", "efficientnet_lite0",
                   "--out", out, "--epochs", "6", "--views", "2", "--folds", "3", "--seed", "1", "--progress", "json")
    return out, proc


def test_train_image_writes_checkpoint_sidecar_curves_and_json_lines(image_ckpt: Checkpoint) -> None:
    out, proc = image_ckpt
    assert out.is_file() and out.with_suffix(".json").is_file() and out.with_suffix(".curves.png").is_file()
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2, 3, 4, 5, 6]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "seconds"} <= epochs[0].keys()
    cv = next(e for e in events if e["event"] == "cross_validation")
    assert cv["folds"] == 3 and cv["items"] == 19 and cv["seed"] == 1
    summary = json.loads(proc.stdout)
    assert summary["backbone"] == f"ckpt:{out}"
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["base"] == "efficientnet_lite0" and meta["train"]["seed"] == 1
    assert meta["cross_validation"] == summary["cross_validation"]


def test_checkpoint_in_every_image_command(image_ckpt: Checkpoint, media_dir: Path, tmp_path: Path) -> None:
    out, _ = image_ckpt
    name = f"ckpt:{out}"
    classes = run_cli("classes", name).stdout.splitlines()
    assert classes[4] == "4\tfrog" and len(classes) == 8
    assert "logits\t_fc" in run_cli("layers", name).stdout
    top = json.loads(run_cli("classify", media_dir / "datasets" / "animals" / "images" / "cow" / "cow.png",
                             "-b", name, "--top", "2").stdout)["top"]
    assert top[0]["name"] == "cow"
    run_cli("image", media_dir / "images" / "chelsea.png", tmp_path / "frog.png", "-b", name, "--class", "frog",
            "--size", "64", "--steps", "1", "--octaves", "1", "--progress", "none")
    assert (tmp_path / "frog.png").is_file()
    run_cli("video", media_dir / "video" / "bbb_320x180.mp4", tmp_path / "v.mp4", "-b", name, "--frames", "0:2",
            "--size", "64", "--steps", "1", "--octaves", "1", "--progress", "none", "--no-audio")
    assert (tmp_path / "v.mp4").is_file()


def test_checkpoint_in_a_job_spec(image_ckpt: Checkpoint) -> None:
    from mmdream.backbones import load_backbone
    from mmdream.jobspec.build import build_job_objective, objective_record
    from mmdream.jobspec.plan import compile_plan
    from mmdream.jobspec.schema import parse_job

    out, _ = image_ckpt
    picture = compile_plan(parse_job({"input": "in.mp4", "output": "out.mp4", "backbone": {"name": f"ckpt:{out}"},
                                      "objective": {"class": "sheep"}})).picture
    record = objective_record(picture.objective, picture.backbone, 64)
    assert record["backbone"] == f"ckpt:{out}" and record["variant"] == "trained"
    objective = build_job_objective(picture.objective, load_backbone(picture.backbone.name), 64)
    assert objective.layers == ("logits",)


def test_train_audio_then_dream_and_classify(media_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "sounds.safetensors"
    sounds = media_dir / "datasets" / "animals" / "sounds"
    index = tmp_path / "index.csv"
    index.write_text("path,label\n" + "".join(f"{p},{p.parent.name}\n" for p in sorted(sounds.glob("*/*.wav"))))
    run_cli("train", "audio", index, "--out", out, "--epochs", "3", "--progress", "none")
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["architecture"] == "mel_cnn" and len(meta["classes"]) == 8
    speech = media_dir / "audio" / "speech_front_center.wav"
    run_cli("audio", speech, tmp_path / "cow.wav", "-b", f"ckpt:{out}", "--class", "cow", "--steps", "2",
            "--progress", "none")
    assert (tmp_path / "cow.wav").is_file()
    top = json.loads(run_cli("classify", speech, "-b", f"ckpt:{out}", "--top", "8").stdout)["top"]
    assert sorted(t["name"] for t in top) == sorted(meta["classes"])
