"""Reducer: reassemble the shards' frames in order (dissolving across seams), encode, mux the (dreamed) sound,
and draw the job's preview."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from mmdream_cluster.planner import Shard, frame_sources
from mmdream.errors import MediaError
from mmdream.pipelines.film import FilmPlan, write_film
from mmdream.jobspec.schema import JobSpec, job_provenance
from mmdream.media import storage
from mmdream.media.film_preview import save_film_preview
from mmdream.media.spectrogram import save_spectrogram_preview, spectrogram_panel
from mmdream.pipelines.soundtrack import read_soundtrack
from mmdream.pipelines.store import FrameStore


def shard_work(job: JobSpec, shard: Shard, settings: dict[str, Any]) -> FrameStore:
    return FrameStore(storage.join(job.work_uri(), shard.name), settings)


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
                audio: tuple[torch.Tensor, int] | None = None, drive: list[float] | None = None) -> Path | str:
    """Write the finished film to ``job.output`` (local or s3://), complete or not at all, with ``audio`` (the
    dreamed soundtrack: samples ``(C, n)``, rate) or else the input's sound as the job says; then its preview."""
    picks = set(_sample_indices(plan))
    thumbs: list[tuple[int, torch.Tensor]] = []

    def frames() -> Iterator[torch.Tensor]:
        for t, frame in enumerate(assembled_frames(job, plan, shards, settings), start=plan.start):
            if t in picks:
                thumbs.append((t - plan.start, frame))
            yield frame

    pcm = None if audio is None else (audio[0].numpy(), audio[1])
    out = write_film(input_path, plan, frames(), job.output, job.film_params(), pcm, job_provenance(job))
    preview = job.preview_uri()
    if preview is not None:
        _film_preview(preview, job, input_path, plan, shards, settings, thumbs, audio, drive)
    return out


def _sample_indices(plan: FilmPlan, count: int = 8) -> list[int]:
    """The frames at the middles of ``count`` equal stretches of the film (the preview's strip)."""
    return sorted({plan.start + int((i + 0.5) * plan.count / count) for i in range(count)})


def _film_preview(path: str, job: JobSpec, input_path: str, plan: FilmPlan, shards: list[Shard],
                  settings: dict[str, Any], thumbs: list[tuple[int, torch.Tensor]],
                  audio: tuple[torch.Tensor, int] | None, drive: list[float] | None) -> None:
    """Frames, the source's and the dreamed sound's spectrograms, and per-frame strength (or style loss) and drive
    in one PNG."""
    works = {s.index: shard_work(job, s, settings) for s in shards}
    owner = {t: s.index for s in shards for t in range(s.start, s.stop)}
    records = [works[owner[t]].record(t) for t in range(plan.start, plan.stop)]
    if job.style is None:
        curves = {"strength (mean |dream - source|, 0-255)": [255 * r["strength"] for r in records]}
    else:
        curves = {"style loss": [r["style_loss"] for r in records]}
    if drive is not None:
        curves["drive (x strength)"] = drive[plan.start:plan.stop]
    panels = []
    if plan.sound is not None and job.film.keep_audio:
        source, rate = read_soundtrack(plan.sound, plan.start / plan.fps, plan.count / plan.fps)
        panels.append(spectrogram_panel("source sound", source, rate))
        if audio is not None:
            panels.append(spectrogram_panel("dreamed sound", *audio))
    save_film_preview(path, thumbs, panels, curves, fps=plan.fps, frames=plan.count)


def audio_preview(job: JobSpec, source: tuple[torch.Tensor, int], dreamed: tuple[torch.Tensor, int]) -> None:
    """An audio-only job's preview: the spectrograms before and after."""
    preview = job.preview_uri()
    if preview is not None:
        save_spectrogram_preview(preview, [("source", *source), ("dreamed", *dreamed)])
