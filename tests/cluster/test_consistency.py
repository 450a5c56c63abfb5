"""The Ray path and the in-process path dream the same film: one shard exactly; two shards alike up to the seam
(the second shard's warm-up starts from a fresh still of its own seed, so its detail differs pixel for pixel, but
its strength and steadiness are the in-process film's)."""

from __future__ import annotations

from pathlib import Path

import torch

from mmdream_cluster.driver import render_job
from mmdream_cluster.planner import plan_shards
from mmdream_cluster.reducer import assembled_frames
from mmdream.eval import metrics
from mmdream.schedules.drive import film_chroma, film_drive
from mmdream.backbones import load_backbone
from mmdream.dream.temporal import dream_frames
from mmdream.pipelines.film import plan_film, source_frames
from mmdream.jobspec.schema import JobSpec, build_job_objective, film_job_settings, parse_job


def job(media_dir: Path, weights_dir: Path, tmp: Path, name: str) -> JobSpec:
    """The demo job's picture (EfficientNet-Lite0, dog theme, the loudness driving the strength) at 64 px, without
    dreaming the sound (an explicit class set stands in for the theme's two tracks)."""
    return parse_job({
        "input": str(media_dir / "video" / "bbb_320x180.mp4"), "output": str(tmp / f"{name}.mp4"),
        "work": str(tmp / f"work_{name}"), "weights": str(weights_dir), "preview": False,
        "backbone": {"name": "efficientnet_lite0"}, "objective": {"class": "beagle"},
        "dream": {"steps": 2, "octaves": 2}, "video": {"frame_steps": 1}, "av": {"drive": "rms"},
        "film": {"size": 64, "stop": 16}, "sharding": {"frames_per_shard": 8, "warmup": 4, "crossfade": 2},
        "resources": {"actors": 2}})


def ray_frames(spec: JobSpec, shards: int) -> list[torch.Tensor]:
    """The frames the Ray render checkpointed, assembled as its reducer does (before H.264)."""
    render_job(spec, shards=shards)
    plan = plan_film(spec.input, spec.film_params())
    schedules = {"drive": film_drive(spec.input, plan, spec.av_params()),
                 "chroma": film_chroma(spec.input, plan, spec.av_params())}
    parts = plan_shards(plan.start, plan.stop, spec.sharding.frames_per_shard, spec.sharding.warmup,
                        spec.sharding.crossfade, shards)
    return list(assembled_frames(spec, plan, parts, film_job_settings(spec, spec.input, plan, schedules)))


def test_ray_and_in_process_paths_agree(local_ray, one_thread, media_dir: Path,  # type: ignore[no-untyped-def]
                                        weights_dir: Path, tmp_path: Path) -> None:
    # one_thread: the actors dream on one thread, and float sums change with the number of threads
    spec = job(media_dir, weights_dir, tmp_path, "one")
    plan = plan_film(spec.input, spec.film_params())
    net = load_backbone("efficientnet_lite0", weights_dir=weights_dir)
    source = list(source_frames(spec.input, plan, plan.start, plan.stop))
    local = [d for d, _ in dream_frames(source, net, build_job_objective(spec.objective, net, 64), spec.still_params(),
                                        spec.video_params(), drive=film_drive(spec.input, plan, spec.av_params()))]
    assert all(torch.equal(a, b) for a, b in zip(ray_frames(spec, 1), local, strict=True))
    two = ray_frames(job(media_dir, weights_dir, tmp_path, "two"), 2)
    delta = [255 * float((a - b).abs().mean()) for a, b in zip(two, local, strict=True)]
    assert max(delta[:6]) == 0  # before the crossfade, the first shard is the in-process film
    strength = sum(float((a - s).abs().mean()) for a, s in zip(two, source)) / sum(
        float((a - s).abs().mean()) for a, s in zip(local, source))
    flicker = metrics.flicker(two, source) / metrics.flicker(local, source)
    print(f"strength ratio {strength:.3f}, flicker ratio {flicker:.3f}, largest |delta| {max(delta):.1f}")
    assert 0.9 < strength < 1.1 and flicker < 1.4, (strength, flicker)  # measured: 0.977 and 1.22
