"""Run a job on Ray: start (or join) Ray, check that every node sees what the job needs, hand frame shards and
sound segments to actors through the scheduler, follow progress, reduce (the film with its sound, or the sound
alone)."""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import ray

from mmdream_cluster.actors import DreamActor, actor_needs, actor_options
from mmdream_cluster.planner import Shard, plan_shards
from mmdream_cluster.probe import check_cluster
from mmdream_cluster.reducer import audio_preview, reduce_film, shard_work
from mmdream_cluster.scheduler import Task, Watch, run_tasks
from mmdream_cluster.session import ray_session
from mmdream_cluster.sound import Sound, join_sound, prepare_sound
from mmdream_cluster.walk import render_walk_job
from mmdream_cluster.zoom import render_zoom_job
from mmdream.schedules.drive import film_chroma, film_drive
from mmdream.pipelines.film import plan_film
from mmdream.jobspec.build import film_job_settings, job_provenance
from mmdream.jobspec.plan import RenderPlan
from mmdream.media import storage
from mmdream.media.audio import save_audio
from mmdream.media.samples import resolve as resolve_sample
from mmdream.media.sequence import local_media_input
from mmdream.progress import Progress, ProgressFn


def render_job(plan: RenderPlan, *, address: str | None = None, shards: int | None = None,
               progress: ProgressFn | None = None, watch: Watch | None = None) -> Path | str:
    """Render a job (its compiled ``plan``: :func:`mmdream.jobspec.plan.compile_plan`) on Ray and return the output
    path.

    Without ``address`` (and without a Ray already initialised in this process) a local single-node Ray is
    started and stopped at the end. Before any dreaming, the job's locations are checked against the cluster
    and every node is probed (:func:`mmdream_cluster.probe.check_cluster`). Finished frames and segments are
    checkpointed, so a lost actor or node costs only its unfinished frames (the scheduler re-queues its task) and a
    rerun after a crash or Ctrl-C resumes. ``watch`` observes the scheduler's named points (tests).
    """
    plan = plan.with_input(resolve_sample(plan.uris.input))
    with local_media_input(plan.uris.input) as input_path:
        return _render(plan, str(input_path), address, shards, progress, watch)


def _render(plan: RenderPlan, input_path: str, address: str | None, shards: int | None,
            progress: ProgressFn | None, watch: Watch | None) -> Path | str:
    if plan.kind == "walk":
        return render_walk_job(plan, input_path, address, shards, progress, watch)
    if plan.kind == "zoom":
        return render_zoom_job(plan, input_path, address, progress, watch)
    film = plan_film(input_path, plan.picture.film) if plan.kind == "film" else None
    parts, settings, schedules = [], {}, {}
    if film is not None:
        cut = plan.sharding
        parts = plan_shards(film.start, film.stop, cut.frames_per_shard, cut.warmup, cut.crossfade, shards)
        # Computed once, before sharding, so every shard sees the same curves.
        schedules = {"drive": film_drive(input_path, film, plan.av), "chroma": film_chroma(input_path, film, plan.av)}
        settings = film_job_settings(plan, input_path, film, schedules)
    res = plan.resources
    with ray_session(address, int(res.actors * res.cpus_per_actor)) as own_ray:
        check_cluster(plan, address, probe=not own_ray)
        sound = prepare_sound(plan, input_path, film) if plan.sound is not None else None
        _run_tasks(plan, parts, settings, schedules, sound, progress, watch)
        if watch is not None:
            watch("reduce", {})
    dreamed = None if sound is None else join_sound(plan, input_path, film, sound)
    if film is None:
        assert sound is not None and dreamed is not None
        out: Path | str = save_audio(plan.uris.output, *dreamed, provenance=job_provenance(plan))
        audio_preview(plan, (sound.source, sound.rate), dreamed)
    else:
        out = reduce_film(plan, input_path, film, parts, settings, dreamed, schedules.get("drive"))
    if not plan.uris.keep_work:  # the default work location goes once the output is written; a given one is kept
        storage.remove_tree(plan.uris.work)
    return out if storage.is_s3(str(out)) else Path(out)


def _run_tasks(plan: RenderPlan, parts: list[Shard], settings: dict, schedules: dict, sound: Sound | None,
               progress: ProgressFn | None, watch: Watch | None) -> None:
    """Dream every frame shard and sound segment on the job's actors (:func:`mmdream_cluster.scheduler.run_tasks`).

    Progress counts frames (warm-up included) and sound segments; a rerun counts what its checkpoints hold as done.
    """
    works = [shard_work(plan, s, settings) for s in parts]  # refuses checkpoints of other settings before starting
    if parts:  # the actors read the schedules from the work location (replaced ones too)
        storage.write_text(plan.uris.schedules, json.dumps(schedules))
    tasks = []  # sound segments first (few, and the reducer needs them all), then frame shards
    counts: dict[str, int] = {}
    if sound is not None:
        finished = sound.store.finished()
        segments_ref = ray.put(sound.plan)
        for i, (a, b) in enumerate(sound.plan.segments):
            counts[f"sound-{i:05d}"] = int(i in finished)
            if i not in finished:
                tasks.append(Task(f"sound-{i:05d}", "dream", "dream_sound",
                                  (i, segments_ref, ray.put(sound.x[a:b].numpy()), sound.settings)))
    tasks += [Task(s.name, "dream", "dream_shard", (s,)) for s in parts]
    sizes = {s.name: s.stop - s.first for s in parts} | {name: 1 for name in counts}
    counts |= {s.name: len(w.finished()) for s, w in zip(parts, works)}
    works_by_name = {s.name: w for s, w in zip(parts, works)}
    total, before = sum(sizes.values()), sum(counts.values())
    start, reported = time.perf_counter(), -1

    def tick(running: list[Task], done: set[str], note: str | None) -> None:
        nonlocal reported
        if progress is None:
            return
        for name in done:
            counts[name] = sizes[name]
        for task in running:  # look only at the frame shards in flight
            if task.name in works_by_name:
                counts[task.name] = len(works_by_name[task.name].finished())
        units = sum(counts.values())
        if units != reported or note:
            reported = units
            elapsed = time.perf_counter() - start
            rate = (units - before) / elapsed if elapsed > 0 else 0.0  # work of earlier runs is not timed
            progress(Progress(f"tasks {len(done) + len(sizes) - len(tasks)}/{len(sizes)}", units, total, None,
                              round(elapsed, 3), round((total - units) / rate, 3) if rate > 0 else None, note))

    res = plan.resources
    make = partial(DreamActor.options(**actor_options(plan)).remote, plan, max(1, int(res.cpus_per_actor)))
    run_tasks({"dream": (make, res.actors)}, tasks, retries=res.retries, needs=actor_needs(plan), tick=tick,
              watch=watch)
