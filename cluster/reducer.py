"""Reducer: reassemble the shards' frames in order (dissolving across seams), encode, mux the (dreamed) sound."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cluster.planner import Shard, frame_sources
from mmdream.film import FilmPlan, WorkDir, write_film
from mmdream.jobspec import JobSpec
from mmdream.errors import MediaError
from mmdream.media import storage


def shard_work(job: JobSpec, shard: Shard, settings: dict[str, Any]) -> WorkDir:
    return WorkDir(storage.join(job.work_uri(), shard.name), settings)


def assembled_frames(job: JobSpec, plan: FilmPlan, shards: list[Shard], settings: dict[str, Any]
                     ) -> Iterator[torch.Tensor]:
    """Output frames ``(3, H, W)`` in order; each frame is checked to exist in every shard that makes it."""
    works = {s.index: shard_work(job, s, settings) for s in shards}
    finished = {k: w.finished() for k, w in works.items()}
    sources = frame_sources(shards)
    for t in range(plan.start, plan.stop):
        parts = sources[t]
        missing = [k for k, _ in parts if t not in finished[k]]
        if missing:
            raise MediaError(f"frame {t} is missing from shard(s) {missing}; rerun the job to finish them")
        yield sum((w * works[k].frame(t) for k, w in parts), start=torch.zeros(3, plan.height, plan.width))


def reduce_film(job: JobSpec, input_path: str, plan: FilmPlan, shards: list[Shard], settings: dict[str, Any],
                audio: tuple[np.ndarray, int] | None = None) -> Path | str:
    """Write the finished film to ``job.output`` (local or s3://), complete or not at all, with ``audio`` (the
    dreamed soundtrack: samples ``(C, n)``, rate) or else the input's sound as the job says."""
    return write_film(input_path, plan, assembled_frames(job, plan, shards, settings), job.output,
                      job.film_params(), audio)
