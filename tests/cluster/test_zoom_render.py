"""Zoom jobs on Ray: one actor renders the frame chain (equal to an in-process render, byte for byte) while others
dream the sound's segments; the film carries the dreamed sound; a rerun redoes only lost frames; a zoom job refuses
what it cannot use, before any actor starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmdream_cluster.driver import render_job
from mmdream.schedules.drive import AVParams
from mmdream.errors import ParameterError
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import parse_job
from mmdream.media.video import probe, read_audio
from mmdream.objectives.terms import build_objective
from mmdream.pipelines.zoom import plan_zoom, render_zoom


def _spec(media_dir: Path, weights_dir: Path, tmp_path: Path) -> dict:
    return {"input": str(media_dir / "images" / "chelsea.png"), "output": str(tmp_path / "zoom.mp4"),
            "work": str(tmp_path / "work"), "weights": str(weights_dir),
            "backbone": {"name": "efficientnet_lite0"}, "dream": {"steps": 1, "octaves": 1},
            "av": {"drive": "onset"},
            "zoom": {"size": 48, "audio": str(media_dir / "audio" / "music_loop_amen_full.wav"),
                     "film": {"seconds": 1.5, "fps": 6},
                     "params": {"zoom": 1.5, "frame_steps": 1, "frame_octaves": 1}},
            "audio": {"objective": {"class": "Bark"}, "dream": {"steps": 1}},
            "sharding": {"audio_segment_s": 1, "audio_overlap_s": 0.25}, "resources": {"actors": 2}}


def test_zoom_job_equals_the_in_process_render_and_carries_the_dreamed_sound(
        local_ray, one_thread, media_dir: Path, weights_dir: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
        effnet) -> None:
    # one_thread: the actors dream on one thread, and float sums change with the number of threads
    spec = _spec(media_dir, weights_dir, tmp_path)
    job = compile_plan(parse_job(spec))
    out = render_job(job)
    info = probe(out)
    assert (info.frame_count, info.fps, info.width) == (9, 6.0, 48) and info.audio is not None
    assert (tmp_path / "zoom.preview.png").stat().st_size > 1000
    assert len(list((tmp_path / "work" / "sound").glob("*.npy"))) == 2  # two segments, dreamed on an actor
    dreamed, rate = read_audio(out)
    source, _ = read_audio(spec["zoom"]["audio"], duration_s=dreamed.shape[-1] / rate)
    n = min(dreamed.shape[-1], source.shape[-1])
    assert np.sqrt(((dreamed[:, :n] - source[:, :n]) ** 2).mean()) > 0.01

    z = job.zoom
    plan = plan_zoom(job.uris.input, z.film, z.size, z.audio)
    local = tmp_path / "local"
    render_zoom(plan, tmp_path / "local.mp4", effnet, build_objective(effnet), job.picture.dream, z.params,
                AVParams(drive="onset"), work_dir=local)
    ray_frames = sorted((tmp_path / "work" / "frames").glob("0*.png"))
    assert [p.read_bytes() for p in ray_frames] == [p.read_bytes() for p in sorted((local / "frames").glob("0*.png"))]

    lost = ray_frames[-2:]
    for p in lost:
        p.with_suffix(".json").unlink()
    kept = {p: p.stat().st_mtime_ns for p in ray_frames[:-2]}
    render_job(job)
    assert all(p.with_suffix(".json").is_file() for p in lost)
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # only the lost frames were redone


@pytest.mark.parametrize(("extra", "message"), [
    ({"video": {"blend": 0.5}}, "remove video"),
    ({"theme": "dog"}, "remove theme"),
    ({"output": "zoom.wav"}, "must be a film"),
    ({"zoom": {"params": {"zoom": 50}}}, "zoom"),
])
def test_zoom_job_refuses_what_it_cannot_use(extra: dict, message: str, tmp_path: Path) -> None:
    spec = {"input": "still.png", "output": str(tmp_path / "z.mp4"), "zoom": {}, **extra}
    with pytest.raises(ParameterError, match=message):
        parse_job(spec)


def test_a_drive_without_a_sound_fails_before_ray(media_dir: Path, tmp_path: Path) -> None:
    job = parse_job({"input": str(media_dir / "images" / "chelsea.png"), "output": str(tmp_path / "z.mp4"),
                     "av": {"drive": "rms"}, "zoom": {"size": 32}})
    with pytest.raises(ParameterError, match="need a sound"):
        render_job(compile_plan(job))
    assert not list(tmp_path.iterdir())


def test_render_draft_of_a_zoom_job(local_ray, media_dir: Path, weights_dir: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from mmdream.cli import main

    spec = _spec(media_dir, weights_dir, tmp_path)
    del spec["work"]
    spec["zoom"]["film"] = {"seconds": 2, "fps": 8}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    assert main(["render", str(tmp_path / "job.yaml"), "--draft", "--progress", "none"]) == 0
    draft = probe(tmp_path / "zoom.draft.mp4")
    assert (draft.frame_count, draft.fps, draft.width) == (4, 2.0, 32) and draft.audio is not None
    assert (tmp_path / "zoom.draft.png").stat().st_size > 1000
    assert not (tmp_path / "zoom.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.yaml", "zoom.draft.mp4", "zoom.draft.png"]
