"""Rendering a job on a local Ray: actors load once, shards reassemble into the film, a killed actor costs nothing."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import ray

from mmdream_cluster.actors import DreamActor
from mmdream_cluster.driver import render_job
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import parse_job
from mmdream.media.video import probe, read_audio, read_frames
from processes import as_from_a_terminal


def job(media_dir: Path, weights_dir: Path, out: Path, **extra: object):  # type: ignore[no-untyped-def]
    spec = {"input": str(media_dir / "video" / "bbb_320x180.mp4"), "output": str(out), "weights": str(weights_dir),
            "dream": {"steps": 2, "octaves": 2}, "video": {"frame_steps": 1}, "objective": {"layers": "relu4_3"},
            "film": {"size": 64, "stop": 24}, "sharding": {"frames_per_shard": 8, "warmup": 4, "crossfade": 2},
            "resources": {"actors": 2}}
    spec.update(extra)
    return parse_job(spec)


def test_each_actor_loads_its_backbone_once(local_ray, media_dir: Path, weights_dir: Path,  # type: ignore[no-untyped-def]
                                            tmp_path: Path) -> None:
    spec = job(media_dir, weights_dir, tmp_path / "a.mp4")
    actor = DreamActor.remote(compile_plan(spec))
    from mmdream_cluster.planner import plan_shards

    for shard in plan_shards(0, 24, 8, 4, 2):
        ray.get(actor.dream_shard.remote(shard))
    assert ray.get(actor.info.remote())["loads"] == 1
    ray.kill(actor)


def test_sharded_render_makes_every_frame_once_with_the_sound(local_ray, media_dir: Path,  # type: ignore[no-untyped-def]
                                                            weights_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "film.mp4"
    events = []
    render_job(compile_plan(job(media_dir, weights_dir, out)), shards=3, progress=events.append)
    info = probe(out)
    assert info.frame_count == 24 and (info.width, info.height) == (64, 36) and info.audio is not None
    assert abs(info.audio.duration_s - 24 / 25) <= 1 / 25  # type: ignore[operator]
    assert events[-1].step == events[-1].total == 8 + 12 + 12  # warm-up frames included
    assert read_audio(out)[0].shape[1] > 0


def test_killed_actor_job_completes_equal_to_an_uninterrupted_run(local_ray, media_dir: Path,  # type: ignore[no-untyped-def]
                                                                  weights_dir: Path, tmp_path: Path) -> None:
    import psutil

    clean = tmp_path / "clean.mp4"
    render_job(compile_plan(job(media_dir, weights_dir, clean, work=str(tmp_path / "w1"))), shards=3)
    killed: list[int] = []

    def kill_one(p) -> None:  # type: ignore[no-untyped-def]
        if p.step >= 6 and not killed:
            for proc in psutil.Process().children(recursive=True):  # this test's own Ray only
                if any("DreamActor" in part for part in proc.cmdline()):
                    proc.send_signal(signal.SIGKILL)
                    killed.append(proc.pid)
                    break

    out = tmp_path / "survived.mp4"
    render_job(compile_plan(job(media_dir, weights_dir, out, work=str(tmp_path / "w2"))), shards=3, progress=kill_one)
    assert killed
    a, b = list(read_frames(clean)), list(read_frames(out))
    assert len(a) == len(b) == 24 and all(np.array_equal(x, y) for x, y in zip(a, b))


def test_a_styled_film_job(local_ray, media_dir: Path, weights_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    style = {"images": [str(media_dir / "images" / "style_starry_night.jpg")],
             "params": {"steps": 3, "scales": 1}, "frame_steps": 2}
    out = tmp_path / "styled.mp4"
    render_job(compile_plan(job(media_dir, weights_dir, out, style=style, work=str(tmp_path / "w"),
                   film={"size": 64, "stop": 12})), shards=2)
    assert probe(out).frame_count == 12
    settings = [json.loads(p.read_text()) for p in (tmp_path / "w").glob("frames-*/settings.json")]
    assert len(settings) == 2 and all(s["style"]["steps"] == 3 and s["frame_steps"] == 2 for s in settings)


def test_ctrl_c_stops_the_actors_keeps_the_checkpoints_and_says_how_to_resume(media_dir: Path,  # type: ignore[no-untyped-def]
                                                                             weights_dir: Path,
                                                                             tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    import yaml

    # 10 steps a frame: dreaming lasts seconds after the third frame, so Ctrl-C lands while the actors work
    spec = job(media_dir, weights_dir, tmp_path / "film.mp4", work=str(tmp_path / "work"), preview=False,
               film={"size": 64, "stop": 12}, dream={"steps": 10, "octaves": 2})
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec.model_dump(by_alias=True, exclude_defaults=True)))
    command = [sys.executable, "-m", "mmdream.cli", "render", str(tmp_path / "job.yaml"), "--shards", "3",
               "--progress", "json"]

    def frames() -> int:
        return len(list((tmp_path / "work").glob("frames-*/*.png")))

    first = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, preexec_fn=as_from_a_terminal)
    deadline = time.monotonic() + 300
    while frames() < 3 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert first.poll() is None, "the render ended before Ctrl-C could reach it"
    os.killpg(first.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: the whole foreground group
    _, err = first.communicate(timeout=120)
    kept = frames()
    time.sleep(3)
    assert first.returncode == 130, err[-3000:]
    assert frames() == kept >= 3  # the actors are stopped; their checkpoints stay
    last = err.strip().splitlines()[-1]
    assert last.startswith("mmdream: interrupted: actors stopped, checkpoints kept in") and "Traceback" not in err
    assert last.endswith(f"resume with: mmdream render {tmp_path / 'job.yaml'} --shards 3 --progress json"), last
    assert not (tmp_path / "film.mp4").exists()

    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    events = [json.loads(line) for line in rerun.stderr.splitlines() if line.startswith("{")]
    assert events[0]["step"] >= kept and probe(tmp_path / "film.mp4").frame_count == 12
