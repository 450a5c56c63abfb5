"""Ray actors: each loads and freezes its backbone once, then dreams shard after shard into the work location."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from typing import Any

import ray

from cluster.planner import Shard
from mmdream.media.storage import local_input

LOADS = 0  # backbones loaded by this process (an actor process loads exactly one per job)


@ray.remote
class DreamActor:
    """Holds one loaded backbone and objective; ``dream_shard`` dreams a frame range with checkpoints per frame."""

    def __init__(self, job_json: str, threads: int = 1) -> None:
        import torch

        from mmdream.backbones import load_backbone
        from mmdream.film import film_settings, plan_film
        from mmdream.jobspec import build_job_objective, objective_record, parse_job

        global LOADS
        torch.set_num_threads(threads)
        self.job = parse_job(json.loads(job_json))
        self._files = ExitStack()  # the input, downloaded once per actor if it lives on S3
        self.input = str(self._files.enter_context(local_input(self.job.input)))
        self.plan = plan_film(self.input, self.job.film_params())
        self.backbone = load_backbone(self.job.backbone.name, variant=self.job.backbone.variant,
                                      weights_dir=self.job.weights)
        LOADS += 1
        size = max(self.plan.width, self.plan.height)
        self.objective = build_job_objective(self.job.objective, self.backbone, size)
        self.settings = film_settings(self.input, self.plan, self.job.still_params(), self.job.video_params(),
                                      objective_record(self.job.objective, self.job.backbone, size))

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "loads": LOADS}

    def dream_shard(self, shard: Shard) -> dict[str, Any]:
        """Dream ``shard``'s frames ``[first, stop)``, resuming from its checkpoints; return what was done."""
        from mmdream.film import WorkDir, dream_range
        from mmdream.media.storage import join

        work = WorkDir(join(self.job.work_uri(), shard.name), self.settings)
        dream_range(self.input, self.plan, work, shard.first, shard.stop, self.backbone, self.objective,
                    self.job.still_params(), self.job.video_params())
        return {"shard": shard.index, "frames": shard.stop - shard.first, "pid": os.getpid()}
