"""`mmdream video` end to end on the shared clip: frames, rate, duration and sound kept; kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmdream.media.video import probe, read_audio, read_frames

FAST = ["--steps", "2", "--octaves", "2", "--frame-steps", "1"]


def cli(*args: str, weights_dir: Path) -> list[str]:
    return [sys.executable, "-m", "mmdream.cli", "video", *args]


def run(*args: str, weights_dir: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cli(*args, weights_dir=weights_dir), capture_output=True, text=True, timeout=900,
                          env={**os.environ, "MMDREAM_WEIGHTS": str(weights_dir)})
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def bbb(media_dir: Path) -> Path:
    return media_dir / "video" / "bbb_320x180.mp4"


def test_film_keeps_frame_count_rate_duration_and_sound(tmp_path: Path, bbb: Path, weights_dir: Path) -> None:
    out, sheet = tmp_path / "dream.mp4", tmp_path / "sheet.png"
    proc = run(str(bbb), str(out), "--size", "64", *FAST, "--preview", str(sheet), "--progress", "json",
               weights_dir=weights_dir)
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert events[-1]["event"] == "done" and events[-1]["frames"] == 132 and events[-1]["shots_start"] == [0]
    src, got = probe(bbb), probe(out)
    assert (got.width, got.height) == (64, 36) and got.fps == src.fps
    assert abs(got.frame_count - src.frame_count) <= 1 and abs(got.duration_s - src.duration_s) <= 1 / src.fps
    a, rate_a = read_audio(bbb)
    b, rate_b = read_audio(out)
    assert rate_a == rate_b and np.array_equal(a, b)  # the soundtrack is copied, not re-encoded
    assert sheet.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dream.mp4", "sheet.png"]  # work dir removed


def test_killed_render_resumes_to_the_same_film(tmp_path: Path, bbb: Path, weights_dir: Path) -> None:
    args = [str(bbb), "--frames", "0:10", "--size", "96", *FAST, "--progress", "json"]
    env = {**os.environ, "MMDREAM_WEIGHTS": str(weights_dir)}
    killed = subprocess.Popen(cli(args[0], str(tmp_path / "a.mp4"), *args[1:], "--work-dir", str(tmp_path / "wa"),
                                  weights_dir=weights_dir), stderr=subprocess.PIPE, text=True, env=env)
    assert killed.stderr is not None
    for line in killed.stderr:
        if line.startswith("{") and json.loads(line).get("step", 0) >= 4:
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait(timeout=60)
    done_before = sorted(p.name for p in (tmp_path / "wa").glob("*.png"))
    assert 4 <= len(done_before) < 10 and not (tmp_path / "a.mp4").exists()
    resumed = run(args[0], str(tmp_path / "a.mp4"), *args[1:], "--work-dir", str(tmp_path / "wa"),
                  weights_dir=weights_dir)
    first = json.loads(next(line for line in resumed.stderr.splitlines() if line.startswith("{")))
    assert first["step"] == len(done_before) + 1  # it resumed after the last finished frame
    run(args[0], str(tmp_path / "b.mp4"), *args[1:], "--work-dir", str(tmp_path / "wb"), weights_dir=weights_dir)
    for i in range(10):
        assert (tmp_path / "wa" / f"{i:06d}.png").read_bytes() == (tmp_path / "wb" / f"{i:06d}.png").read_bytes()
    fa, fb = list(read_frames(tmp_path / "a.mp4")), list(read_frames(tmp_path / "b.mp4"))
    assert len(fa) == 10 and all(np.array_equal(x, y) for x, y in zip(fa, fb))
    # The same work directory refuses frames of other settings.
    other = subprocess.run(cli(args[0], str(tmp_path / "c.mp4"), *args[1:], "--blend", "0.5", "--work-dir",
                               str(tmp_path / "wa"), weights_dir=weights_dir), capture_output=True, text=True,
                           env=env, timeout=300)
    assert other.returncode == 2 and "other settings" in other.stderr and "video" in other.stderr
    assert not (tmp_path / "c.mp4").exists()
