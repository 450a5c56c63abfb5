"""A job's soundtrack on Ray: read and planned once by the driver, dreamed segment by segment by the actors
(checkpointed in a :class:`~mmdream.pipelines.store.SegmentStore`), joined by the reducer with crossfades (and the
picture's gain)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mmdream.schedules.drive import sound_gain
from mmdream.backbones import get_spec
from mmdream.errors import ParameterError
from mmdream.pipelines.audio import SegmentPlan
from mmdream.pipelines.film import FilmPlan
from mmdream.jobspec.plan import RenderPlan
from mmdream.pipelines.soundtrack import join_soundtrack, plan_soundtrack, read_soundtrack, soundtrack_settings
from mmdream.pipelines.store import SegmentStore


@dataclass(frozen=True)
class Sound:
    """The source samples ``(C, n)`` at ``rate``, their segment plan, the network-rate mono clip ``x`` ``(m,)``,
    and the settings and store of the segments' checkpoints."""

    source: torch.Tensor
    rate: int
    plan: SegmentPlan
    x: torch.Tensor
    settings: dict[str, Any]
    store: SegmentStore


def prepare_sound(plan: RenderPlan, input_path: str, film: FilmPlan | None) -> Sound:
    """Read the sound a job dreams (a film's: the stretch its frames cover) and plan its segments; a work location
    holding segments of other settings is refused here, before any actor starts."""
    spec = plan.sound
    if spec is None:
        raise ParameterError("this job does not dream its sound")
    net_rate = get_spec(spec.backbone.name).sample_rate
    if net_rate is None:
        raise ParameterError(f"audio.backbone: {spec.backbone.name} is an image backbone; dream sounds with an "
                             "audio one (yamnet)")
    start_s = 0.0 if film is None else film.start / film.fps
    sound_path = input_path if film is None or film.sound is None else film.sound  # a sequence's: film.audio_file
    source, rate = read_soundtrack(sound_path, start_s, None if film is None else film.count / film.fps)
    segments, x = plan_soundtrack(source, rate, spec.params, net_rate)
    settings = soundtrack_settings(sound_path, start_s, source, rate, spec.params, spec.record)
    return Sound(source, rate, segments, x, settings, SegmentStore(plan.uris.sound_work, settings))


def join_sound(plan: RenderPlan, input_path: str, film: FilmPlan | None, sound: Sound) -> tuple[torch.Tensor, int]:
    """The dreamed soundtrack ``(C, n)`` and its rate, from every segment's checkpoint."""
    assert plan.sound is not None
    pieces = [sound.store.load(i) for i in range(len(sound.plan.segments))]
    gain = None if film is None else sound_gain(input_path, film, plan.av)
    curve = None if gain is None or film is None else (gain, film.fps)
    return join_soundtrack(sound.source, sound.rate, sound.plan, pieces, plan.sound.params, curve), sound.rate
