"""Job specs: a YAML file validated by a typed schema, the one description of a render for the CLI and the cluster.

The dream sections are generated from the algorithms' own frozen dataclasses (:class:`DreamParams`,
:class:`VideoParams`, :class:`FilmParams`, ...) and checked by their declarations (:mod:`mmdream.options`), so a
default or a bound is written once. Unknown keys and invalid values are errors that name the key
(``dream: steps=0 is invalid: ...``).

    input: sample:bigbuckbunny.mp4          # a path, s3://bucket/key, or a bundled sample
    output: out/demo.mp4
    backbone: {name: vgg16}
    objective: {layers: relu4_3}
    dream: {steps: 10}                      # DreamParams (each shot's first frame)
    video: {blend: 0.98}                    # VideoParams (temporal coherence)
    film: {size: 320}                       # FilmParams (frame size, rate, range, sound, quality)
    sharding: {frames_per_shard: 250, warmup: 24, crossfade: 24, audio_segment_s: 10, audio_overlap_s: 1}
    resources: {actors: 2, cpus_per_actor: 1, gpus_per_actor: 0}   # fractional GPUs: actors share a card
    compute: {precision: fp32, channels_last: false}   # ComputeParams: bf16 autocast, channels-last (image nets)
    audio: {objective: {class: Bark}, dream: {steps: 20}}   # dream the soundtrack too (AudioDreamParams)
    av: {drive: rms}                        # AVParams: the soundtrack's loudness drives the dream's strength

An output with an audio suffix (.wav, .flac, .ogg) makes an audio-only job: the input's sound is dreamed (the
``audio`` section is then required) and no picture is made.

A validated spec is compiled once into a plain :class:`~mmdream.jobspec.plan.RenderPlan`
(:func:`mmdream.jobspec.plan.compile_plan`); nothing past that reads the spec.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from mmdream.schedules.drive import AVParams
from mmdream.backbones.compute import ComputeParams
from mmdream.schedules.walk import WalkParams
from mmdream.pipelines.walk import WalkFilmParams
from mmdream.dream.zoom import ZoomParams
from mmdream.pipelines.zoom import ZoomFilmParams
from mmdream.dream.audio import AudioDreamParams
from mmdream.dream.style import StyledFilmParams, StyleParams
from mmdream.dream.image import DreamParams
from mmdream.dream.temporal import VideoParams
from mmdream.errors import MmdreamError, ParameterError
from mmdream.pipelines.film import FilmParams
from mmdream.media.audio import AUDIO_FORMATS
from mmdream.options import check_value, declaration, validate
from mmdream.objectives.themes import Theme, resolve_theme

_STRICT = ConfigDict(extra="forbid", frozen=True)


def _model_of(cls: type, exclude: tuple[str, ...] = (), base: type[BaseModel] | None = None,
              name: str | None = None) -> type[BaseModel]:
    """A pydantic model with the fields, types, defaults and help of the params dataclass ``cls`` (but
    ``exclude``), validated by its declarations (:func:`mmdream.options.validate`); ``base``: a model whose own
    fields it adds to (flat)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.name not in exclude}
    fields: dict[str, Any] = {f.name: (hints[f.name], Field(default=f.default, description=f.metadata.get("help")))
                              for f in dataclasses.fields(cls) if f.name in names}

    def check(self: BaseModel) -> BaseModel:
        _check(cls(**self.model_dump(include=names)))
        return self

    config: dict[str, Any] = {"__config__": _STRICT} if base is None else {"__base__": base, "__doc__": base.__doc__}
    return create_model(name or f"{cls.__name__}Spec", **config,
                        __validators__={"check": model_validator(mode="after")(check)}, **fields)


def _check(params: Any, names: dict[str, str] | None = None) -> None:
    """:func:`mmdream.options.validate` for pydantic: its ParameterError as a ValueError (``names``: the spec's
    keys by field name)."""
    try:
        validate(params, names=names)
    except ParameterError as exc:
        raise ValueError(str(exc)) from None


DreamSpec = _model_of(DreamParams)
VideoSpec = _model_of(VideoParams)
FilmSpec = _model_of(FilmParams)
_AUDIO_SEGMENTING = ("segment_s", "overlap_s")  # job specs set them under `sharding`
AudioDreamSpec = _model_of(AudioDreamParams, exclude=_AUDIO_SEGMENTING)
AVSpec = _model_of(AVParams)
StyleParamsSpec = _model_of(StyleParams)
ComputeSpec = _model_of(ComputeParams)
WalkParamsSpec = _model_of(WalkParams)
ZoomParamsSpec = _model_of(ZoomParams)
ZoomFilmSpec = _model_of(ZoomFilmParams)


class BackboneSpec(BaseModel):
    model_config = _STRICT
    name: str = "vgg16"
    variant: str | None = None


class ObjectiveSpec(BaseModel):
    """What to dream toward: layers (``relu4_3:1,relu5_2:0.5``), channels of one layer (``[12, "40:-1"]`` or
    ``"12,40:-1"``: a gain per channel, negative to suppress), a class, or a guide."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    layers: str | None = None
    channels: list[tuple[int, float]] | None = None
    class_: str | None = Field(default=None, alias="class")
    guide: str | None = None

    @field_validator("channels", mode="before")
    @classmethod
    def _channels(cls, value: Any) -> Any:
        from mmdream.objectives.terms import parse_channels

        if value is None or isinstance(value, str) or (isinstance(value, (list, tuple))
                                                       and all(isinstance(v, (int, str)) for v in value)):
            return parse_channels(value)
        return value


class AudioObjectiveSpec(BaseModel):
    """What the sound dreams toward: an AudioSet class (``Bark``), or layers (``layer10:1``; default the
    backbone's dream layers), or both."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    layers: str | None = None
    class_: str | None = Field(default=None, alias="class")


class ThemeSpec(BaseModel):
    """A theme that extends a shipped one (``name``) or defines its own classes (:mod:`mmdream.objectives.themes`)."""

    model_config = _STRICT
    name: str | None = None
    image: list[int | str] | None = None
    sound: list[int | str] | None = None


class _StyleSection(BaseModel):
    """Style the film's frames instead of dreaming them (:mod:`mmdream.dream.style`): style images (paths or
    s3://), their blend weights, the still options, and the film's per-frame steps and temporal loss
    (:class:`StyledFilmParams`)."""

    model_config = _STRICT
    images: list[str] = Field(min_length=1)
    weights: list[float] | None = None
    params: StyleParamsSpec = StyleParamsSpec()  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _weights_fit(self) -> _StyleSection:
        if self.weights is not None and len(self.weights) != len(self.images):
            raise ValueError(f"weights: {len(self.weights)} weights for {len(self.images)} style images")
        return self


StyleSpec = _model_of(StyledFilmParams, base=_StyleSection, name="StyleSpec")


class _WalkSection(BaseModel):
    """A latent walk to music instead of a dreamed film (:mod:`mmdream.schedules.walk`): the job's input is the music, the
    frames are ``generator``'s images along a walk whose speed follows the music's onsets (or loudness) and whose
    drift follows its chroma; its rate, size, quality and seed are :class:`WalkFilmParams`'. Frames depend on their
    latents alone, so shards agree with a 1-shard render exactly (no warm-up or crossfade)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    generator: str = Field(description="a shared generator (dcgan_faces64, dcgan_eyes128) or a `gan train` "
                                       "checkpoint (.safetensors, local or s3://)")
    class_: str | None = Field(default=None, alias="class", description="conditional generators: hold this class "
                                                                        "(default: seeded classes along the path)")
    params: WalkParamsSpec = WalkParamsSpec()  # type: ignore[valid-type]

WalkSpec = _model_of(WalkFilmParams, base=_WalkSection, name="WalkSpec")


class ZoomSpec(BaseModel):
    """A zoom film instead of a dreamed film (:mod:`mmdream.pipelines.zoom`): the job's input is the start picture (or a film:
    its last frame), each frame a dream of the previous one moved a little; ``audio`` (a path or s3://; default: a
    film input's soundtrack) drives it through the job's ``av`` section and is carried (dreamed with an ``audio``
    section). The frames are a chain, so one actor renders them in order while others dream the sound's segments."""

    model_config = _STRICT
    size: int | None = Field(default=None, description=declaration(FilmParams, "size").metadata["help"])
    audio: str | None = None
    film: ZoomFilmSpec = ZoomFilmSpec()  # type: ignore[valid-type]
    params: ZoomParamsSpec = ZoomParamsSpec()  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _size_fits(self) -> ZoomSpec:
        try:
            check_value(FilmParams, "size", self.size)
        except ParameterError as exc:
            raise ValueError(str(exc)) from None
        return self


class AudioSpec(BaseModel):
    """Dream the sound as well (without this section a film keeps its soundtrack as it is)."""

    model_config = _STRICT
    backbone: BackboneSpec = Field(default_factory=lambda: BackboneSpec(name="yamnet"))
    objective: AudioObjectiveSpec = AudioObjectiveSpec()
    dream: AudioDreamSpec = AudioDreamSpec()  # type: ignore[valid-type]


class ShardingSpec(BaseModel):
    """How a job is split among actors.

    Each frame shard dreams ``warmup`` frames before its own first frame (starting a shot there), so that its
    temporal state has settled; the last ``crossfade`` of those are blended with the previous shard's frames (a
    dissolve that hides the seam), the others are dropped. The defaults (24 and 24) come from ``bench/seams.py``:
    seam flicker 0.94x the flicker inside shards (1.12x with a 12-frame dissolve), frames 10/255 from a 1-shard
    render's on average (13.7 without warm-up). The sound is cut into segments of ``audio_segment_s``
    seconds that overlap by ``audio_overlap_s`` and are joined by crossfades (:class:`AudioDreamParams`'
    ``segment_s`` and ``overlap_s``).
    """

    model_config = _STRICT
    frames_per_shard: int = Field(default=250, ge=1, le=100_000)
    warmup: int = Field(default=24, ge=0, le=1000)
    crossfade: int = Field(default=24, ge=0, le=1000)
    audio_segment_s: float = Field(default=AudioDreamParams.segment_s,
                                   description=declaration(AudioDreamParams, "segment_s").metadata["help"])
    audio_overlap_s: float = Field(default=AudioDreamParams.overlap_s,
                                   description=declaration(AudioDreamParams, "overlap_s").metadata["help"])

    @model_validator(mode="after")
    def _fade_within_warmup(self) -> ShardingSpec:
        if self.crossfade > self.warmup:
            raise ValueError(f"crossfade ({self.crossfade}) must not exceed warmup ({self.warmup})")
        _check(AudioDreamParams(segment_s=self.audio_segment_s, overlap_s=self.audio_overlap_s),
               {"segment_s": "audio_segment_s", "overlap_s": "audio_overlap_s"})
        return self


class ResourcesSpec(BaseModel):
    model_config = _STRICT
    actors: int = Field(default=2, ge=1, le=4096)
    cpus_per_actor: float = Field(default=1, gt=0, le=256)
    gpus_per_actor: float = Field(default=0, ge=0, le=16)
    retries: int = Field(default=3, ge=0, le=100, description="times a frame shard or sound segment is re-queued "
                                                              "after its actor or node is lost")


class JobSpec(BaseModel):
    """A film render: input and output URIs, dream settings, sharding, resources, work and weights locations."""

    model_config = _STRICT
    input: str
    output: str
    work: str | None = Field(default=None, description="checkpoint/work URI (default: beside the output)")
    weights: str | None = Field(default=None, description="weights directory, local or s3:// "
                                                          "(default: $MMDREAM_WEIGHTS, then the cache)")
    backbone: BackboneSpec = BackboneSpec()
    objective: ObjectiveSpec = ObjectiveSpec()
    dream: DreamSpec = DreamSpec()  # type: ignore[valid-type]
    video: VideoSpec = VideoSpec()  # type: ignore[valid-type]
    film: FilmSpec = FilmSpec()  # type: ignore[valid-type]
    sharding: ShardingSpec = ShardingSpec()
    resources: ResourcesSpec = ResourcesSpec()
    compute: ComputeSpec = ComputeSpec()  # type: ignore[valid-type]
    audio: AudioSpec | None = None
    av: AVSpec = AVSpec()  # type: ignore[valid-type]
    theme: str | ThemeSpec | None = None
    style: StyleSpec | None = None  # type: ignore[valid-type]
    walk: WalkSpec | None = None  # type: ignore[valid-type]
    zoom: ZoomSpec | None = None
    shared_filesystem: bool = Field(default=False, description="the local paths of the job (input, work, style "
                                    "images) name the same files on every Ray node (e.g. an NFS mount): allows "
                                    "them on a multi-node or remote cluster, where otherwise s3:// is required")
    preview: bool | str = Field(default=True, description="a preview PNG (frames, spectrograms, per-frame curves): "
                                                          "true = beside the output, a path/URI, or false")

    @property
    def kind(self) -> str:
        """``"walk"`` with a ``walk`` section, ``"audio"`` for an output with an audio suffix (the sound only),
        else ``"film"``."""
        if self.walk is not None:
            return "walk"
        if self.zoom is not None:
            return "zoom"
        return "audio" if Path(self.output).suffix.lower() in AUDIO_FORMATS else "film"

    @model_validator(mode="after")
    def _walk_stands_alone(self) -> JobSpec:
        if self.walk is None:
            return self
        extras = [name for name in ("audio", "theme", "style") if getattr(self, name) is not None]
        extras += ["av"] * (self.av != AVSpec()) + ["objective"] * (self.objective != ObjectiveSpec())
        if extras:
            raise ValueError(f"walk: a latent walk renders a generator to its input's music; remove "
                             f"{', '.join(extras)}")
        if Path(self.output).suffix.lower() not in (".mp4", ".mkv", ".mov"):
            raise ValueError(f"walk: the output {self.output} must be a film (.mp4, .mkv, .mov)")
        return self

    @model_validator(mode="after")
    def _zoom_stands_alone(self) -> JobSpec:
        if self.zoom is None:
            return self
        extras = [name for name in ("theme", "style", "walk") if getattr(self, name) is not None]
        extras += ["video"] * (self.video != VideoSpec()) + ["film"] * (self.film != FilmSpec())
        if extras:
            raise ValueError(f"zoom: a zoom film is dreamed from its input alone; remove {', '.join(extras)} (its "
                             "length, rate and quality go under zoom.film)")
        if Path(self.output).suffix.lower() not in (".mp4", ".mkv", ".mov"):
            raise ValueError(f"zoom: the output {self.output} must be a film (.mp4, .mkv, .mov)")
        if self.av.sound_follows != "none":
            raise ValueError("av.sound_follows: a zoom's sound drives the picture, not the other way; set it to none")
        return self

    @model_validator(mode="after")
    def _audio_section_fits(self) -> JobSpec:
        if self.kind == "audio" and self.sound_spec() is None:
            raise ValueError(f"audio: an audio-only job (output {self.output}) needs an `audio` section saying what "
                             "to dream, e.g. audio: {objective: {class: Bark}}")
        if self.style is not None and (self.kind == "audio" or self.theme is not None or self.av.drive != "none"
                                       or self.av.channels_follow != "none"):
            raise ValueError("style: a styled film is neither an audio job nor themed or driven by its sound; "
                             "remove the style or those")
        o = self.objective
        if self.av.channels_follow != "none" and not o.layers and (o.class_ or o.channels or o.guide or self.theme):
            raise ValueError(f"av.channels_follow: {self.av.channels_follow} weights the channels of the objective's "
                             "layers; name them (objective: {layers: ...})")
        if self.av.sound_follows != "none" and (self.kind == "audio" or self.sound_spec() is None):
            raise ValueError(f"av.sound_follows: {self.av.sound_follows} needs a film whose sound is dreamed (an "
                             "audio section or a theme)")
        if self.kind == "film" and self.sound_spec() is not None and not self.film.keep_audio:
            raise ValueError("audio: the film drops its sound (film.keep_audio: false), so it cannot dream it")
        if self.theme is not None:
            try:
                self.theme_value()
            except ParameterError as exc:
                raise ValueError(f"theme: {exc}") from None
            if self.objective.class_ or (self.audio is not None and self.audio.objective.class_):
                raise ValueError("theme: a theme sets the classes to dream toward; remove objective.class and "
                                 "audio.objective.class (or the theme)")
        return self

    def theme_value(self) -> Theme | None:
        """The resolved theme (:mod:`mmdream.objectives.themes`), if any."""
        if self.theme is None:
            return None
        return resolve_theme(self.theme if isinstance(self.theme, str) else self.theme.model_dump())

    def sound_spec(self) -> AudioSpec | None:
        """How the sound is dreamed: the ``audio`` section, or its defaults when a theme is set; None: kept as is."""
        return self.audio if self.audio is not None or self.theme is None else AudioSpec()

    @model_validator(mode="after")
    def _uris_stay_put(self) -> JobSpec:
        """s3:// URIs must name a bucket and a key without ``.``/``..`` segments, so derived keys stay under them."""
        for name in ("input", "output", "work", "weights", "preview"):
            uri = getattr(self, name)
            if isinstance(uri, str) and uri.startswith("s3://"):
                bucket, _, key = uri[len("s3://"):].partition("/")
                if not bucket or any(part in (".", "..") for part in key.split("/")):
                    raise ValueError(f"{name}: {uri!r} must be s3://BUCKET/KEY without '.' or '..' segments")
        return self

    def with_overrides(self, **changes: Any) -> JobSpec:
        """A copy with top-level or dotted (``resources.actors``) values replaced, validated again."""
        data = self.model_dump(by_alias=True)
        for key, value in changes.items():
            if value is None:
                continue
            *path, last = key.split(".")
            node = data
            for part in path:
                node = node[part]
            node[last] = value
        return parse_job(data)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{key}: {'unknown key' if err['type'] == 'extra_forbidden' else msg}")
    return "; ".join(parts)


def parse_job(data: Any) -> JobSpec:
    """Validate a mapping as a job spec; errors name each bad key."""
    if not isinstance(data, dict):
        raise ParameterError("a job spec must be a YAML mapping with at least `input` and `output`")
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise ParameterError(f"invalid job spec: {_describe(exc)}") from None


def load_job(path: str | os.PathLike[str]) -> JobSpec:
    """Read and validate a YAML job spec file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise ParameterError(f"job spec {p} does not exist") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ParameterError(f"cannot read job spec {p}: {exc}") from None
    try:
        return parse_job(data)
    except MmdreamError as exc:
        raise ParameterError(f"{p}: {exc}") from None
