"""Run a job on Ray: start (or join) Ray, hand shards to actors as they free up, follow progress, reduce."""

from __future__ import annotations

import json
import time
from pathlib import Path

import ray

from cluster.actors import DreamActor
from cluster.planner import Shard, plan_shards
from cluster.reducer import reduce_film, shard_work
from mmdream.film import film_settings, plan_film
from mmdream.jobspec import JobSpec, objective_record
from mmdream.media import storage
from mmdream.media.samples import resolve as resolve_sample
from mmdream.media.storage import local_input
from mmdream.progress import Progress, ProgressFn


def render_job(job: JobSpec, *, address: str | None = None, shards: int | None = None,
               progress: ProgressFn | None = None) -> Path | str:
    """Render ``job`` on Ray and return the output path.

    Without ``address`` (and without a Ray already initialised in this process) a local single-node Ray is
    started with one CPU per actor and stopped at the end. Finished frames are checkpointed per shard, so a rerun
    after a crash resumes; actors are restarted and their tasks retried if they die.
    """
    job = job.with_overrides(input=resolve_sample(job.input))
    with local_input(job.input) as input_path:
        return _render(job, str(input_path), address, shards, progress)


def _render(job: JobSpec, input_path: str, address: str | None, shards: int | None,
            progress: ProgressFn | None) -> Path | str:
    plan = plan_film(input_path, job.film_params())
    parts = plan_shards(plan.start, plan.stop, job.sharding.frames_per_shard, job.sharding.warmup,
                        job.sharding.crossfade, shards)
    settings = film_settings(input_path, plan, job.still_params(), job.video_params(),
                             objective_record(job.objective, job.backbone, max(plan.width, plan.height)))
    res = job.resources
    n_actors = min(res.actors, len(parts))
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address)
        else:
            ray.init(address="local", num_cpus=max(1, int(n_actors * res.cpus_per_actor)),
                     include_dashboard=False, log_to_driver=False)  # "local": never join a stray cluster
        started = True
    try:
        _run_shards(job, parts, settings, n_actors, progress)
        out = reduce_film(job, input_path, plan, parts, settings)
        if job.work is None:  # the default work location goes once the film is written; a given one is kept
            storage.remove_tree(job.work_uri())
        return out
    finally:
        if started:
            ray.shutdown()


def _run_shards(job: JobSpec, parts: list[Shard], settings: dict, n_actors: int,
                progress: ProgressFn | None) -> None:
    res = job.resources
    options = {"num_cpus": res.cpus_per_actor, "num_gpus": res.gpus_per_actor, "max_restarts": 3,
               "max_task_retries": 3}
    works = [shard_work(job, s, settings) for s in parts]  # refuses checkpoints of other settings before starting
    job_json = json.dumps(job.model_dump(by_alias=True))
    actors = [DreamActor.options(**options).remote(job_json, max(1, int(res.cpus_per_actor)))
              for _ in range(n_actors)]
    queue = list(parts)
    pending: dict = {}  # task -> (actor, shard)

    def launch(actor) -> None:  # type: ignore[no-untyped-def]
        if queue:
            shard = queue.pop(0)
            pending[actor.dream_shard.remote(shard)] = (actor, shard)

    for actor in actors:
        launch(actor)
    counts = {s.index: len(w.finished()) for s, w in zip(parts, works)}  # frames finished per shard
    before, total = sum(counts.values()), sum(s.stop - s.first for s in parts)
    start, shards_done, reported = time.perf_counter(), 0, -1
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in done:
            actor, shard = pending.pop(ref)
            ray.get(ref)  # a finished task: raises if the shard failed for good
            counts[shard.index] = shard.stop - shard.first
            shards_done += 1
            launch(actor)
        if progress is None:
            continue
        for _, shard in pending.values():  # list only the shards in flight
            counts[shard.index] = len(works[shard.index].finished())
        frames = sum(counts.values())
        if frames != reported:
            reported = frames
            elapsed = time.perf_counter() - start
            rate = (frames - before) / elapsed if elapsed > 0 else 0.0  # frames of earlier runs are not timed
            progress(Progress(f"shards {shards_done}/{len(parts)}", frames, total, None, round(elapsed, 3),
                              round((total - frames) / rate, 3) if rate > 0 else None))
