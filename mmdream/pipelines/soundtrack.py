"""A sound dreamed segment by segment, with checkpoints: the unit the Ray layer shards (and the reducer joins).

The stages of :mod:`mmdream.pipelines.audio`, with a store between dreaming and joining: the clip mixed to mono
at the network's rate (``x``, 16 kHz for YAMNet) is cut into overlapping segments; each segment's change is found
on its own (its own seed) and saved, so segments can be dreamed in any order, on any machine, and a rerun skips
the finished ones. The join is :func:`mmdream.pipelines.audio.dream_audio`'s: crossfaded overlap-add, ``mix``,
back to the source's rate, added to every channel, loudness kept and peaks limited. So a sharded dream equals the
in-process one.

>>> plan, x = plan_soundtrack(source, rate, params, backbone.sample_rate)
>>> store = SegmentStore(work_uri, settings)              # mmdream.pipelines.store's
>>> for i, (a, b) in enumerate(plan.segments):          # dream_segment: mmdream.pipelines.audio's
...     store.save(i, dream_segment(x[a:b], plan, i, backbone, objective, params))
>>> out = join_soundtrack(source, plan, [store.load(i) for i in range(len(plan.segments))], params)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mmdream.dream.audio import AudioDreamParams
from mmdream.media.audio import load_audio
from mmdream.media.video import read_audio
from mmdream.ops.loudness import rms
from mmdream.pipelines.audio import (
    SegmentPlan,
    fit_to_source,
    from_network_rate,
    join_segments,
    plan_dream_segments,
    to_network_rate,
)
from mmdream.pipelines.film import fingerprint

__all__ = ["plan_soundtrack", "join_soundtrack", "read_soundtrack", "soundtrack_settings"]

def plan_soundtrack(source: torch.Tensor, rate: int, params: AudioDreamParams, net_rate: int
                    ) -> tuple[SegmentPlan, torch.Tensor]:
    """The plan and the network's input ``x`` ``(n,)`` float32 (``source`` ``(C, n)`` at ``rate``, mixed to mono
    and resampled to ``net_rate``), as :func:`mmdream.pipelines.audio.dream_audio` makes them."""
    x = to_network_rate(source, rate, net_rate)
    return plan_dream_segments(x.shape[-1], rms(x), net_rate, params), x


def read_soundtrack(path: str | os.PathLike[str], start_s: float = 0.0, duration_s: float | None = None
                    ) -> tuple[torch.Tensor, int]:
    """Samples ``(C, n)`` float32 and rate of a file's sound: all of it, or ``duration_s`` from ``start_s`` (the
    stretch a film's frame range covers)."""
    if start_s == 0.0 and duration_s is None:
        return load_audio(path)
    samples, rate = read_audio(path, start_s=start_s, duration_s=duration_s)
    return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), rate


def soundtrack_settings(path: str | os.PathLike[str], start_s: float, source: torch.Tensor, rate: int,
                        params: AudioDreamParams, objective: dict[str, Any]) -> dict[str, Any]:
    """What makes a soundtrack's segments what they are (a :class:`~mmdream.pipelines.store.SegmentStore` refuses
    segments of others)."""
    return {"input": fingerprint(path), "start_s": start_s, "samples": source.shape[-1], "rate": rate,
            "params": dataclasses.asdict(params), "objective": objective}


def join_soundtrack(source: torch.Tensor, rate: int, plan: SegmentPlan, pieces: Sequence[torch.Tensor],
                    params: AudioDreamParams, gain: tuple[np.ndarray, float] | None = None) -> torch.Tensor:
    """``source`` ``(C, n)`` at ``rate`` plus the joined change of ``pieces`` (in segment order), at the source's
    loudness with no sample beyond full scale; ``(C, n)``. ``gain``: per-frame multipliers of the change and their
    frame rate (the picture sets the sound dream's intensity, :func:`mmdream.schedules.drive.sound_gain`)."""
    source = source.detach().cpu()
    change = join_segments([p.float() for p in pieces], plan, params.mix)
    return fit_to_source(source, from_network_rate(change, plan.net_rate, rate, source, gain), rate)
