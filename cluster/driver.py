"""Run a job on Ray: start (or join) Ray, hand frame shards and sound segments to actors as they free up, follow
progress, reduce (the film with its sound, or the sound alone)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import ray

from cluster.actors import DreamActor
from cluster.planner import Shard, plan_shards
from cluster.reducer import audio_preview, reduce_film, shard_work
from cluster.session import ray_session
from cluster.sound import Sound, join_sound, prepare_sound
from cluster.walk import render_walk_job
from cluster.zoom import render_zoom_job
from mmdream.av import film_chroma, film_drive
from mmdream.film import plan_film
from mmdream.jobspec import JobSpec, film_job_settings, job_provenance
from mmdream.media import storage
from mmdream.media.audio import save_audio
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
    if job.kind == "walk":
        return render_walk_job(job, input_path, address, shards, progress)
    if job.kind == "zoom":
        return render_zoom_job(job, input_path, address, progress)
    film = job.kind == "film"
    plan = plan_film(input_path, job.film_params()) if film else None
    parts, settings, schedules = [], {}, {}
    if plan is not None:
        parts = plan_shards(plan.start, plan.stop, job.sharding.frames_per_shard, job.sharding.warmup,
                            job.sharding.crossfade, shards)
        # Computed once, before sharding, so every shard sees the same curves.
        schedules = {"drive": film_drive(input_path, plan, job.av_params()),
                     "chroma": film_chroma(input_path, plan, job.av_params())}
        settings = film_job_settings(job, input_path, plan, schedules)
    sound = prepare_sound(job, input_path, plan) if job.sound_spec() is not None else None
    res = job.resources
    n_actors = min(res.actors, len(parts) + (len(sound.plan.segments) if sound else 0))
    with ray_session(address, int(n_actors * res.cpus_per_actor)):
        _run_tasks(job, parts, settings, schedules, sound, n_actors, progress)
    dreamed = None if sound is None else join_sound(job, input_path, plan, sound)
    if plan is None:
        assert sound is not None and dreamed is not None
        out: Path | str = save_audio(job.output, *dreamed, provenance=job_provenance(job))
        audio_preview(job, (sound.source, sound.rate), dreamed)
    else:
        out = reduce_film(job, input_path, plan, parts, settings, dreamed, schedules.get("drive"))
    if job.work is None:  # the default work location goes once the output is written; a given one is kept
        storage.remove_tree(job.work_uri())
    return out if storage.is_s3(str(out)) else Path(out)


def _run_tasks(job: JobSpec, parts: list[Shard], settings: dict, schedules: dict, sound: Sound | None,
               n_actors: int, progress: ProgressFn | None) -> None:
    """Dream every frame shard and sound segment on ``n_actors`` actors, handing out tasks as actors free up.

    Progress counts frames (warm-up included) and sound segments; a rerun counts what its checkpoints hold as done.
    """
    res = job.resources
    options = {"num_cpus": res.cpus_per_actor, "num_gpus": res.gpus_per_actor, "max_restarts": 3,
               "max_task_retries": 3}
    works = [shard_work(job, s, settings) for s in parts]  # refuses checkpoints of other settings before starting
    job_json = json.dumps(job.model_dump(by_alias=True))
    if parts:  # the actors read the schedules from the work location (restarted ones too)
        storage.write_text(job.schedule_uri(), json.dumps(schedules))
    actors = [DreamActor.options(**options).remote(job_json, max(1, int(res.cpus_per_actor)))
              for _ in range(n_actors)]
    queue: list = []  # sound segments first (few, and the reducer needs them all), then frame shards
    if sound is not None:
        finished = sound.store.finished()
        plan_ref = ray.put(sound.plan)
        queue += [("sound", i, plan_ref, ray.put(sound.x[a:b].numpy()))
                  for i, (a, b) in enumerate(sound.plan.segments) if i not in finished]
    queue += [("frames", s) for s in parts]
    pending: dict = {}  # task -> (actor, task)

    def launch(actor) -> None:  # type: ignore[no-untyped-def]
        if queue:
            task = queue.pop(0)
            if task[0] == "sound":
                ref = actor.dream_sound.remote(*task[1:], sound.settings)  # type: ignore[union-attr]
            else:
                ref = actor.dream_shard.remote(task[1])
            pending[ref] = (actor, task)

    for actor in actors:
        launch(actor)
    counts = {("frames", s.index): len(w.finished()) for s, w in zip(parts, works)}
    if sound is not None:
        counts.update({("sound", i): int(i in sound.store.finished()) for i in range(len(sound.plan.segments))})
    total = sum(s.stop - s.first for s in parts) + (len(sound.plan.segments) if sound else 0)
    before, n_tasks = sum(counts.values()), len(counts)
    start, tasks_done, reported = time.perf_counter(), n_tasks - len(queue) - len(pending), -1
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
        for ref in done:
            actor, task = pending.pop(ref)
            ray.get(ref)  # a finished task: raises if it failed for good
            key = ("sound", task[1]) if task[0] == "sound" else ("frames", task[1].index)
            counts[key] = 1 if task[0] == "sound" else task[1].stop - task[1].first
            tasks_done += 1
            launch(actor)
        if progress is None:
            continue
        for _, task in pending.values():  # look only at the frame shards in flight
            if task[0] == "frames":
                counts[("frames", task[1].index)] = len(works[task[1].index].finished())
        units = sum(counts.values())
        if units != reported:
            reported = units
            elapsed = time.perf_counter() - start
            rate = (units - before) / elapsed if elapsed > 0 else 0.0  # work of earlier runs is not timed
            progress(Progress(f"tasks {tasks_done}/{n_tasks}", units, total, None, round(elapsed, 3),
                              round((total - units) / rate, 3) if rate > 0 else None))
