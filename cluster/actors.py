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
from mmdream.jobspec.plan import RenderPlan
from mmdream.media import storage
from mmdream.media.sequence import local_media_input

LOADS = 0  # backbones loaded by this process (an actor loads each of its job's backbones exactly once)


def actor_options(plan: RenderPlan) -> dict[str, Any]:
    """Ray options of the job's actors. Ray neither restarts them nor retries their tasks: the scheduler replaces
    a lost actor and re-queues its task itself (bounded, with a note)."""
    res = plan.resources
    return {"num_cpus": res.cpus_per_actor, "num_gpus": res.gpus_per_actor, "max_restarts": 0,
            "max_task_retries": 0}


def actor_needs(plan: RenderPlan) -> dict[str, float]:
    """One actor's resources, as Ray counts them."""
    return {"CPU": plan.resources.cpus_per_actor, "GPU": plan.resources.gpus_per_actor}


@ray.remote
class DreamActor(NodeActor):
    """Holds the job's loaded backbone(s) and objective(s): the picture's for a film, the sound's when the job
    dreams its audio. ``dream_shard`` dreams a frame range, ``dream_sound`` one sound segment, both checkpointed."""

    def setup(self, plan: RenderPlan, threads: int = 1) -> None:  # type: ignore[override]
        import torch

        from mmdream.backbones import load_backbone
        from mmdream.backbones.compute import place
        from mmdream.schedules.drive import ChromaObjectives
        from mmdream.pipelines.film import plan_film
        from mmdream.jobspec.build import (build_job_objective, build_job_sound_objective, film_job_settings,
                                           load_styles)

        global LOADS
        started = time.perf_counter()
        torch.set_num_threads(threads)
        self.plan = plan
        self.device = actor_device()
        self._files = ExitStack()  # the input, downloaded once per actor if it lives on S3
        self.input = str(self._files.enter_context(local_media_input(plan.uris.input)))
        picture = plan.picture
        if plan.kind == "film":
            self.film = plan_film(self.input, picture.film)
            self.backbone = load_backbone(picture.backbone.name, variant=picture.backbone.variant,
                                          weights_dir=plan.uris.weights)
            place(self.backbone, self.device.device, picture.compute)
            LOADS += 1
            size = max(self.film.width, self.film.height)
            objective = build_job_objective(picture.objective, self.backbone, size, plan.theme)
            # Per-frame schedules: computed once by the driver, left in the work location.
            schedules = {"drive": None, "chroma": None}
            if plan.av.drive != "none" or plan.av.channels_follow != "none":
                schedules = json.loads(storage.read_text(plan.uris.schedules))
            self.drive = schedules["drive"]
            self.objective = objective if schedules["chroma"] is None else ChromaObjectives(objective,
                                                                                            schedules["chroma"])
            self.settings = film_job_settings(plan, self.input, self.film, schedules)
            self.styles = None if picture.style is None else load_styles(picture.style)
        if plan.sound is not None:
            net = plan.sound.backbone
            self.sound_backbone = load_backbone(net.name, variant=net.variant, weights_dir=plan.uris.weights)
            place(self.sound_backbone, self.device.device)
            LOADS += 1
            self.sound_objective = build_job_sound_objective(plan.sound, plan.theme, self.sound_backbone)
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
            work = FrameStore(join(self.plan.uris.work, shard.name), self.settings)
        picture = self.plan.picture
        if picture.style is not None:
            style = picture.style
            with times.phase("dream"):
                style_range(self.input, self.film, work, shard.first, shard.stop, self.backbone, self.styles,
                            style.params, style.film, style_weights=style.weights)
        else:
            dream_range(self.input, self.film, work, shard.first, shard.stop, self.backbone, self.objective,
                        picture.dream, picture.video, drive=self.drive, times=times)
        return {"shard": shard.index, "frames": shard.stop - shard.first, "pid": os.getpid(), "times": times.seconds}

    def dream_sound(self, index: int, plan: Any, piece: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        """Dream sound segment ``index`` of a :class:`~mmdream.pipelines.audio.SegmentPlan` from its samples ``piece``
        (network rate), unless its checkpoint exists; return what was done."""
        import torch

        from mmdream.pipelines.audio import dream_segment
        from mmdream.pipelines.store import SegmentStore

        assert self.plan.sound is not None
        store = SegmentStore(self.plan.uris.sound_work, settings)
        if index not in store.finished():
            store.save(index, dream_segment(torch.from_numpy(np.array(piece)), plan, index, self.sound_backbone,
                                            self.sound_objective, self.plan.sound.params))
        return {"segment": index, "pid": os.getpid()}
