"""What a render plan's parts become at run time: objectives on loaded backbones, style images, the settings that
bind a job's checkpoints, and the provenance record its outputs carry."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import torch

from mmdream.backbones import weights_path
from mmdream.backbones.base import Backbone
from mmdream.dream.zoom import ZoomSchedule
from mmdream.jobspec.plan import NetRef, ObjectiveRef, RenderPlan, SoundPlan, StylePlan
from mmdream.objectives.terms import Objective, build_objective
from mmdream.objectives.themes import Theme, image_objective, sound_objective_of
from mmdream.pipelines.film import FilmPlan, film_settings, style_settings
from mmdream.pipelines.zoom import ZoomPlan, zoom_settings
from mmdream.provenance import NamedWeights, dumps, make_record


def objective_record(objective: ObjectiveRef, backbone: NetRef, size: int, theme: Theme | None = None
                     ) -> dict[str, Any]:
    """A JSON-able record of an objective (work directories refuse frames of other objectives); no weights loaded.

    ``size``: the longer side of the frames; a guide image is summarised as loaded for them.
    """
    from mmdream.backbones import class_names, get_variant

    variant, _ = get_variant(backbone.name, backbone.variant)
    if objective.class_ is not None or theme is not None:
        class_names(backbone.name, variant)  # a class or theme needs a classifier: refused here, before any actor
    guide = _load_guide(objective, size)
    return {"backbone": backbone.name, "variant": variant, "layers": objective.layers,
            "channels": objective.channels, "class": objective.class_,
            "guide": None if guide is None else [round(float(v), 6) for v in guide.mean(dim=(0, 2, 3))],
            "theme": None if theme is None else list(theme.image)}


def _load_guide(objective: ObjectiveRef, size: int) -> torch.Tensor | None:
    from mmdream.media.images import load_image

    return load_image(objective.guide, min(512, size)) if objective.guide else None


def build_job_objective(objective: ObjectiveRef, backbone: Backbone, size: int, theme: Theme | None = None
                        ) -> Objective:
    """The objective of the picture on a loaded backbone; a guide image is loaded at most ``size`` (512) px.
    With a ``theme``: its image classes, plus the layers, channels or guide if named too."""
    if theme is None:
        return build_objective(backbone, layers=objective.layers, channels=objective.channels,
                               class_=objective.class_, guide=_load_guide(objective, size))
    terms = image_objective(backbone, theme).terms
    if objective.layers or objective.channels or objective.guide:
        terms += build_objective(backbone, layers=objective.layers, channels=objective.channels,
                                 guide=_load_guide(objective, size)).terms
    return Objective(terms)


def build_job_sound_objective(sound: SoundPlan, theme: Theme | None, backbone: Backbone) -> Objective:
    """The sound's objective on a loaded audio backbone: the theme's sound classes (plus layers if named), or the
    class and/or layers."""
    from mmdream.dream.audio import sound_objective

    if theme is None:
        return sound_objective(backbone, class_=sound.objective.class_, layers=sound.objective.layers)
    terms = sound_objective_of(backbone, theme).terms
    if sound.objective.layers:
        terms += sound_objective(backbone, layers=sound.objective.layers).terms
    return Objective(terms)


def load_styles(style: StylePlan) -> list[torch.Tensor]:
    """The style images ``(1, 3, H, W)`` (local or s3://)."""
    from mmdream.media.images import load_image
    from mmdream.media.storage import local_input

    styles = []
    for uri in style.images:
        with local_input(uri) as path:
            styles.append(load_image(path))
    return styles


def film_job_settings(plan: RenderPlan, input_path: str, film: FilmPlan, schedules: dict[str, Any]
                      ) -> dict[str, Any]:
    """What makes a film job's frames what they are (:func:`mmdream.pipelines.film.film_settings`, or
    :func:`mmdream.pipelines.film.style_settings` for a styled film), with its per-frame ``schedules`` (``drive``,
    ``chroma``: lists by frame index, or None) fingerprinted."""
    picture = plan.picture
    if picture.style is not None:
        style = picture.style
        settings = style_settings(input_path, film, picture.backbone.name, load_styles(style), style.params,
                                  style.weights, style.film)
    else:
        record = objective_record(picture.objective, picture.backbone, max(film.width, film.height), plan.theme)
        if schedules.get("chroma") is not None:
            record["chroma_sha256"] = hashlib.sha256(json.dumps(schedules["chroma"]).encode()).hexdigest()
        settings = film_settings(input_path, film, picture.dream, picture.video, record, schedules.get("drive"))
    return {**settings, "compute": dataclasses.asdict(picture.compute)}  # bf16 frames differ from fp32 ones


def zoom_job_settings(plan: RenderPlan, zoom: ZoomPlan, schedule: ZoomSchedule,
                      chroma: list[list[float]] | None) -> dict[str, Any]:
    """What makes a zoom job's frames what they are (:func:`mmdream.pipelines.zoom.zoom_settings`)."""
    assert plan.zoom is not None
    record = objective_record(plan.picture.objective, plan.picture.backbone, max(zoom.width, zoom.height))
    return zoom_settings(zoom, plan.picture.dream, plan.zoom.params, schedule, record, chroma)


def job_provenance(plan: RenderPlan) -> str:
    """The record text a rendered output carries (:mod:`mmdream.provenance`): the job as :attr:`RenderPlan.record`
    keeps it, the params, and the backbones with their weights' sha256."""
    nets = [] if plan.kind in ("walk", "audio") else [("backbone", plan.picture.backbone)]
    if plan.sound is not None:
        nets.append(("sound backbone", plan.sound.backbone))
    networks = [(role, NamedWeights(b.name, b.variant, weights_path(b.name, variant=b.variant,
                                                                    weights_dir=plan.uris.weights)))
                for role, b in nets]
    picture = plan.picture
    params: list[Any] = []
    if plan.zoom is not None:
        params = [picture.dream, plan.zoom.params, plan.zoom.film, plan.av]
    elif plan.kind == "audio":
        assert plan.sound is not None  # an audio job dreams its sound (the schema says so)
        params = [plan.sound.params]
    elif plan.kind == "film":
        params = [picture.dream, picture.video, picture.film, plan.av]
    return dumps(make_record("render", params=params, networks=networks, inputs={"input": plan.uris.input},
                             seed=plan.walk.film.seed if plan.walk is not None else None, extra={"job": plan.record}))
