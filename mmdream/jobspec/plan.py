"""A job spec compiled once into a plain render plan: what the driver, the actors, the sound, the reducer and the
preflight receive instead of the spec. Every section is a frozen dataclass of plain data (the algorithms' params
dataclasses, resolved URIs, names), picklable for Ray; nothing downstream of :func:`compile_plan` reads the spec.

>>> plan = compile_plan(load_job("jobs/demo.yaml"))
>>> plan.kind, plan.picture.dream.steps, plan.uris.work       # ("film", 10, ".dream_demo.mp4.work")

The plan is what the spec says, not what the input holds: the frame range, size and shards follow from probing
the input (:func:`mmdream.pipelines.film.plan_film`, :func:`mmdream_cluster.planner.plan_shards`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from mmdream.backbones.compute import ComputeParams
from mmdream.dream.audio import AudioDreamParams
from mmdream.dream.image import DreamParams
from mmdream.dream.style import StyledFilmParams, StyleParams
from mmdream.dream.temporal import VideoParams
from mmdream.dream.zoom import ZoomParams
from mmdream.jobspec.schema import JobSpec
from mmdream.media.sequence import is_pattern
from mmdream.media.storage import join
from mmdream.objectives.themes import Theme
from mmdream.pipelines.film import FilmParams
from mmdream.pipelines.zoom import ZoomFilmParams
from mmdream.schedules.drive import AVParams
from mmdream.schedules.walk import WalkParams
from mmdream.pipelines.walk import WalkFilmParams

JobKind = Literal["film", "audio", "walk", "zoom"]
T = TypeVar("T")

_UNRECORDED_JOB_KEYS = ("input", "output", "work", "weights", "preview", "resources")  # where, not what


@dataclass(frozen=True)
class NetRef:
    """A backbone by name (not loaded)."""

    name: str
    variant: str | None = None


@dataclass(frozen=True)
class ObjectiveRef:
    """What to dream toward, by name: layers (``relu4_3:1``), channels of one layer (``((12, 1.0), (40, -1.0))``:
    a gain per channel), a class, a guide image (path or s3://). Built on a loaded backbone by
    :func:`mmdream.jobspec.build.build_job_objective`."""

    layers: str | None = None
    channels: tuple[tuple[int, float], ...] | None = None
    class_: str | None = None
    guide: str | None = None


@dataclass(frozen=True)
class StylePlan:
    """A styled film: style images (paths or s3://), their blend weights, the still's params, the film's per-frame
    steps and temporal loss (``film``)."""

    images: tuple[str, ...]
    weights: tuple[float, ...] | None
    params: StyleParams
    film: StyledFilmParams


@dataclass(frozen=True)
class PicturePlan:
    """How the picture is dreamed (film and zoom jobs; the spec's defaults for the others): the backbone and
    objective, each shot's first frame (``dream``), temporal coherence (``video``), frame size, rate, range and
    quality (``film``), precision; ``style`` instead of the dream for a styled film."""

    backbone: NetRef
    objective: ObjectiveRef
    dream: DreamParams
    video: VideoParams
    film: FilmParams
    compute: ComputeParams
    style: StylePlan | None


@dataclass(frozen=True)
class SoundPlan:
    """How the sound is dreamed: its backbone and objective (a class and/or layers; a theme adds its sound classes),
    the dream's params with their segmenting, and ``record``, the settings that bind the segments' checkpoints
    (:func:`_sound_record`)."""

    backbone: NetRef
    objective: ObjectiveRef
    params: AudioDreamParams
    record: dict[str, Any]


@dataclass(frozen=True)
class WalkPlan:
    """A latent walk to music: the generator (a shared name or a checkpoint), the class it holds (None: seeded
    classes), the film's rate, side, quality and seed (``film``), the walk's params, and ``record``, the settings
    that bind the frames' checkpoints (the walk section as written)."""

    generator: str
    class_: str | None
    film: WalkFilmParams
    params: WalkParams
    record: dict[str, Any]


@dataclass(frozen=True)
class ZoomJobPlan:
    """A zoom film: the longer side (None: the input's), the sound that drives it (None: a film input's), the
    film's length, rate and quality, the zoom's motion."""

    size: int | None
    audio: str | None
    film: ZoomFilmParams
    params: ZoomParams


@dataclass(frozen=True)
class Sharding:
    """How frames are split among actors (:func:`mmdream_cluster.planner.plan_shards`); the sound's segmenting is in
    :attr:`SoundPlan.params`."""

    frames_per_shard: int
    warmup: int
    crossfade: int


@dataclass(frozen=True)
class Resources:
    """The actors: how many, one actor's CPUs and GPUs (fractional: they share a card), and how often a lost task
    is re-queued."""

    actors: int
    cpus_per_actor: float
    gpus_per_actor: float
    retries: int


@dataclass(frozen=True)
class Locations:
    """Where things are, resolved: the input, the output, the work location (checkpoints; ``keep_work``: it was
    given, so it stays after the render), the sound's checkpoints and the per-frame schedules under it, the preview
    PNG (None: none), the weights directory (None: $MMDREAM_WEIGHTS, then the cache), and whether local paths name
    the same files on every Ray node."""

    input: str
    output: str
    work: str
    keep_work: bool
    sound_work: str
    schedules: str
    preview: str | None
    weights: str | None
    shared_filesystem: bool


@dataclass(frozen=True)
class RenderPlan:
    """A job, compiled: its kind, locations, the picture's and (if dreamed) the sound's settings, a walk or zoom,
    the drive by the sound (``av``), sharding, resources, and ``record``, the job as its outputs' provenance keeps
    it (the spec less where files go and what runs it)."""

    kind: JobKind
    uris: Locations
    picture: PicturePlan
    theme: Theme | None
    av: AVParams
    sound: SoundPlan | None
    walk: WalkPlan | None
    zoom: ZoomJobPlan | None
    sharding: Sharding
    resources: Resources
    record: dict[str, Any]

    def with_input(self, uri: str) -> RenderPlan:
        """The same plan reading ``uri`` (a resolved ``sample:``)."""
        return dataclasses.replace(self, uris=dataclasses.replace(self.uris, input=uri))


def compile_plan(job: JobSpec) -> RenderPlan:
    """The plan of a validated job spec (:func:`mmdream.jobspec.schema.parse_job`)."""
    theme = job.theme_value()
    sound = job.sound_spec()
    return RenderPlan(
        kind=job.kind,  # type: ignore[arg-type]
        uris=_locations(job),
        picture=PicturePlan(
            backbone=NetRef(job.backbone.name, job.backbone.variant),
            objective=ObjectiveRef(job.objective.layers,
                                   None if job.objective.channels is None else tuple(job.objective.channels),
                                   job.objective.class_, job.objective.guide),
            dream=DreamParams(**job.dream.model_dump()),
            video=VideoParams(**job.video.model_dump()),
            film=FilmParams(**job.film.model_dump()),
            compute=ComputeParams(**job.compute.model_dump()),
            style=None if job.style is None else StylePlan(
                tuple(job.style.images), None if job.style.weights is None else tuple(job.style.weights),
                StyleParams(**job.style.params.model_dump()), _fields_of(StyledFilmParams, job.style))),
        theme=theme,
        av=AVParams(**job.av.model_dump()),
        sound=None if sound is None else SoundPlan(
            backbone=NetRef(sound.backbone.name, sound.backbone.variant),
            objective=ObjectiveRef(layers=sound.objective.layers, class_=sound.objective.class_),
            params=AudioDreamParams(**sound.dream.model_dump(), segment_s=job.sharding.audio_segment_s,
                                    overlap_s=job.sharding.audio_overlap_s),
            record=_sound_record(job, theme)),
        walk=None if job.walk is None else WalkPlan(
            job.walk.generator, job.walk.class_, _fields_of(WalkFilmParams, job.walk),
            WalkParams(**job.walk.params.model_dump()), job.walk.model_dump(by_alias=True)),
        zoom=None if job.zoom is None else ZoomJobPlan(
            job.zoom.size, job.zoom.audio, ZoomFilmParams(**job.zoom.film.model_dump()),
            ZoomParams(**job.zoom.params.model_dump())),
        sharding=Sharding(job.sharding.frames_per_shard, job.sharding.warmup, job.sharding.crossfade),
        resources=Resources(job.resources.actors, job.resources.cpus_per_actor, job.resources.gpus_per_actor,
                            job.resources.retries),
        record={k: v for k, v in job.model_dump(by_alias=True).items() if k not in _UNRECORDED_JOB_KEYS},
    )


def _fields_of(cls: type[T], section: BaseModel) -> T:
    """The params dataclass ``cls`` from the fields of a spec section that declares them beside others."""
    return cls(**section.model_dump(include={f.name for f in dataclasses.fields(cls)}))  # type: ignore[call-arg]


def _sound_record(job: JobSpec, theme: Theme | None) -> dict[str, Any]:
    """The settings that bind the sound's segment checkpoints: the audio section less its dream params (those are
    recorded apart), and a film's theme's sound classes (a zoom has no theme, and its records never had the key)."""
    sound = job.sound_spec()
    assert sound is not None
    record = sound.model_dump(by_alias=True, exclude={"dream"})
    return record if job.zoom is not None else {**record, "theme": None if theme is None else list(theme.sound)}


def _locations(job: JobSpec) -> Locations:
    """The job's URIs: the work location defaults to a hidden folder/prefix beside the output, the preview to a
    PNG beside it (a frame sequence's: beside its folder)."""
    out = job.output.rstrip("/")
    output = out.rpartition("/")[0] or "." if is_pattern(out) else out  # a sequence: its folder
    if job.work:
        work = job.work
    else:
        head, _, name = output.rpartition("/")
        work = f"{head}/.{name}.work" if head else f".{name}.work"
    if job.preview is False:
        preview = None
    elif isinstance(job.preview, str):
        preview = job.preview
    elif output != out:
        preview = f"{output}.preview.png"
    else:
        stem, dot, suffix = output.rpartition(".")
        preview = f"{stem if dot and '/' not in suffix else output}.preview.png"
    return Locations(input=job.input, output=job.output, work=work, keep_work=job.work is not None,
                     sound_work=join(work, "sound"), schedules=join(work, "schedules.json"), preview=preview,
                     weights=job.weights, shared_filesystem=job.shared_filesystem)
