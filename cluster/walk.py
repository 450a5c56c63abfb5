"""Latent walks on Ray: the driver plans the walk once (latents per frame, from the music), actors load the
generator once and render frame shards into the work location, the reducer encodes the frames with the music.

A frame is G(its latent) and nothing else, so shards need no warm-up or crossfade and a sharded render equals a
1-shard render frame for frame.
"""

from __future__ import annotations

import hashlib
import io
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
from mmdream.jobspec.build import job_provenance
from mmdream.jobspec.plan import RenderPlan, WalkPlan
from mmdream.media import storage
from mmdream.pipelines.store import FrameStore
from mmdream.progress import Progress, ProgressFn
from mmdream.schedules.walk import Walk


@dataclass(frozen=True)
class WalkFrame:
    """A rendered frame's record: its position along the path (in key latents) and relative speed."""

    position: float
    speed: float


def _walk_of(plan: RenderPlan) -> WalkPlan:
    assert plan.walk is not None
    return plan.walk


def plan_walk(plan: RenderPlan, input_path: str) -> tuple[Walk, tuple[np.ndarray, int]]:
    """The job's walk (one latent per frame of the music) and the music ``(C, n)`` as read."""
    from mmdream.backbones.generators import load_generator
    from mmdream.media.audio import load_audio
    from mmdream.schedules.walk import latent_walk

    spec = _walk_of(plan)
    generator = load_generator(spec.generator, weights_dir=plan.uris.weights)
    samples, rate = load_audio(input_path)
    walk = latent_walk(samples.mean(dim=0).numpy(), rate, spec.film.fps, spec.params, spec.film.seed,
                       latent_dim=generator.latent_dim, num_classes=generator.num_classes,
                       class_index=None if spec.class_ is None else generator.resolve_class(spec.class_))
    return walk, (samples.numpy(), rate)


def walk_uri(plan: RenderPlan) -> str:
    return storage.join(plan.uris.work, "walk.npz")


def save_walk(plan: RenderPlan, walk: Walk) -> str:
    """Write the walk to the work location (the actors read it there); return its digest."""
    buffer = io.BytesIO()
    arrays = {"latents": walk.latents, "position": walk.position, "speed": walk.speed}
    if walk.classes is not None:
        arrays["classes"] = walk.classes
    np.savez(buffer, **arrays)
    storage.write_bytes(walk_uri(plan), buffer.getvalue())
    return hashlib.sha256(walk.latents.tobytes() + (b"" if walk.classes is None else walk.classes.tobytes())
                          ).hexdigest()[:16]


def load_walk(plan: RenderPlan) -> Walk:
    with np.load(io.BytesIO(storage.read_bytes(walk_uri(plan)))) as data:
        return Walk(data["latents"], data["classes"] if "classes" in data else None, data["position"],
                    data["speed"])


def walk_settings(plan: RenderPlan, input_path: str, digest: str) -> dict[str, Any]:
    """What makes the frames: checkpoints of other settings are refused, not mixed in."""
    return {"kind": "walk", "input": os.path.basename(input_path), "walk": _walk_of(plan).record, "latents": digest}


@ray.remote
class WalkActor(NodeActor):
    """Holds the job's generator (loaded once) and walk; ``render`` renders a frame shard, resuming."""

    def setup(self, plan: RenderPlan, settings: dict[str, Any], threads: int = 1) -> None:  # type: ignore[override]
        import torch

        from mmdream.backbones.generators import load_generator

        torch.set_num_threads(threads)
        self.plan = plan
        self.spec = _walk_of(plan)
        self.generator = load_generator(self.spec.generator, weights_dir=plan.uris.weights).to(
            actor_device().device)  # the GPU Ray granted, else the CPU
        self.walk = load_walk(plan)
        self.settings = settings

    def render(self, shard: Shard) -> dict[str, Any]:
        from mmdream.media.images import from_uint8
        from mmdream.pipelines.walk import walk_frames

        work = FrameStore(storage.join(self.plan.uris.work, shard.name), self.settings)
        finished = work.finished()
        missing = [t for t in range(shard.start, shard.stop) if t not in finished]
        runs = [[t] for t in missing[:1]]
        for t in missing[1:]:  # contiguous runs, each rendered in batches
            if t == runs[-1][-1] + 1:
                runs[-1].append(t)
            else:
                runs.append([t])
        for run in runs:
            frames = walk_frames(self.generator, self.walk, self.spec.film.size, run[0], run[-1] + 1)
            for t, pixels in zip(run, frames):
                work.save(t, from_uint8(pixels)[0], WalkFrame(float(self.walk.position[t]),
                                                              float(self.walk.speed[t])))
        return {"shard": shard.index, "frames": len(missing), "pid": os.getpid()}


def render_walk_job(plan: RenderPlan, input_path: str, address: str | None, shards: int | None,
                    progress: ProgressFn | None, watch: Watch | None = None) -> Path | str:
    """Plan the walk, render its frames on actors (``plan.resources``), write the film with the music."""
    walk, music = plan_walk(plan, input_path)
    parts = plan_shards(0, len(walk), plan.sharding.frames_per_shard, 0, 0, shards)
    res = plan.resources
    with ray_session(address, int(res.actors * res.cpus_per_actor)) as own_ray:
        check_cluster(plan, address, probe=not own_ray)
        digest = save_walk(plan, walk)
        settings = walk_settings(plan, input_path, digest)
        works = [FrameStore(storage.join(plan.uris.work, s.name), settings) for s in parts]  # refuses other settings
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

        make = partial(WalkActor.options(**actor_options(plan)).remote, plan, settings,
                       max(1, int(res.cpus_per_actor)))
        run_tasks({"walk": (make, res.actors)}, [Task(s.name, "walk", "render", (s,)) for s in parts],
                  retries=res.retries, needs=actor_needs(plan), tick=tick, watch=watch)
        if watch is not None:
            watch("reduce", {})
    out = reduce_walk(plan, input_path, parts, works, walk, music)
    if not plan.uris.keep_work:  # the default work location goes once the output is written; a given one is kept
        storage.remove_tree(plan.uris.work)
    return out


def reduce_walk(plan: RenderPlan, input_path: str, parts: list[Shard], works: list[FrameStore], walk: Walk,
                music: tuple[np.ndarray, int]) -> Path | str:
    """Encode the shards' frames in order with the input's music (cut to the frames), atomically; then the
    preview: a strip of frames over the music's spectrogram and the walk's speed."""
    import torch

    from mmdream.errors import MediaError
    from mmdream.media.film_preview import save_film_preview
    from mmdream.media.images import to_uint8
    from mmdream.media.spectrogram import spectrogram_panel
    from mmdream.media.video import VideoWriter

    spec, output = _walk_of(plan), plan.uris.output
    picks = {int((i + 0.5) * len(walk) / 8) for i in range(8)}
    thumbs: list[tuple[int, torch.Tensor]] = []
    with storage.local_output(output) as target, \
            VideoWriter(target, fps=spec.film.fps, crf=spec.film.crf, audio_from=input_path,
                        provenance=job_provenance(plan)) as writer:
        for shard, work in zip(parts, works):
            finished = work.finished()
            for t in range(shard.start, shard.stop):
                if t not in finished:
                    raise MediaError(f"walk frame {t} is missing from {work.uri}; rerun the job to finish it")
                frame = work.frame(t)
                if t in picks:
                    thumbs.append((t, frame))
                writer.write(to_uint8(frame))
    if plan.uris.preview is not None:
        samples, rate = music
        save_film_preview(plan.uris.preview, thumbs, [spectrogram_panel("music", torch.from_numpy(samples), rate)],
                          {"walk speed (x mean)": walk.speed.tolist()}, fps=spec.film.fps, frames=len(walk),
                          title=f"{spec.generator} along the walk")
    return output if storage.is_s3(output) else Path(output)
