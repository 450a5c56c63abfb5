"""Ray actors: each loads and freezes its backbone(s) once, then dreams task after task into the work location:
frame shards (the picture) and sound segments (the soundtrack)."""

from __future__ import annotations

import json
import os
import time
from contextlib import ExitStack
from typing import Any

import numpy as np
import ray

from mmdream_cluster.devices import actor_device
from mmdream_cluster.nodes import NodeActor
from mmdream_cluster.planner import Shard
from mmdream.jobspec.schema import JobSpec
from mmdream.media import storage
from mmdream.media.sequence import local_media_input

LOADS = 0  # backbones loaded by this process (an actor loads each of its job's backbones exactly once)


def actor_options(job: JobSpec) -> dict[str, Any]:
    """Ray options of the job's actors. Ray neither restarts them nor retries their tasks: the scheduler replaces
    a lost actor and re-queues its task itself (bounded, with a note)."""
    res = job.resources
    return {"num_cpus": res.cpus_per_actor, "num_gpus": res.gpus_per_actor, "max_restarts": 0,
            "max_task_retries": 0}


def actor_needs(job: JobSpec) -> dict[str, float]:
    """One actor's resources, as Ray counts them."""
    return {"CPU": job.resources.cpus_per_actor, "GPU": job.resources.gpus_per_actor}


@ray.remote
class DreamActor(NodeActor):
    """Holds the job's loaded backbone(s) and objective(s): the picture's for a film, the sound's when the job
    dreams its audio. ``dream_shard`` dreams a frame range, ``dream_sound`` one sound segment, both checkpointed."""

    def setup(self, job_json: str, threads: int = 1) -> None:  # type: ignore[override]
        import torch

        from mmdream.backbones import load_backbone
        from mmdream.backbones.compute import place
        from mmdream.schedules.drive import ChromaObjectives
        from mmdream.pipelines.film import plan_film
        from mmdream.jobspec.schema import (build_job_objective, build_job_sound_objective, film_job_settings, load_styles,
                                     parse_job)

        global LOADS
        started = time.perf_counter()
        torch.set_num_threads(threads)
        self.job = parse_job(json.loads(job_json))
        self.device = actor_device()
        self._files = ExitStack()  # the input, downloaded once per actor if it lives on S3
        self.input = str(self._files.enter_context(local_media_input(self.job.input)))
        if self.job.kind == "film":
            self.plan = plan_film(self.input, self.job.film_params())
            self.backbone = load_backbone(self.job.backbone.name, variant=self.job.backbone.variant,
                                          weights_dir=self.job.weights)
            place(self.backbone, self.device.device, self.job.compute_params())
            LOADS += 1
            size = max(self.plan.width, self.plan.height)
            objective = build_job_objective(self.job.objective, self.backbone, size, self.job.theme_value())
            # Per-frame schedules: computed once by the driver, left in the work location.
            av = self.job.av
            schedules = {"drive": None, "chroma": None}
            if av.drive != "none" or av.channels_follow != "none":
                schedules = json.loads(storage.read_text(self.job.schedule_uri()))
            self.drive = schedules["drive"]
            self.objective = objective if schedules["chroma"] is None else ChromaObjectives(objective,
                                                                                            schedules["chroma"])
            self.settings = film_job_settings(self.job, self.input, self.plan, schedules)
            self.styles = None if self.job.style is None else load_styles(self.job)
        spec = self.job.sound_spec()
        if spec is not None:
            self.sound_backbone = load_backbone(spec.backbone.name, variant=spec.backbone.variant,
                                                weights_dir=self.job.weights)
            place(self.sound_backbone, self.device.device)
            LOADS += 1
            self.sound_objective = build_job_sound_objective(self.job, self.sound_backbone)
        self.load_s = time.perf_counter() - started

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "loads": LOADS, "device": self.device.device, "device_note": self.device.note,
                "load_s": self.load_s, "node": ray.get_runtime_context().get_node_id()}

    def dream_shard(self, shard: Shard) -> dict[str, Any]:
        """Dream ``shard``'s frames ``[first, stop)``, resuming from its checkpoints; return what was done and the
        seconds it spent per phase (``times``: decode, dream, encode; a styled film's all under dream)."""
        from mmdream.pipelines.film import dream_range, style_range
        from mmdream.pipelines.store import FrameStore
        from mmdream.media.storage import join
        from mmdream.timing import PhaseTimes

        times = PhaseTimes()
        with times.phase("encode"):  # storage: the checkpoint folder's settings are read or written
            work = FrameStore(join(self.job.work_uri(), shard.name), self.settings)
        if self.job.style is not None:
            spec = self.job.style
            with times.phase("dream"):
                style_range(self.input, self.plan, work, shard.first, shard.stop, self.backbone, self.styles,
                            spec.style_params(), spec.film_params(), style_weights=spec.weights)
        else:
            dream_range(self.input, self.plan, work, shard.first, shard.stop, self.backbone, self.objective,
                        self.job.still_params(), self.job.video_params(), drive=self.drive, times=times)
        return {"shard": shard.index, "frames": shard.stop - shard.first, "pid": os.getpid(), "times": times.seconds}

    def dream_sound(self, index: int, plan: Any, piece: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        """Dream sound segment ``index`` of a :class:`~mmdream.pipelines.audio.SegmentPlan` from its samples ``piece``
        (network rate), unless its checkpoint exists; return what was done."""
        import torch

        from mmdream.pipelines.audio import dream_segment
        from mmdream.pipelines.store import SegmentStore

        store = SegmentStore(self.job.sound_work_uri(), settings)
        if index not in store.finished():
            store.save(index, dream_segment(torch.from_numpy(np.array(piece)), plan, index, self.sound_backbone,
                                            self.sound_objective, self.job.audio_params()))
        return {"segment": index, "pid": os.getpid()}
