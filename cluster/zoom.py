"""Zoom films on Ray. A zoom is a chain (frame t is dreamed from frame t-1), so its frames cannot be sharded without
changing the film: starting segments from keyframes would need each keyframe before its segment could begin, and
a segment started from anything else would not join the previous one. So one :class:`ZoomActor` (its backbone
loaded once) renders the frames in order into the work location, while :class:`~mmdream_cluster.actors.DreamActor` s dream
the sound's segments beside it, in parallel (both through :func:`mmdream_cluster.scheduler.run_tasks`); the driver then
joins the sound and encodes the film. A lost actor is replaced and its task resumes after the last finished frame
(the checkpoints are the chain's state), so the film is the one a single process would make, frame for frame.
"""

from __future__ import annotations

import os
import time
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

import ray

from mmdream_cluster.actors import DreamActor, actor_needs, actor_options
from mmdream_cluster.nodes import NodeActor
from mmdream_cluster.probe import check_cluster
from mmdream_cluster.scheduler import Task, Watch, run_tasks
from mmdream_cluster.session import ray_session
from mmdream.backbones import get_spec
from mmdream.pipelines.draft import contact_sheet
from mmdream.dream.zoom import ZoomSchedule
from mmdream.jobspec.build import job_provenance, zoom_job_settings
from mmdream.jobspec.plan import RenderPlan, ZoomJobPlan
from mmdream.media import storage
from mmdream.media.storage import local_input
from mmdream.progress import Progress, ProgressFn
from mmdream.pipelines.store import FrameStore
from mmdream.pipelines.zoom import ZoomPlan, join_zoom_sound, plan_zoom, plan_zoom_sound, write_zoom, zoom_plan_schedules

__all__ = ["ZoomActor", "render_zoom_job"]


def _zoom_of(plan: RenderPlan) -> ZoomJobPlan:
    assert plan.zoom is not None
    return plan.zoom


def _plan(plan: RenderPlan, input_path: str, files: ExitStack) -> ZoomPlan:
    spec = _zoom_of(plan)
    audio = None if spec.audio is None else str(files.enter_context(local_input(spec.audio)))
    return plan_zoom(input_path, spec.film, spec.size, audio)


@ray.remote
class ZoomActor(NodeActor):
    """Holds the job's backbone (loaded once), objective and the driver's schedule; ``render`` dreams the frames in
    order."""

    def setup(self, plan: RenderPlan, schedule: ZoomSchedule, chroma: list[list[float]] | None,  # type: ignore[override]
              threads: int = 1) -> None:
        import torch

        from mmdream.schedules.drive import ChromaObjectives
        from mmdream.backbones import load_backbone
        from mmdream.jobspec.build import build_job_objective

        torch.set_num_threads(threads)
        self.plan = plan
        self._files = ExitStack()  # the input and the sound, downloaded once per actor if they live on S3
        self.zoom = _plan(plan, str(self._files.enter_context(local_input(plan.uris.input))), self._files)
        net = plan.picture.backbone
        self.backbone = load_backbone(net.name, variant=net.variant, weights_dir=plan.uris.weights)
        objective = build_job_objective(plan.picture.objective, self.backbone, max(self.zoom.width, self.zoom.height))
        # The driver's schedule, not one recomputed here: the curve's last bits follow the process's BLAS/OpenMP
        # threads (Ray starts workers with OMP_NUM_THREADS=1), and the settings' digest would refuse the difference.
        self.schedule = schedule
        self.objective = objective if chroma is None else ChromaObjectives(objective, chroma)
        self.settings = zoom_job_settings(plan, self.zoom, self.schedule, chroma)

    def render(self) -> dict[str, Any]:
        """Dream every frame not yet finished, in order; return what was done."""
        from mmdream.pipelines.zoom import dream_zoom_range

        work = FrameStore(storage.join(self.plan.uris.work, "frames"), self.settings)
        before = len(work.finished())
        dream_zoom_range(self.zoom, work, self.schedule, self.backbone, self.objective, self.plan.picture.dream,
                         _zoom_of(self.plan).params)
        return {"frames": self.zoom.frames - before, "pid": os.getpid()}


def render_zoom_job(plan: RenderPlan, input_path: str, address: str | None, progress: ProgressFn | None,
                    watch: Watch | None = None) -> Path | str:
    """Render a ``zoom:`` job: the frames on one actor, the sound's segments (an ``audio`` section) on up to
    ``resources.actors - 1`` others; then the film with its sound, and a contact sheet as its preview."""
    spec, sound_spec = _zoom_of(plan), plan.sound
    with ExitStack() as files:
        zoom = _plan(plan, input_path, files)
        schedule, chroma = zoom_plan_schedules(zoom, spec.params, plan.av)  # bad options: now
        work = FrameStore(storage.join(plan.uris.work, "frames"), zoom_job_settings(plan, zoom, schedule, chroma))
        sound = None
        if sound_spec is not None:
            sound = plan_zoom_sound(zoom, sound_spec.params, get_spec(sound_spec.backbone.name).sample_rate,
                                    sound_spec.record, plan.uris.sound_work)
        todo = [] if sound is None else [i for i in range(len(sound.plan.segments)) if i not in sound.store.finished()]
        res = plan.resources
        n_sound = min(max(res.actors - 1, 1), len(todo)) if todo else 0
        options, threads = actor_options(plan), max(1, int(res.cpus_per_actor))
        with ray_session(address, int((1 + n_sound) * res.cpus_per_actor)) as own_ray:
            check_cluster(plan, address, probe=not own_ray)
            tasks = [Task("zoom-frames", "zoom", "render")] if len(work.finished()) < zoom.frames else []
            plan_ref = None if sound is None else ray.put(sound.plan)
            for i in todo:
                a, b = sound.plan.segments[i]  # type: ignore[union-attr]
                tasks.append(Task(f"sound-{i:05d}", "sound", "dream_sound",
                                  (i, plan_ref, ray.put(sound.x[a:b].numpy()), sound.store.settings)))  # type: ignore
            start = time.perf_counter()

            def tick(running: list[Task], done: set[str], note: str | None) -> None:
                if progress is not None:
                    progress(Progress("zoom", len(work.finished()), zoom.frames, None,
                                      round(time.perf_counter() - start, 3), None, note))

            run_tasks({"zoom": (partial(ZoomActor.options(**options).remote, plan, schedule, chroma, threads), 1),
                       "sound": (partial(DreamActor.options(**options).remote, plan, threads), n_sound)},
                      tasks, retries=res.retries, needs=actor_needs(plan), tick=tick, watch=watch)
            if watch is not None:
                watch("reduce", {})
        dreamed = None if sound is None else join_zoom_sound(sound, sound_spec.params)  # type: ignore[union-attr]
        out = write_zoom(zoom, work, plan.uris.output, dreamed, job_provenance(plan))
    if plan.uris.preview is not None:
        contact_sheet(plan.uris.output, plan.uris.preview)
    if not plan.uris.keep_work:  # the default work location goes once the output is written; a given one is kept
        storage.remove_tree(plan.uris.work)
    return out
