"""Drafts: a quick look before a long render. The same settings on every Nth frame at a reduced size, written as a
short film and a contact sheet beside the output, with checkpoints of their own.

A draft of ``out.mp4`` is ``out.draft.mp4`` (every ``draft_every``-th frame: the film's rate divided by N, so it
plays in the same time) and ``out.draft.png`` (a grid of its frames); its frames are checkpointed in their own work
location (``.out.draft.mp4.work`` beside it, or ``WORK/draft`` under a given ``--work-dir``), never in the full
render's, whose settings (size, rate) differ anyway and would refuse them.

>>> paths = draft_paths("film/out.mp4")        # DraftPaths(film='film/out.draft.mp4', sheet='film/out.draft.png')
>>> contact_sheet(paths.film, paths.sheet)
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from mmdream.errors import ParameterError
from mmdream.pipelines.film import FilmParams, plan_film
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import JobSpec, parse_job
from mmdream.media import storage
from mmdream.media.images import from_uint8, save_image
from mmdream.ops.grid import image_grid
from mmdream.media.video import read_frames, probe
from mmdream.ops.pyramid import resize
from mmdream.options import Options, option
from mmdream.pipelines.zoom import plan_zoom

__all__ = ["DraftParams", "DraftPaths", "draft_paths", "draft_size", "draft_film", "draft_job", "contact_sheet"]


@dataclass(frozen=True)
class DraftParams(Options):
    """How much lighter a draft is than the full render."""

    draft_every: int = option(4, "with --draft: dream every Nth frame", ge=1, le=1000)
    draft_scale: float = option(0.5, "with --draft: frame size relative to the full render's", ge=0.05, le=1.0)

    def size(self, full: int) -> int:
        """The draft's longer side for a full render's ``full`` pixels (at least 32)."""
        return draft_size(full, self.draft_scale)

    def fps(self, full: float) -> float:
        """The draft's frame rate for the full render's ``full``."""
        return full / self.draft_every


def draft_size(full: int, scale: float) -> int:
    return max(32, round(full * scale))


@dataclass(frozen=True)
class DraftPaths:
    """Where a draft goes: its film, its contact sheet and its work location (all apart from the full render's)."""

    film: str
    sheet: str
    work: str


def draft_paths(output: str, work_dir: str | None = None) -> DraftPaths:
    """The draft's film, contact sheet and work location for the full render's ``output`` (path or ``s3://``) and
    ``work_dir`` (None: a hidden folder beside the draft film)."""
    head, slash, name = str(output).rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    stem, suffix = (stem, suffix) if dot else (name, "mp4")
    film = f"{head}{slash}{stem}.draft.{suffix}"
    work = storage.join(work_dir, "draft") if work_dir else f"{head}{slash}.{stem}.draft.{suffix}.work"
    return DraftPaths(film, f"{head}{slash}{stem}.draft.png", work)


def draft_film(input_path: str | os.PathLike[str], film: FilmParams, draft: DraftParams) -> FilmParams:
    """The film options of a draft of ``film``: every Nth frame of the same range (the rate divided by N), the
    frame size scaled."""
    plan = plan_film(input_path, film)
    n = draft.draft_every
    stop = None if film.stop is None else max(-(-film.stop // n), film.start // n + 1)
    return FilmParams(size=draft.size(max(plan.width, plan.height)), fps=draft.fps(plan.fps), start=film.start // n,
                      stop=stop, keep_audio=film.keep_audio, crf=film.crf, audio_file=film.audio_file).validate()


def draft_job(job: JobSpec, input_path: str | os.PathLike[str], draft: DraftParams, paths: DraftPaths) -> JobSpec:
    """The job that renders a draft of ``job`` (its input at ``input_path``, local): every Nth frame at the
    reduced size, into the draft's film and work location, no preview (the draft has its contact sheet). Its sound
    is carried as it is unless the job's sound dream cannot be separated from its picture (a theme, or the picture
    driving the sound)."""
    plan = compile_plan(job)
    data = job.model_dump(by_alias=True)
    data.update(output=paths.film, work=paths.work, preview=False)
    if plan.kind == "audio":
        raise ParameterError("--draft previews a film's picture; this job renders a sound only")
    if plan.theme is None and plan.av.sound_follows == "none":
        data["audio"] = None
    if plan.walk is not None:
        data["walk"].update(fps=max(1.0, draft.fps(plan.walk.film.fps)), size=draft.size(plan.walk.film.size))
    elif plan.zoom is not None:
        zoom = plan_zoom(input_path, plan.zoom.film, plan.zoom.size)
        data["zoom"]["size"] = draft.size(max(zoom.width, zoom.height))
        data["zoom"]["film"].update(fps=draft.fps(plan.zoom.film.fps))
    else:
        data["film"] = dataclasses.asdict(draft_film(input_path, plan.picture.film, draft))
    return parse_job(data)


def contact_sheet(film: str | os.PathLike[str], sheet: str | os.PathLike[str], max_frames: int = 24,
                  height: int = 120) -> Path | str:
    """A grid PNG of up to ``max_frames`` frames of ``film`` taken evenly, each ``height`` pixels high (a small
    draft's frames enlarged), written atomically (local or ``s3://``)."""

    with storage.local_input(film) as path:
        info = probe(path)
        count = info.frame_count
        picks = sorted({round(k * (count - 1) / max(min(max_frames, count) - 1, 1))
                        for k in range(min(max_frames, count))})
        h = height
        size = (h, max(1, round(info.width * h / info.height)))
        frames = [resize(from_uint8(arr), size)[0] for i, arr in enumerate(read_frames(path)) if i in picks]
    grid = image_grid(torch.stack(frames), columns=min(6, math.ceil(math.sqrt(len(frames)) * 1.5)))
    with storage.local_output(str(sheet)) as tmp:
        save_image(grid, tmp)
    return sheet
