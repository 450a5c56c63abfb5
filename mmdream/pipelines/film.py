"""Dream a film on one machine: decode, dream frame after frame with temporal coherence, encode, keep the sound.

Dreamed frames go to a work directory (:class:`mmdream.pipelines.store.FrameStore`) as lossless PNGs (written
atomically) beside a JSON record of each frame; the directory records the settings that made them and refuses
frames of other settings. Rerunning the same
command resumes after the last finished frame and gives the same film as an uninterrupted run, because the state
a frame passes on is exactly what its PNG holds (see :mod:`mmdream.dream.temporal`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmdream.backbones.base import Backbone
from mmdream.dream.image import DreamParams
from mmdream.dream.style import StyleParams, StyledFilmParams, style_frames
from mmdream.dream.temporal import FrameObjectives, TemporalState, VideoParams, dream_frames
from mmdream.errors import MediaError, ParameterError
from mmdream.media.files import check_output
from mmdream.media import storage
from mmdream.media.images import from_uint8, save_image, to_uint8
from mmdream.media.sequence import (BIT_DEPTHS, FrameSequence, is_pattern, is_sequence, open_sequence, output_pattern,
                                    read_sequence, write_frame)
from mmdream.media.video import (EncodeParams, VideoInfo, VideoWriter, check_video_suffix, even_size, probe,
                                 probe_audio, read_frames)
from mmdream.objectives.terms import Objective
from mmdream.options import Options, option, option_of
from mmdream.ops.flow import check_flow_size
from mmdream.ops.pyramid import resize
from mmdream.pipelines.store import FrameStore
from mmdream.progress import ProgressFn
from mmdream.timing import PhaseTimes


@dataclass(frozen=True)
class FilmParams(Options):
    """What to take from the input film and how to write the output."""

    size: int | None = option(None, "longer side of the dreamed frames (default: the input's size)", ge=16, le=8192,
                              unit="pixels")
    fps: float | None = option(None, "output frame rate (default: the input's; 25 for a frame sequence)", gt=0.0,
                               le=240.0, metavar="FPS")
    start: int = option(0, "first frame, at the output rate (--frames START:END)", ge=0)
    stop: int | None = option(None, "one past the last frame (default: to the end; --frames START:END)")
    keep_audio: bool = option(True, "keep the film's sound (the input's, or audio_file's)")
    crf: int = option_of(EncodeParams, "crf")
    chroma_blur: float = option_of(EncodeParams, "chroma_blur")
    audio_file: str | None = option(None, "the film's sound from this file (a frame sequence's, or replacing the "
                                          "input's)")
    bit_depth: int | None = option(None, "bits per channel of an output frame sequence's PNGs (default: the "
                                         "input's; 8 for a film)", choices=BIT_DEPTHS)

    def cross_checks(self) -> Iterable[tuple[bool, str, str]]:
        return [(self.stop is None or self.stop > self.start, "stop", "above start (--frames START:END)"),
                (self.keep_audio or self.audio_file is None, "audio_file", "left out when the sound is dropped")]


DEFAULT_SEQUENCE_FPS = 25.0  # the rate of a frame sequence's film when no fps is given


@dataclass(frozen=True)
class FilmPlan:
    """The frames a film job dreams: size ``(width, height)``, rate, and the range ``[start, stop)``; the input
    frame sequence (None: a film); the file holding the film's sound (None: silent)."""

    info: VideoInfo
    width: int
    height: int
    fps: float
    start: int
    stop: int
    sequence: FrameSequence | None = None
    sound: str | None = None

    @property
    def bit_depth(self) -> int:
        """Bits per channel the input's frames hold (8 for a film)."""
        return 8 if self.sequence is None else self.sequence.bit_depth

    @property
    def count(self) -> int:
        return self.stop - self.start


def plan_film(input_path: str | os.PathLike[str], film: FilmParams) -> FilmPlan:
    """Probe the input (a film, or a frame sequence: a folder or ``%05d`` pattern) and fix the frame size (even,
    for yuv420p), rate and range of a job, and where its sound comes from."""
    film.validate()
    sound = film.audio_file
    audio = None if sound is None else probe_audio(sound)
    sequence = open_sequence(input_path) if is_sequence(input_path) else None
    if sequence is not None:
        fps = film.fps or DEFAULT_SEQUENCE_FPS
        info = VideoInfo(width=sequence.width, height=sequence.height, fps=fps, frame_count=sequence.count,
                         duration_s=sequence.count / fps, rotation=0, codec="png", variable_fps=False, audio=audio)
    else:
        info = probe(input_path)
        if sound is None and info.audio is not None:
            sound = str(input_path)
        elif sound is not None:
            info = dataclasses.replace(info, audio=audio)
    w, h = info.width, info.height
    if film.size is not None:
        scale = film.size / max(w, h)
        w, h = max(2, round(w * scale)), max(2, round(h * scale))
    w, h = even_size(w, h)
    fps = film.fps or info.fps
    total = round(info.frame_count * fps / info.fps) if film.fps and sequence is None else info.frame_count
    stop = min(film.stop if film.stop is not None else total, total)
    if film.start >= stop:
        raise ParameterError(f"--frames {film.start}:{film.stop} selects no frame; the film has {total} frames "
                             f"at {fps:g} fps")
    return FilmPlan(info, w, h, fps, film.start, stop, sequence, sound)


def source_frames(input_path: str | os.PathLike[str], plan: FilmPlan, start: int, stop: int
                  ) -> Iterator[torch.Tensor]:
    """Source frames ``(3, H, W)`` in [0, 1] of indices ``[start, stop)``, decoded one at a time (a sequence's at
    its own precision: 16-bit frames are not rounded to 8 bits)."""
    if plan.sequence is not None:
        for arr in read_sequence(plan.sequence, size=(plan.width, plan.height), start=start, stop=stop):
            yield torch.from_numpy(arr).permute(2, 0, 1).contiguous()
        return
    for arr in read_frames(input_path, size=(plan.width, plan.height), start=start, stop=stop, fps=plan.fps):
        yield from_uint8(arr)[0]


def fingerprint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Identity of an input file: size and the sha256 of its first and last MiB (cheap, content-based); of a frame
    sequence: its numbering and its first and last frames' identities."""
    if is_sequence(path):
        seq = open_sequence(path)
        return {"frames": seq.count, "first_number": seq.start, "first": fingerprint(seq.path(0)),
                "last": fingerprint(seq.path(seq.count - 1))}
    p = Path(path)
    size = p.stat().st_size
    digest = hashlib.sha256()
    with open(p, "rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read(1 << 20))
    return {"bytes": size, "sha256_ends": digest.hexdigest()}


def default_work_dir(output: str | os.PathLike[str]) -> Path:
    out = Path(output)
    if is_sequence_output(out):  # frames/%05d.png or frames/: a hidden folder beside the frames' folder
        out = out.parent if is_pattern(out) else out
    return out.parent / f".{out.name}.work"


def is_sequence_output(output: str | os.PathLike[str]) -> bool:
    """Whether ``output`` names a frame sequence (a ``%05d`` pattern, a folder, or a name ending in ``/``) rather
    than a film."""
    return is_pattern(output) or str(output).endswith(("/", os.sep)) or Path(output).is_dir()


def check_film_output(output: str | os.PathLike[str], input_path: str | os.PathLike[str]) -> Path:
    """A film output (.mp4, .mkv, .mov; never the input) or a frame sequence output (its folder must exist)."""
    if is_sequence_output(output):
        pattern = Path(output_pattern(output, None))
        if is_sequence(input_path) and pattern.parent.resolve() == Path(open_sequence(
                input_path).pattern).parent.resolve():
            raise MediaError(f"output {output} writes into the input's folder; choose another folder (inputs are "
                             "never overwritten)")
        return Path(output)
    return check_video_suffix(check_output(output, input_path))


def film_settings(input_path: str | os.PathLike[str], plan: FilmPlan, still: DreamParams, params: VideoParams,
                  objective_spec: dict[str, Any], drive: Sequence[float] | None = None) -> dict[str, Any]:
    """What makes a film's frames what they are; a work directory refuses frames of other settings."""
    settings = {"input": fingerprint(input_path), "width": plan.width, "height": plan.height, "fps": plan.fps,
                "still": dataclasses.asdict(still), "video": dataclasses.asdict(params), "objective": objective_spec}
    if plan.bit_depth == 16:  # frames kept at 16 bits (8-bit work directories stay as they were)
        settings["bit_depth"] = 16
    if drive is not None:
        settings["drive_sha256"] = hashlib.sha256(np.asarray(drive, dtype=np.float64).tobytes()).hexdigest()
    return settings


def dream_range(
    input_path: str | os.PathLike[str],
    plan: FilmPlan,
    work: FrameStore,
    first: int,
    stop: int,
    backbone: Backbone,
    objective: Objective | FrameObjectives,
    still: DreamParams,
    params: VideoParams,
    *,
    drive: Sequence[float] | None = None,
    total: int | None = None,
    done: int = 0,
    progress: ProgressFn | None = None,
    times: PhaseTimes | None = None,
) -> None:
    """Dream frames ``[first, stop)`` into ``work`` (frame ``first`` begins a shot), resuming after the last
    finished frame. ``drive``: per-frame strength multipliers by frame index (:mod:`mmdream.schedules.drive`). Progress counts
    frames of ``total`` (default: the range), ``done`` of them finished before. Dreams are rounded to the levels
    the work directory stores (8 or 16 bits). ``times``: add the seconds spent decoding source frames (``decode``),
    dreaming (``dream``) and encoding and storing results (``encode``)."""
    resume = work.resume_point(first, stop)
    if resume >= stop:
        return
    times = PhaseTimes() if times is None else times
    start, others = time.perf_counter(), times.total("decode", "encode")
    device = backbone.device  # frames are dreamed where the network lives
    state = None
    if resume > first:
        with times.phase("decode"):
            prev_source = next(source_frames(input_path, plan, resume - 1, resume)).to(device)
            record = work.record(resume - 1)
            state = TemporalState(resume - 1, prev_source, work.frame(resume - 1).to(device),
                                  record["target_strength"], record["drive"])
    frames = times.iterate((f.to(device) for f in source_frames(input_path, plan, resume, stop)), "decode")
    for dream, info in dream_frames(frames, backbone, objective, still, params, start=resume, state=state,
                                    drive=drive, total=total or stop - first, done=done + resume - first,
                                    levels=work.levels, progress=progress):
        with times.phase("encode"):
            work.save(info.index, dream[None], info)
    times.add("dream", time.perf_counter() - start - (times.total("decode", "encode") - others))


def write_film(input_path: str | os.PathLike[str], plan: FilmPlan, frames: Iterator[torch.Tensor],
               output: str | os.PathLike[str], film: FilmParams,
               audio: tuple[np.ndarray, int] | None = None, provenance: str | None = None) -> Path | str:
    """Encode frames ``(3, H, W)`` as the film ``output`` (a path or ``s3://`` URI; it appears only when
    complete), with ``audio`` (samples ``(C, n)``, rate, from the film's first frame on: a dreamed soundtrack,
    encoded as AAC) or else the plan's sound if kept. ``provenance``: the record text it carries.

    An ``output`` that names a frame sequence (:func:`is_sequence_output`) gets PNGs of ``film.bit_depth`` bits
    (default: the input's) numbered like the input sequence (a film's frames: by frame index), each carrying the
    record; no sound."""
    if is_sequence_output(output):
        pattern = output_pattern(output, plan.sequence)
        first = plan.start + (0 if plan.sequence is None else plan.sequence.start)
        depth = film.bit_depth or plan.bit_depth
        for number, frame in enumerate(frames, start=first):
            write_frame(pattern, number, frame.permute(1, 2, 0).cpu().numpy(), depth, provenance)
        return Path(pattern)
    kept = plan.sound if audio is None and film.keep_audio else None
    with storage.local_output(output) as target, VideoWriter(target, fps=plan.fps, crf=film.crf, audio_from=kept,
                                                             audio_start_s=0.0 if audio else plan.start / plan.fps,
                                                             audio=audio, provenance=provenance,
                                                             chroma_blur=film.chroma_blur) as writer:
        for frame in frames:
            writer.write(to_uint8(frame))
    return output if storage.is_s3(output) else Path(output)


def dream_film(
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    backbone: Backbone,
    objective: Objective | FrameObjectives,
    still: DreamParams = DreamParams(),
    params: VideoParams = VideoParams(),
    film: FilmParams = FilmParams(),
    *,
    work_dir: str | os.PathLike[str] | None = None,
    objective_spec: dict[str, Any] | None = None,
    drive: Sequence[float] | None = None,
    preview: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
    provenance: str | None = None,
) -> tuple[Path, list[dict[str, Any]]]:
    """Dream ``input_path`` into ``output`` (.mp4/.mkv/.mov) in one process, resuming from the work directory.

    ``objective_spec``: a JSON-able description of the objective (backbone, layers, ...) recorded in the work
    directory so that frames of another objective are refused. ``drive``: per-frame strength multipliers by frame
    index (:func:`mmdream.schedules.drive.film_drive`). The default work directory is removed once the film is written; a
    given one is kept. ``preview``: also write a contact sheet of sample frames there. ``provenance``: the record
    text the film carries. Returns the output path and the per-frame records.
    """
    out = check_film_output(output, input_path)
    plan = plan_film(input_path, film)
    check_flow_size(plan.width, plan.height, params.flow)  # before anything is written
    spec = objective_spec or {"layers": list(objective.layers), "backbone": backbone.name}
    work = FrameStore(work_dir or default_work_dir(out), film_settings(input_path, plan, still, params, spec, drive))
    dream_range(input_path, plan, work, plan.start, plan.stop, backbone, objective, still, params, drive=drive,
                progress=progress)
    records = [work.record(i) for i in range(plan.start, plan.stop)]
    _finish(input_path, plan, work, out, film, provenance, preview, keep_work=work_dir is not None)
    return out, records


def style_settings(input_path: str | os.PathLike[str], plan: FilmPlan, backbone_name: str,
                   styles: Sequence[torch.Tensor], params: StyleParams, style_weights: Sequence[float] | None,
                   video: StyledFilmParams) -> dict[str, Any]:
    """What makes a styled film's frames what they are; a work directory refuses frames of other settings."""
    return {"input": fingerprint(input_path), "width": plan.width, "height": plan.height, "fps": plan.fps,
            "style": dataclasses.asdict(params), "backbone": backbone_name, **dataclasses.asdict(video),
            "style_weights": list(style_weights or []),
            "styles": [hashlib.sha256(s.numpy().tobytes()).hexdigest() for s in styles]}


def style_range(input_path: str | os.PathLike[str], plan: FilmPlan, work: FrameStore, first: int, stop: int,
                backbone: Backbone, styles: Sequence[torch.Tensor], params: StyleParams,
                video: StyledFilmParams = StyledFilmParams(), *, style_weights: Sequence[float] | None = None,
                progress: ProgressFn | None = None) -> None:
    """Style frames ``[first, stop)`` into ``work`` (frame ``first`` begins a shot), resuming after the last
    finished frame (:func:`mmdream.dream.style.style_frames`)."""
    resume = work.resume_point(first, stop)
    if resume >= stop:
        return
    device = backbone.device  # frames and styles go where the network lives
    state = None
    if resume > first:
        state = (next(source_frames(input_path, plan, resume - 1, resume)).to(device),
                 work.frame(resume - 1).to(device))
    frames = (f.to(device) for f in source_frames(input_path, plan, resume, stop))
    styles = [s.to(device) for s in styles]
    for styled, info in style_frames(frames, styles, backbone, params, video, style_weights=style_weights,
                                     start=resume, state=state, total=stop - first, progress=progress):
        work.save(info.index, styled[None], info)


def style_film(
    input_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    backbone: Backbone,
    styles: Sequence[torch.Tensor],
    params: StyleParams,
    film: FilmParams = FilmParams(),
    video: StyledFilmParams = StyledFilmParams(),
    *,
    style_weights: Sequence[float] | None = None,
    work_dir: str | os.PathLike[str] | None = None,
    preview: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
    provenance: str | None = None,
) -> Path:
    """Style ``input_path`` into ``output`` frame by frame into a work directory (resumable exactly like
    :func:`dream_film`), keeping the sound; ``provenance``: the record text the film carries."""
    out = check_film_output(output, input_path)
    plan = plan_film(input_path, film)
    settings = style_settings(input_path, plan, backbone.name, styles, params, style_weights, video)
    work = FrameStore(work_dir or default_work_dir(out), settings)
    style_range(input_path, plan, work, plan.start, plan.stop, backbone, styles, params, video,
                style_weights=style_weights, progress=progress)
    _finish(input_path, plan, work, out, film, provenance, preview, keep_work=work_dir is not None)
    return out


def _sample_indices(plan: FilmPlan, count: int = 6) -> list[int]:
    return sorted({plan.start + round(k * (plan.count - 1) / max(count - 1, 1)) for k in range(count)})


def _finish(input_path: str | os.PathLike[str], plan: FilmPlan, work: FrameStore, out: str | os.PathLike[str],
            film: FilmParams, provenance: str | None, preview: str | os.PathLike[str] | None, *, keep_work: bool
            ) -> None:
    """Encode the finished frames of ``work`` into ``out`` (with the sound), draw the preview, and remove the work
    location unless it was given."""
    write_film(input_path, plan, (work.frame(i) for i in range(plan.start, plan.stop)), out, film,
               provenance=provenance)
    if preview is not None:
        _preview(input_path, plan, [work.frame(i) for i in _sample_indices(plan)], preview)
    if not keep_work:
        storage.remove_tree(work.uri)


def _preview(input_path: str | os.PathLike[str], plan: FilmPlan, dreams: list[torch.Tensor],
             path: str | os.PathLike[str], row_height: int = 180) -> Path:
    """Contact sheet of the frames at :func:`_sample_indices`: sources (top row) above ``dreams`` (bottom row)."""
    indices = _sample_indices(plan)
    sources = [s for i, s in enumerate(source_frames(input_path, plan, plan.start, plan.stop), plan.start)
               if i in indices]
    row_height = min(row_height, plan.height)
    size = (row_height, max(1, round(plan.width * row_height / plan.height)))
    rows = [torch.cat([resize(f[None], size)[0] for f in row], dim=-1) for row in (sources, dreams)]
    return save_image(torch.cat(rows, dim=-2)[None], path)
