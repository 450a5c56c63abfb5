"""Zoom films: from a still (or a film's last frame), frame after frame dreamed from the previous one moved by a
small zoom / rotation / shift (:mod:`mmdream.dream.zoom`), written as an H.264 film, with a sound that drives it.

Frames go to a work directory (:class:`mmdream.pipelines.store.FrameStore`: lossless PNGs and a JSON record each,
bound to the settings that made them), so a killed render resumes after its last finished frame and gives the same film: frame
t depends only on frame t-1's PNG, the first frame's PNG (the colour anchor's reference) and the schedule.

With a sound (``audio``, or a film input's soundtrack) its features drive the zoom (:mod:`mmdream.schedules.drive`): the drive
curve (mean 1) multiplies each frame's motion and dream strength, ``channels_follow=chroma`` lets the chroma pick
the channel groups each frame dreams, and the film carries the sound, dreamed or not (:class:`SoundDream`: the
soundtrack's segments are dreamed and checkpointed as for films, :mod:`mmdream.pipelines.soundtrack`).

>>> plan = plan_zoom("still.png", ZoomFilmParams(seconds=20), size=256, audio="music.wav")
>>> render_zoom(plan, "zoom.mp4", backbone, objective, DreamParams(), ZoomParams(), AVParams(drive="rms"))
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmdream.schedules.drive import AVParams, ChromaObjectives, chroma_schedule, drive_schedule
from mmdream.backbones.base import Backbone
from mmdream.dream.audio import AudioDreamParams
from mmdream.dream.image import DreamParams
from mmdream.dream.temporal import FrameObjectives
from mmdream.dream.zoom import ZoomParams, ZoomSchedule, channel_stats, dream_start, dream_zoom_frame, zoom_schedule
from mmdream.errors import MediaError, ParameterError
from mmdream.pipelines.audio import SegmentPlan, dream_segment
from mmdream.pipelines.film import FilmParams, default_work_dir, fingerprint
from mmdream.media import storage
from mmdream.media.images import load_image, to_uint8
from mmdream.media.video import EncodeParams, VideoWriter, even_size, probe, read_frames
from mmdream.objectives.terms import Objective
from mmdream.options import Options, check_value, option, option_of
from mmdream.pipelines.store import FrameStore, SegmentStore
from mmdream.progress import ProgressFn, Tracker
from mmdream.pipelines.soundtrack import join_soundtrack, plan_soundtrack, read_soundtrack, soundtrack_settings

__all__ = ["ZoomFilmParams", "ZoomPlan", "ZoomFrame", "SoundDream", "IMAGE_SUFFIXES", "plan_zoom", "check_sound",
           "zoom_plan_schedules", "zoom_settings", "dream_zoom_range", "ZoomSound", "plan_zoom_sound", "join_zoom_sound",
           "dream_zoom_sound", "write_zoom", "render_zoom"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")
SILENT_SECONDS = 10.0  # a zoom without a sound and without --seconds lasts this long


@dataclass(frozen=True)
class ZoomFilmParams(Options):
    """The zoom film's length, rate and encoding."""

    seconds: float = option(0.0, f"length in seconds (0: the sound's length, or {SILENT_SECONDS:g} s without a "
                                 "sound)", ge=0.0, le=36_000.0)
    fps: float = option(25.0, "frame rate", ge=1.0, le=120.0)
    crf: int = option_of(EncodeParams, "crf")


@dataclass(frozen=True)
class ZoomPlan:
    """What a zoom render starts from: the input, its start frame ``(3, H, W)`` (even size), the frame count and
    rate, and the sound that drives and accompanies it (samples ``(C, n)`` float32 from the film's start, rate,
    and the file it comes from), if any."""

    input: str
    start: torch.Tensor
    frames: int
    fps: float
    crf: int
    sound: tuple[np.ndarray, int] | None = None
    sound_path: str | None = None

    @property
    def width(self) -> int:
        return int(self.start.shape[-1])

    @property
    def height(self) -> int:
        return int(self.start.shape[-2])


@dataclass(frozen=True)
class ZoomFrame:
    """A finished frame's record: its motion from the previous frame, its drive and the dream's detail (mean
    |dreamed - moved|, the realised strength; 0 for the first frame, which is a still)."""

    index: int
    scale: float
    angle: float
    shift_x: float
    shift_y: float
    drive: float
    detail: float


@dataclass(frozen=True)
class SoundDream:
    """Dream the sound too: an audio backbone (YAMNet), its objective, the options, and a JSON-able record of the
    objective (checkpoints of other objectives are refused)."""

    backbone: Backbone
    objective: Objective
    params: AudioDreamParams
    record: dict[str, Any]


def _is_image(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def _start_frame(input_path: str, size: int | None) -> torch.Tensor:
    """The still ``(3, H, W)`` (or a film's last frame) at ``size`` (longer side), cut to an even size."""
    if _is_image(input_path):
        image = load_image(input_path, size)[0]
    else:
        info = probe(input_path)
        w, h = info.width, info.height
        if size is not None:
            scale = size / max(w, h)
            w, h = max(2, round(w * scale)), max(2, round(h * scale))
        last = None
        for last in read_frames(input_path, size=(w, h), start=max(0, info.frame_count - 1)):
            pass
        if last is None:
            raise MediaError(f"{input_path} holds no frame to start the zoom from")
        image = torch.from_numpy(last).permute(2, 0, 1).float().div(255.0)
    w, h = even_size(image.shape[-1], image.shape[-2])
    if w < 16 or h < 16:
        raise ParameterError(f"the start frame is {image.shape[-1]}x{image.shape[-2]} pixels; a zoom needs at least "
                             "16x16 (raise --size)")
    return image[:, :h, :w].contiguous()


def plan_zoom(input_path: str | os.PathLike[str], film: ZoomFilmParams, size: int | None = None,
              audio: str | os.PathLike[str] | None = None) -> ZoomPlan:
    """Read the start frame and the sound (``audio``, else a film input's soundtrack, else none) and fix the frame
    count: ``film.seconds``, or the sound's length, or :data:`SILENT_SECONDS`."""
    film.validate()
    check_value(FilmParams, "size", size)
    source = str(input_path)
    start = _start_frame(source, size)
    sound_path = str(audio) if audio is not None else None
    if sound_path is None and not _is_image(source) and probe(source).audio is not None:
        sound_path = source
    sound = None
    seconds = film.seconds
    if sound_path is not None:
        samples, rate = read_soundtrack(sound_path, 0.0, seconds or None)
        if samples.shape[-1] < rate // 10:
            raise MediaError(f"the sound of {sound_path} lasts under 0.1 s; give a longer sound or no --audio")
        sound = (samples.numpy(), rate)
        seconds = seconds or samples.shape[-1] / rate
    frames = max(2, round((seconds or SILENT_SECONDS) * film.fps))
    return ZoomPlan(source, start, frames, film.fps, film.crf, sound, sound_path)


def check_sound(plan: ZoomPlan, av: AVParams, dream: bool = False) -> None:
    """Refuse sound options without a sound (``dream``: the sound is to be dreamed), before any work."""
    av.validate()
    if plan.sound is None and (av.drive != "none" or av.channels_follow != "none"):
        raise ParameterError(f"--drive {av.drive} / --channels-follow {av.channels_follow} need a sound: give "
                             "--audio FILE (or a film with a soundtrack as the input)")
    if plan.sound is None and dream:
        raise ParameterError("--dream-audio needs a sound: give --audio FILE (or a film with a soundtrack)")
    if av.sound_follows != "none":
        raise ParameterError("sound_follows makes the picture drive the sound; a zoom's sound drives the picture "
                             "(set it to none)")


def zoom_plan_schedules(plan: ZoomPlan, params: ZoomParams, av: AVParams
                        ) -> tuple[ZoomSchedule, list[list[float]] | None]:
    """The per-frame schedule (the sound's drive multiplies motion and strength) and the chroma weights ``[[12]]``
    by frame (None unless ``av.channels_follow`` is chroma)."""
    check_sound(plan, av)
    drive = None if av.drive == "none" else drive_schedule(*plan.sound, plan.fps, plan.frames, av)  # type: ignore[misc]
    chroma = None
    if av.channels_follow == "chroma":
        chroma = np.round(chroma_schedule(*plan.sound, plan.fps, plan.frames, av), 6).tolist()  # type: ignore[misc]
    return zoom_schedule(plan.frames, plan.fps, params, drive), chroma


def _digest(*arrays: Any) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float64)).tobytes())
    return h.hexdigest()


def zoom_settings(plan: ZoomPlan, still: DreamParams, params: ZoomParams, schedule: ZoomSchedule,
                  objective_spec: dict[str, Any], chroma: Sequence[Sequence[float]] | None = None) -> dict[str, Any]:
    """What makes a zoom's frames what they are; a work directory refuses frames of other settings."""
    return {"kind": "zoom", "input": fingerprint(plan.input), "width": plan.width, "height": plan.height,
            "fps": plan.fps, "frames": plan.frames, "still": dataclasses.asdict(still),
            "zoom": dataclasses.asdict(params), "objective": objective_spec,
            "schedule_sha256": _digest(schedule.scale, schedule.angle, schedule.shift, schedule.strength),
            "chroma_sha256": None if chroma is None else _digest(chroma)}


def dream_zoom_range(plan: ZoomPlan, work: FrameStore, schedule: ZoomSchedule, backbone: Backbone,
                     objective: Objective | FrameObjectives, still: DreamParams, params: ZoomParams,
                     stop: int | None = None, progress: ProgressFn | None = None) -> None:
    """Dream frames ``[0, stop)`` (default: all) into ``work``, resuming after the last finished frame; progress
    counts frames."""
    stop = plan.frames if stop is None else stop
    resume = work.resume_point(0, stop)
    tracker = Tracker(stop, progress, stage="zoom", done=resume)
    if resume >= stop:
        return

    def objective_at(t: int) -> Objective:
        return objective.at(t) if isinstance(objective, FrameObjectives) else objective

    if resume == 0:
        first = dream_start(plan.start, backbone, objective_at(0), still, params)
        work.save(0, first[None], ZoomFrame(0, 1.0, 0.0, 0.0, 0.0, float(schedule.strength[0]), 0.0))
        tracker.advance()
        resume, prev = 1, first
    else:
        first, prev = work.frame(0), work.frame(resume - 1)
    reference = channel_stats(first)
    for t in range(resume, stop):
        step = schedule.at(t)
        prev, detail = dream_zoom_frame(prev, backbone, objective_at(t), still, params, step, reference, t)
        work.save(t, prev[None], ZoomFrame(t, step.scale, step.angle, step.shift[0], step.shift[1], step.strength,
                                           detail))
        tracker.advance()


@dataclass(frozen=True)
class ZoomSound:
    """A zoom's sound to dream: the source ``(C, n)`` at ``rate``, its segment plan, the network-rate mono clip
    ``x`` ``(m,)`` and the store of the segments' checkpoints (bound to their settings)."""

    source: torch.Tensor
    rate: int
    plan: SegmentPlan
    x: torch.Tensor
    store: SegmentStore


def plan_zoom_sound(plan: ZoomPlan, params: AudioDreamParams, net_rate: int | None, record: dict[str, Any],
                    uri: str) -> ZoomSound:
    """Plan the segments of the plan's sound for a network at ``net_rate``; checkpoints under ``uri`` (a store of
    other settings, ``record`` describing the objective, is refused here)."""
    check_sound(plan, AVParams(), dream=True)
    assert plan.sound is not None and plan.sound_path is not None
    if net_rate is None:
        raise ParameterError("the sound's backbone is an image backbone; dream sounds with an audio one (yamnet)")
    samples, rate = plan.sound
    source = torch.from_numpy(samples)
    seg_plan, x = plan_soundtrack(source, rate, params, net_rate)
    settings = soundtrack_settings(plan.sound_path, 0.0, source, rate, params, record)
    return ZoomSound(source, rate, seg_plan, x, SegmentStore(uri, settings))


def join_zoom_sound(sound: ZoomSound, params: AudioDreamParams) -> tuple[np.ndarray, int]:
    """The dreamed sound ``(C, n)`` and its rate, from every segment's checkpoint, at the source's loudness."""
    pieces = [sound.store.load(i) for i in range(len(sound.plan.segments))]
    return join_soundtrack(sound.source, sound.rate, sound.plan, pieces, params).numpy(), sound.rate


def dream_zoom_sound(plan: ZoomPlan, sound: SoundDream, uri: str, progress: ProgressFn | None = None
                     ) -> tuple[np.ndarray, int]:
    """The plan's sound dreamed segment by segment in this process (checkpoints under ``uri``; a rerun skips
    finished segments), joined at the source's loudness: samples ``(C, n)`` and rate."""
    planned = plan_zoom_sound(plan, sound.params, sound.backbone.sample_rate, sound.record, uri)
    finished = planned.store.finished()
    tracker = Tracker(len(planned.plan.segments), progress, stage="sound", done=len(finished))
    for i, (a, b) in enumerate(planned.plan.segments):
        if i not in finished:
            planned.store.save(i, dream_segment(planned.x[a:b], planned.plan, i, sound.backbone, sound.objective,
                                                sound.params))
            tracker.advance()
    return join_zoom_sound(planned, sound.params)


def write_zoom(plan: ZoomPlan, work: FrameStore, output: str | os.PathLike[str],
               audio: tuple[np.ndarray, int] | None = None, provenance: str | None = None) -> Path | str:
    """Encode the finished frames as the film ``output`` (a path or ``s3://``; it appears only when complete) with
    ``audio`` (samples ``(C, n)``, rate: a dreamed sound) or else the plan's sound file, cut to the frames;
    ``provenance``: the record text it carries (:mod:`mmdream.provenance`)."""
    finished = work.finished()
    missing = [t for t in range(plan.frames) if t not in finished]
    if missing:
        raise MediaError(f"zoom frame {missing[0]} is missing from {work.uri}; rerun to finish it")
    audio_from = plan.sound_path if audio is None else None
    with storage.local_output(output) as target, VideoWriter(target, fps=plan.fps, crf=plan.crf,
                                                             audio_from=audio_from, audio=audio,
                                                             provenance=provenance) as writer:
        for t in range(plan.frames):
            writer.write(to_uint8(work.frame(t)))
    return output if storage.is_s3(str(output)) else Path(output)


def render_zoom(plan: ZoomPlan, output: str | os.PathLike[str], backbone: Backbone, objective: Objective,
                still: DreamParams, params: ZoomParams, av: AVParams = AVParams(), *,
                objective_spec: dict[str, Any] | None = None, sound: SoundDream | None = None,
                work_dir: str | os.PathLike[str] | None = None, provenance: str | None = None,
                progress: ProgressFn | None = None) -> list[dict[str, Any]]:
    """Render the zoom film ``output`` in one process, resuming from the work directory (default: a hidden folder
    beside the output, removed once the film is written; a given one is kept); ``provenance``: the record text the
    film carries. Returns the frames' records."""
    schedule, chroma = zoom_plan_schedules(plan, params, av)
    frame_objective: Objective | FrameObjectives = objective if chroma is None else ChromaObjectives(objective, chroma)
    spec = objective_spec or {"layers": list(objective.layers), "backbone": backbone.name}
    uri = str(work_dir or default_work_dir(output))
    work = FrameStore(storage.join(uri, "frames"), zoom_settings(plan, still, params, schedule, spec, chroma))
    dreamed = None if sound is None else dream_zoom_sound(plan, sound, storage.join(uri, "sound"), progress)
    dream_zoom_range(plan, work, schedule, backbone, frame_objective, still, params, progress=progress)
    records = [work.record(t) for t in range(plan.frames)]
    write_zoom(plan, work, output, dreamed, provenance)
    if work_dir is None:
        storage.remove_tree(uri)
    return records
