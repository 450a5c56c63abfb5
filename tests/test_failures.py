"""Every bad input: a one-line message saying what to do, exit status 2, no traceback, no output written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import torch
from safetensors.torch import load_file, save_file

from processes import as_from_a_terminal

IMAGE_ARGS = ["--steps", "1", "--octaves", "1", "--progress", "none"]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmdream.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def assert_clean_failure(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, proc.stderr


@pytest.fixture
def photo(media_dir: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "in.png"
    shutil.copy(media_dir / "images" / "chelsea.png", target)
    return target


def _no_output(folder: Path, keep: set[str]) -> None:
    left = {p.name for p in folder.iterdir()} - keep
    assert not left, f"files written on failure: {left}"


CASES = {
    "missing input": (["image", "{tmp}/nope.png", "{tmp}/out.png"], ["does not exist"]),
    "not an image": (["image", "{tmp}/text.png", "{tmp}/out.png"], ["cannot read", "as an image"]),
    "output is input": (["image", "{photo}", "{photo}"], ["is the input"]),
    "missing output folder": (["image", "{photo}", "{tmp}/no/dir/out.png"], ["does not exist", "create it"]),
    "output without image suffix": (["image", "{photo}", "{tmp}/out.txt"], ["no image suffix"]),
    "unknown backbone": (["image", "{photo}", "{tmp}/out.png", "-b", "alexnet"], ["unknown backbone 'alexnet'", "available: vgg16"]),
    "unknown layer": (["image", "{photo}", "{tmp}/out.png", "--layer", "inception9"],
                      ["unknown layer 'inception9'", "available: conv1_1"]),
    "unknown class": (["image", "{photo}", "{tmp}/out.png", "-b", "efficientnet_lite0", "--class", "unicorn"],
                      ["no class", "mmdream classes"]),
    "ambiguous class": (["image", "{photo}", "{tmp}/out.png", "-b", "efficientnet_lite0", "--class", "crane"],
                        ["ambiguous", "134", "517"]),
    "class on feature-only weights": (["image", "{photo}", "{tmp}/out.png", "--class", "goldfish"],
                                      ["no classifier"]),
    "channel out of range": (["image", "{photo}", "{tmp}/out.png", "--layer", "relu1_1", "--channel", "64"],
                             ["out of range", "0..63"]),
    "bad channel gain": (["image", "{photo}", "{tmp}/out.png", "--layer", "relu1_1", "--channel", "3:lots"],
                         ["CHANNEL:GAIN"]),
    "channel without layer": (["image", "{photo}", "{tmp}/out.png", "--channel", "3"], ["exactly one --layer"]),
    "zero steps": (["image", "{photo}", "{tmp}/out.png", "--steps", "0"], ["steps=0", "1 to 10000"]),
    "absurd octave scale": (["image", "{photo}", "{tmp}/out.png", "--octave-scale", "50"], ["octave_scale"]),
    "robust zoom of 100%": (["image", "{photo}", "{tmp}/out.png", "--robust-scale", "1"], ["robust_scale"]),
    "negative film strength": (["video", "{video}", "{tmp}/out.mp4", "--min-strength", "-1"], ["min_strength"]),
    "negative size": (["image", "{photo}", "{tmp}/out.png", "--size", "-5"], ["must be positive"]),
    "absurd size": (["image", "{photo}", "{tmp}/out.png", "--size", "99999"], ["--size 99999"]),
    "bad layer weight": (["image", "{photo}", "{tmp}/out.png", "--layer", "relu4_3:lots"], ["not a number"]),
    "weights missing offline": (["image", "{photo}", "{tmp}/out.png", "--weights", "{tmp}/empty"],
                                ["vgg16_caffe_features.safetensors", "MMDREAM_OFFLINE"]),
    "weights of the wrong shape": (["image", "{photo}", "{tmp}/out.png", "--weights-file", "{tmp}/bad.safetensors"],
                                   ["does not fit", "wrong shape"]),
    "weights folder missing": (["image", "{photo}", "{tmp}/out.png", "--weights", "{tmp}/nowhere"],
                               ["weights directory", "does not exist"]),
    "unknown missing guide": (["image", "{photo}", "{tmp}/out.png", "--guide", "{tmp}/g.png"], ["does not exist"]),
    "classify needs a classifier": (["classify", "{photo}", "-b", "vgg16"], ["no classifier"]),
    "audio backbone for an image dream": (["image", "{photo}", "{tmp}/out.png", "-b", "yamnet"],
                                          ["audio backbone", "image backbone"]),
    "image given to the audio classifier": (["classify", "{photo}", "-b", "yamnet"], ["has no audio stream"]),
    "image backbone for a sound dream": (["audio", "{sound}", "{tmp}/out.wav", "-b", "vgg16"],
                                         ["image backbone", "audio backbone"]),
    "sound output without audio suffix": (["audio", "{sound}", "{tmp}/out.mp3"], ["no audio suffix"]),
    "sound dream class unknown": (["audio", "{sound}", "{tmp}/out.wav", "--class", "unicorn"], ["no class"]),
    "sound dream bad jitter": (["audio", "{sound}", "{tmp}/out.wav", "--pitch-jitter", "9"], ["pitch_jitter=9"]),
    "sound with NaN samples": (["audio", "{tmp}/nan.wav", "{tmp}/out.wav"], ["nan.wav", "NaN"]),
    "sound without samples": (["audio", "{tmp}/silent.wav", "{tmp}/out.wav"], ["silent.wav", "no audio samples"]),
    "video input not a video": (["video", "{tmp}/text.png", "{tmp}/out.mp4"], ["cannot read", "as a video"]),
    "truncated video": (["video", "{tmp}/cut.mp4", "{tmp}/out.mp4"], ["cut.mp4"]),
    "video output without video suffix": (["video", "{video}", "{tmp}/out.avi"], ["no video suffix", ".mp4"]),
    "video frame range empty": (["video", "{video}", "{tmp}/out.mp4", "--frames", "500:600"],
                                ["selects no frame", "132 frames"]),
    "video frame range malformed": (["video", "{video}", "{tmp}/out.mp4", "--frames", "a:b"], ["START:END"]),
    "video blend out of range": (["video", "{video}", "{tmp}/out.mp4", "--blend", "1.5"], ["blend=1.5"]),
    "unknown flow": (["video", "{video}", "{tmp}/out.mp4", "--flow", "magic"], ["invalid choice"]),
    "zoom drive without a sound": (["zoom", "{photo}", "{tmp}/z.mp4", "--size", "32", "--drive", "rms"],
                                   ["need a sound", "--audio FILE"]),
    "zoom sound dream without a sound": (["zoom", "{photo}", "{tmp}/z.mp4", "--size", "32", "--dream-audio"],
                                         ["needs a sound"]),
    "zoom output not a film": (["zoom", "{photo}", "{tmp}/z.gif"], ["no video suffix"]),
    "zoom factor absurd": (["zoom", "{photo}", "{tmp}/z.mp4", "--zoom", "50"], ["zoom=50"]),
    "zoom sound missing": (["zoom", "{photo}", "{tmp}/z.mp4", "--audio", "{tmp}/none.wav"], ["does not exist"]),
    "zoom draft scale absurd": (["zoom", "{photo}", "{tmp}/z.mp4", "--draft", "--draft-scale", "3"],
                                ["draft_scale=3"]),
    "sound preview not a png": (["audio", "{sound}", "{tmp}/out.wav", "--preview", "{tmp}/p.jpg"], ["p.jpg", ".png"]),
    "style network unknown": (["audio-style", "{sound}", "{sound}", "{tmp}/out.wav", "--network", "vgg16"],
                              ["invalid choice"]),
    "style rounds zero": (["audio-style", "{sound}", "{sound}", "{tmp}/out.wav", "--rounds", "0"], ["rounds=0"]),
    "style output is the style": (["audio-style", "{sound}", "{tmp}/s.wav", "{tmp}/s.wav"], ["is the style clip"]),
    "like a file without a record": (["image", "{photo}", "{tmp}/out.png", "--like", "{photo}"],
                                     ["in.png carries no mmdream record"]),
    "info of a file without a record": (["info", "{photo}"], ["carries no mmdream record"]),
    "info of a missing file": (["info", "{tmp}/nope.mp4"], ["nope.mp4 does not exist"]),
    "frame folder without frames": (["video", "{tmp}/empty", "{tmp}/out.mp4"], ["no numbered images"]),
    "frame pattern matching nothing": (["video", "{tmp}/f_%05d.png", "{tmp}/out.mp4"], ["no frame matches"]),
    "video frames too small for flow": (["video", "{video}", "{tmp}/out.mp4", "--size", "24"],
                                        ["24x14 pixels are too small for optical flow", "--flow none"]),
    "frame sequence output bit depth": (["video", "{video}", "{tmp}/", "--bit-depth", "12"], ["invalid choice"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case: str, photo: Path, tmp_path: Path, weights_dir: Path, media_dir: Path) -> None:
    (tmp_path / "text.png").write_text("this is not a picture")
    (tmp_path / "empty").mkdir()
    soundfile.write(str(tmp_path / "nan.wav"), [0.1, float("nan")] * 8000, 16000, subtype="FLOAT")
    soundfile.write(str(tmp_path / "silent.wav"), [], 16000)
    video = media_dir / "video" / "bbb_320x180.mp4"
    data = video.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    sd = load_file(str(weights_dir / "vgg16_caffe_features.safetensors"))
    sd["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    save_file(sd, str(tmp_path / "bad.safetensors"))
    before = {p.name for p in tmp_path.iterdir()}
    photo_bytes = photo.read_bytes()
    argv, fragments = CASES[case]
    sound = media_dir / "audio" / "dog_bark.wav"
    args = [a.format(tmp=tmp_path, photo=photo, video=video, sound=sound) for a in argv]
    if args[0] == "image":
        args[1:1] = IMAGE_ARGS  # before the case's own options, which win
    # An empty user cache: weights someone downloaded into ~/.cache must not hide a missing file.
    proc = run_cli(*args, env={"MMDREAM_WEIGHTS": str(weights_dir), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert_clean_failure(proc, *fragments)
    assert photo.read_bytes() == photo_bytes
    _no_output(tmp_path, before)
    assert len(proc.stderr.strip().splitlines()) == 1


def test_interrupted_dream_leaves_no_partial_file(photo: Path, tmp_path: Path, weights_dir: Path) -> None:
    """A render killed half-way leaves neither the output nor a temporary file behind (atomic rename)."""
    import signal
    import time

    out = tmp_path / "out.png"
    proc = subprocess.Popen([sys.executable, "-m", "mmdream.cli", "image", str(photo), str(out), "--steps", "200",
                             "--progress", "json"], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "MMDREAM_WEIGHTS": str(weights_dir)}, preexec_fn=as_from_a_terminal)
    assert proc.stderr is not None
    proc.stderr.readline()  # first progress event: the dream is under way
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)  # reads the rest of stderr: a full pipe would block the process
    assert proc.returncode == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_style_clip_shorter_than_a_frame(tmp_path: Path, media_dir: Path) -> None:
    """A 10 ms style clip cannot have a texture: a one-line error naming the clip, nothing written."""
    import soundfile

    soundfile.write(str(tmp_path / "tick.wav"), [0.1, -0.1] * 220, 44100)
    proc = run_cli("audio-style", str(media_dir / "audio" / "dog_bark.wav"), str(tmp_path / "tick.wav"),
                   str(tmp_path / "out.wav"), "--preview", str(tmp_path / "p.png"), "--progress", "none")
    assert_clean_failure(proc, "style clip is 10 ms long", "shorter than one STFT frame")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tick.wav"]


DATASET_CASES = {
    "empty class folder": (["train", "image", "{tmp}/images", "--out", "{tmp}/out.safetensors"],
                           ["class folder", "empty", "holds no image"], "empty class"),
    "one class only": (["train", "image", "{tmp}/one", "--out", "{tmp}/out.safetensors"],
                       ["single class", "at least two"], None),
    "unreadable image": (["train", "image", "{tmp}/images", "--out", "{tmp}/out.safetensors"],
                         ["broken.png", "cannot read"], "broken image"),
    "unreadable sound": (["train", "audio", "{tmp}/sounds", "--out", "{tmp}/out.safetensors"],
                         ["broken.wav", "replace or remove"], "broken sound"),
    "index names a missing file": (["train", "audio", "{tmp}/missing.csv", "--out", "{tmp}/out.safetensors"],
                                   ["missing.csv, line 3", "gone.wav", "does not exist"], None),
    "index with an unknown column": (["train", "audio", "{tmp}/extra.csv", "--out", "{tmp}/out.safetensors"],
                                     ["unknown column", "'duration'", "path,label"], None),
    "dataset missing": (["train", "image", "{tmp}/nowhere", "--out", "{tmp}/out.safetensors"], ["not a folder"],
                        None),
    "checkpoint suffix": (["train", "image", "{tmp}/images", "--out", "{tmp}/out.pt"], [".safetensors"], None),
    "unknown freeze layer": (["train", "image", "{tmp}/images", "--out", "{tmp}/out.safetensors", "--base", "small",
                              "--freeze-to", "block9"], ["unknown layer 'block9' for freeze_to", "block1"], None),
    "unknown base": (["train", "audio", "{tmp}/sounds", "--out", "{tmp}/out.safetensors", "--base", "yamnet"],
                     ["invalid choice"], None),
    "one fold": (["train", "image", "{tmp}/images", "--out", "{tmp}/out.safetensors", "--folds", "1"],
                 ["--folds 1"], None),
    "checkpoint without sidecar": (["classify", "{tmp}/images/red/a.png", "-b", "ckpt:{tmp}/lone.safetensors"],
                                   ["lone.safetensors has no sidecar"], None),
}


@pytest.mark.parametrize("case", list(DATASET_CASES))
def test_bad_dataset(case: str, tmp_path: Path) -> None:
    """Bad datasets fail before any training starts: one line naming the file or class, nothing written."""
    from PIL import Image

    for cls in ("red", "blue"):
        (tmp_path / "images" / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (16, 16), (200, 0, 0) if cls == "red" else (0, 0, 200)).save(
                tmp_path / "images" / cls / ("a.png" if i == 0 else f"{i}.png"))
        (tmp_path / "sounds" / cls).mkdir(parents=True)
        soundfile.write(str(tmp_path / "sounds" / cls / "s.wav"), [0.1, -0.1] * 4000, 16000)
    (tmp_path / "one" / "red").mkdir(parents=True)
    Image.new("RGB", (16, 16)).save(tmp_path / "one" / "red" / "x.png")
    (tmp_path / "missing.csv").write_text("path,label\nsounds/red/s.wav,red\nsounds/blue/gone.wav,blue\n")
    (tmp_path / "extra.csv").write_text("path,label,duration\nsounds/red/s.wav,red,1\n")
    (tmp_path / "lone.safetensors").write_bytes(b"")
    argv, fragments, setup = DATASET_CASES[case]
    if setup == "empty class":
        (tmp_path / "images" / "empty").mkdir()
    elif setup == "broken image":
        (tmp_path / "images" / "red" / "broken.png").write_text("not a picture")
    elif setup == "broken sound":
        (tmp_path / "sounds" / "red" / "broken.wav").write_text("not a sound")
    before = {p.name for p in tmp_path.iterdir()}
    proc = run_cli(*(a.format(tmp=tmp_path) for a in argv))
    assert_clean_failure(proc, *fragments)
    _no_output(tmp_path, before)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
