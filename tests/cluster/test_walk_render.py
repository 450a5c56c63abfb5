"""Latent walks on Ray: frames sharded by time agree exactly with a 1-shard render, the film carries the music,
a lost frame is all a rerun redoes, and a walk job refuses what it cannot use."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmdream_cluster.driver import render_job
from mmdream.errors import ParameterError
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import parse_job
from mmdream.media.video import probe, read_frames


def _job(media_dir: Path, weights_dir: Path, out: Path, work: Path) -> dict:
    return {"input": str(media_dir / "audio" / "music_ambi_piano.wav"), "output": str(out), "work": str(work),
            "weights": str(weights_dir),
            "walk": {"generator": "dcgan_faces64", "fps": 8, "size": 64, "seed": 3, "params": {"speed": 1.0}},
            "sharding": {"frames_per_shard": 8}, "resources": {"actors": 2}}


def test_sharded_walk_equals_one_shard_and_has_the_music(local_ray, media_dir: Path, weights_dir: Path,
                                                         tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    spec = _job(media_dir, weights_dir, tmp_path / "three.mp4", tmp_path / "work3")
    three = render_job(compile_plan(parse_job(spec)), shards=3)
    one = render_job(compile_plan(parse_job({**spec, "output": str(tmp_path / "one.mp4"),
                                             "work": str(tmp_path / "work1")})), shards=1)
    frames3 = sorted((tmp_path / "work3").rglob("0*.png"))
    frames1 = sorted((tmp_path / "work1").rglob("0*.png"))
    assert len(frames3) == len(frames1) == 23  # ceil(2.81 s * 8 fps)
    assert len({p.parent for p in frames3}) == 3
    assert [p.read_bytes() for p in frames3] == [p.read_bytes() for p in frames1]
    info = probe(three)
    assert info.audio is not None and info.width == 64 and info.frame_count == 23
    a, b = np.stack(list(read_frames(three))), np.stack(list(read_frames(one)))
    assert a.shape == b.shape and np.abs(a.astype(int) - b).mean() < 0.5  # same frames through H.264
    assert (tmp_path / "three.preview.png").stat().st_size > 10_000

    lost = frames3[10]
    lost.with_suffix(".json").unlink()
    others = {p: p.stat().st_mtime_ns for p in frames3 if p != lost}
    render_job(compile_plan(parse_job(spec)), shards=3)
    assert lost.with_suffix(".json").is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in others.items())  # only the lost frame was redone


@pytest.mark.parametrize(("extra", "message"), [
    ({"theme": "dog"}, "remove theme"),
    ({"objective": {"class": "goldfish"}}, "remove objective"),
    ({"output": "walk.wav"}, "must be a film"),
    ({"walk": {"generator": "dcgan_faces64", "fps": 500}}, "fps"),
])
def test_walk_job_refuses_what_it_cannot_use(extra: dict, message: str, tmp_path: Path) -> None:
    spec = {"input": "music.wav", "output": str(tmp_path / "w.mp4"), "walk": {"generator": "dcgan_faces64"}, **extra}
    with pytest.raises(ParameterError, match=message):
        parse_job(spec)
