"""Latent walks on Ray: the driver plans the walk once (latents per frame, from the music), actors load the
generator once and render frame shards into the work location, the reducer encodes the frames with the music.

A frame is G(its latent) and nothing else, so shards need no warm-up or crossfade and a sharded render equals a
1-shard render frame for frame.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from functools import partial
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray

from mmdream_cluster.actors import actor_needs, actor_options
from mmdream_cluster.devices import actor_device
from mmdream_cluster.nodes import NodeActor
from mmdream_cluster.planner import Shard, plan_shards
from mmdream_cluster.probe import check_cluster
from mmdream_cluster.scheduler import Task, Watch, run_tasks
from mmdream_cluster.session import ray_session
from mmdream.jobspec.schema import JobSpec, job_provenance, parse_job
from mmdream.media import storage
from mmdream.pipelines.store import FrameStore
from mmdream.progress import Progress, ProgressFn
from mmdream.schedules.walk import Walk


@dataclass(frozen=True)
class WalkFrame:
    """A rendered frame's record: its position along the path (in key latents) and relative speed."""

    position: float
    speed: float


def _generator_class(generator: Any, job: JobSpec) -> int | None:
    assert job.walk is not None
    return None if job.walk.class_ is None else generator.resolve_class(job.walk.class_)


def plan_walk(job: JobSpec, input_path: str) -> tuple[Walk, tuple[np.ndarray, int]]:
    """The job's walk (one latent per frame of the music) and the music ``(C, n)`` as read."""
    from mmdream.backbones.generators import load_generator
    from mmdream.media.audio import load_audio
    from mmdream.schedules.walk import latent_walk

    spec = job.walk
    assert spec is not None
    generator = load_generator(spec.generator, weights_dir=job.weights)
    samples, rate = load_audio(input_path)
    walk = latent_walk(samples.mean(dim=0).numpy(), rate, spec.fps, spec.walk_params(), spec.seed,
                       latent_dim=generator.latent_dim, num_classes=generator.num_classes,
                       class_index=_generator_class(generator, job))
    return walk, (samples.numpy(), rate)


def walk_uri(job: JobSpec) -> str:
    return storage.join(job.work_uri(), "walk.npz")


def save_walk(job: JobSpec, walk: Walk) -> str:
    """Write the walk to the work location (the actors read it there); return its digest."""
    buffer = io.BytesIO()
    arrays = {"latents": walk.latents, "position": walk.position, "speed": walk.speed}
    if walk.classes is not None:
        arrays["classes"] = walk.classes
    np.savez(buffer, **arrays)
    storage.write_bytes(walk_uri(job), buffer.getvalue())
    return hashlib.sha256(walk.latents.tobytes() + (b"" if walk.classes is None else walk.classes.tobytes())
                          ).hexdigest()[:16]


def load_walk(job: JobSpec) -> Walk:
    with np.load(io.BytesIO(storage.read_bytes(walk_uri(job)))) as data:
        return Walk(data["latents"], data["classes"] if "classes" in data else None, data["position"],
                    data["speed"])


def walk_settings(job: JobSpec, input_path: str, digest: str) -> dict[str, Any]:
    """What makes the frames: checkpoints of other settings are refused, not mixed in."""
    assert job.walk is not None
    return {"kind": "walk", "input": os.path.basename(input_path), "walk": job.walk.model_dump(by_alias=True),
            "latents": digest}


@ray.remote
class WalkActor(NodeActor):
    """Holds the job's generator (loaded once) and walk; ``render`` renders a frame shard, resuming."""

    def setup(self, job_json: str, settings: dict[str, Any], threads: int = 1) -> None:  # type: ignore[override]
        import torch

        from mmdream.backbones.generators import load_generator

        torch.set_num_threads(threads)
        self.job = parse_job(json.loads(job_json))
        assert self.job.walk is not None
        self.generator = load_generator(self.job.walk.generator, weights_dir=self.job.weights).to(
            actor_device().device)  # the GPU Ray granted, else the CPU
        self.walk = load_walk(self.job)
        self.settings = settings

    def render(self, shard: Shard) -> dict[str, Any]:
        from mmdream.media.images import from_uint8
        from mmdream.schedules.walk import walk_frames

        work = FrameStore(storage.join(self.job.work_uri(), shard.name), self.settings)
        finished = work.finished()
        missing = [t for t in range(shard.start, shard.stop) if t not in finished]
        runs = [[t] for t in missing[:1]]
        for t in missing[1:]:  # contiguous runs, each rendered in batches
            if t == runs[-1][-1] + 1:
                runs[-1].append(t)
            else:
                runs.append([t])
        for run in runs:
            frames = walk_frames(self.generator, self.walk, self.job.walk.size, run[0], run[-1] + 1)  # type: ignore
            for t, pixels in zip(run, frames):
                work.save(t, from_uint8(pixels)[0], WalkFrame(float(self.walk.position[t]),
                                                              float(self.walk.speed[t])))
        return {"shard": shard.index, "frames": len(missing), "pid": os.getpid()}


def render_walk_job(job: JobSpec, input_path: str, address: str | None, shards: int | None,
                    progress: ProgressFn | None, watch: Watch | None = None) -> Path | str:
    """Plan the walk, render its frames on actors (``job.resources``), write the film with the music."""
    walk, music = plan_walk(job, input_path)
    parts = plan_shards(0, len(walk), job.sharding.frames_per_shard, 0, 0, shards)
    res = job.resources
    with ray_session(address, int(res.actors * res.cpus_per_actor)) as own_ray:
        check_cluster(job, address, probe=not own_ray)
        digest = save_walk(job, walk)
        settings = walk_settings(job, input_path, digest)
        works = [FrameStore(storage.join(job.work_uri(), s.name), settings) for s in parts]  # refuses other settings
        counts = {s.name: len(w.finished()) for s, w in zip(parts, works)}  # one listing per shard to start
        by_name = {s.name: (s, w) for s, w in zip(parts, works)}
        start = time.perf_counter()

        def tick(running: list[Task], done: set[str], note: str | None) -> None:
            if progress is None:
                return
            for name in done:
                counts[name] = by_name[name][0].stop - by_name[name][0].start
            for task in running:  # only the shards in flight are listed again
                counts[task.name] = len(by_name[task.name][1].finished())
            progress(Progress("walk", sum(counts.values()), len(walk), None,
                              round(time.perf_counter() - start, 3), None, note))

        job_json = json.dumps(job.model_dump(by_alias=True))
        options = actor_options(job)
        make = partial(WalkActor.options(**options).remote, job_json, settings, max(1, int(res.cpus_per_actor)))
        run_tasks({"walk": (make, res.actors)}, [Task(s.name, "walk", "render", (s,)) for s in parts],
                  retries=res.retries,
                  needs=actor_needs(job), tick=tick, watch=watch)
        if watch is not None:
            watch("reduce", {})
    out = reduce_walk(job, input_path, parts, works, walk, music)
    if job.work is None:  # the default work location goes once the output is written; a given one is kept
        storage.remove_tree(job.work_uri())
    return out


def reduce_walk(job: JobSpec, input_path: str, parts: list[Shard], works: list[FrameStore], walk: Walk,
                music: tuple[np.ndarray, int]) -> Path | str:
    """Encode the shards' frames in order with the input's music (cut to the frames), atomically; then the
    preview: a strip of frames over the music's spectrogram and the walk's speed."""
    import torch

    from mmdream.errors import MediaError
    from mmdream.media.film_preview import save_film_preview
    from mmdream.media.images import to_uint8
    from mmdream.media.spectrogram import spectrogram_panel
    from mmdream.media.video import VideoWriter

    spec = job.walk
    assert spec is not None
    picks = {int((i + 0.5) * len(walk) / 8) for i in range(8)}
    thumbs: list[tuple[int, torch.Tensor]] = []
    with storage.local_output(job.output) as target, \
            VideoWriter(target, fps=spec.fps, crf=spec.crf, audio_from=input_path,
                        provenance=job_provenance(job)) as writer:
        for shard, work in zip(parts, works):
            finished = work.finished()
            for t in range(shard.start, shard.stop):
                if t not in finished:
                    raise MediaError(f"walk frame {t} is missing from {work.uri}; rerun the job to finish it")
                frame = work.frame(t)
                if t in picks:
                    thumbs.append((t, frame))
                writer.write(to_uint8(frame))
    preview = job.preview_uri()
    if preview is not None:
        samples, rate = music
        save_film_preview(preview, thumbs, [spectrogram_panel("music", torch.from_numpy(samples), rate)],
                          {"walk speed (x mean)": walk.speed.tolist()}, fps=spec.fps, frames=len(walk),
                          title=f"{spec.generator} along the walk")
    return job.output if storage.is_s3(job.output) else Path(job.output)
