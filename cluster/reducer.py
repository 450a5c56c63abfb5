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
from mmdream.jobspec.build import job_provenance
from mmdream.jobspec.plan import RenderPlan
from mmdream.media import storage
from mmdream.media.film_preview import save_film_preview
from mmdream.media.spectrogram import save_spectrogram_preview, spectrogram_panel
from mmdream.pipelines.soundtrack import read_soundtrack
from mmdream.pipelines.store import FrameStore


def shard_work(plan: RenderPlan, shard: Shard, settings: dict[str, Any]) -> FrameStore:
    return FrameStore(storage.join(plan.uris.work, shard.name), settings)


def assembled_frames(plan: RenderPlan, film: FilmPlan, shards: list[Shard], settings: dict[str, Any]
                     ) -> Iterator[torch.Tensor]:
    """Output frames ``(3, H, W)`` in order; each frame is checked to exist in every shard that makes it."""
    works = {s.index: shard_work(plan, s, settings) for s in shards}
    finished = {k: w.finished() for k, w in works.items()}
    sources = frame_sources(shards)
    for t in range(film.start, film.stop):
        parts = sources[t]
        missing = [k for k, _ in parts if t not in finished[k]]
        if missing:
            raise MediaError(f"frame {t} is missing from shard(s) {missing}; rerun the job to finish them")
        yield sum((w * works[k].frame(t) for k, w in parts), start=torch.zeros(3, film.height, film.width))


def reduce_film(plan: RenderPlan, input_path: str, film: FilmPlan, shards: list[Shard], settings: dict[str, Any],
                audio: tuple[torch.Tensor, int] | None = None, drive: list[float] | None = None) -> Path | str:
    """Write the finished film to the job's output (local or s3://), complete or not at all, with ``audio`` (the
    dreamed soundtrack: samples ``(C, n)``, rate) or else the input's sound as the job says; then its preview."""
    picks = set(_sample_indices(film))
    thumbs: list[tuple[int, torch.Tensor]] = []

    def frames() -> Iterator[torch.Tensor]:
        for t, frame in enumerate(assembled_frames(plan, film, shards, settings), start=film.start):
            if t in picks:
                thumbs.append((t - film.start, frame))
            yield frame

    pcm = None if audio is None else (audio[0].numpy(), audio[1])
    out = write_film(input_path, film, frames(), plan.uris.output, plan.picture.film, pcm, job_provenance(plan))
    if plan.uris.preview is not None:
        _film_preview(plan.uris.preview, plan, input_path, film, shards, settings, thumbs, audio, drive)
    return out


def _sample_indices(film: FilmPlan, count: int = 8) -> list[int]:
    """The frames at the middles of ``count`` equal stretches of the film (the preview's strip)."""
    return sorted({film.start + int((i + 0.5) * film.count / count) for i in range(count)})


def _film_preview(path: str, plan: RenderPlan, input_path: str, film: FilmPlan, shards: list[Shard],
                  settings: dict[str, Any], thumbs: list[tuple[int, torch.Tensor]],
                  audio: tuple[torch.Tensor, int] | None, drive: list[float] | None) -> None:
    """Frames, the source's and the dreamed sound's spectrograms, and per-frame strength (or style loss) and drive
    in one PNG."""
    works = {s.index: shard_work(plan, s, settings) for s in shards}
    owner = {t: s.index for s in shards for t in range(s.start, s.stop)}
    records = [works[owner[t]].record(t) for t in range(film.start, film.stop)]
    if plan.picture.style is None:
        curves = {"strength (mean |dream - source|, 0-255)": [255 * r["strength"] for r in records]}
    else:
        curves = {"style loss": [r["style_loss"] for r in records]}
    if drive is not None:
        curves["drive (x strength)"] = drive[film.start:film.stop]
    panels = []
    if film.sound is not None and plan.picture.film.keep_audio:
        source, rate = read_soundtrack(film.sound, film.start / film.fps, film.count / film.fps)
        panels.append(spectrogram_panel("source sound", source, rate))
        if audio is not None:
            panels.append(spectrogram_panel("dreamed sound", *audio))
    save_film_preview(path, thumbs, panels, curves, fps=film.fps, frames=film.count)


def audio_preview(plan: RenderPlan, source: tuple[torch.Tensor, int], dreamed: tuple[torch.Tensor, int]) -> None:
    """An audio-only job's preview: the spectrograms before and after."""
    if plan.uris.preview is not None:
        save_spectrogram_preview(plan.uris.preview, [("source", *source), ("dreamed", *dreamed)])
