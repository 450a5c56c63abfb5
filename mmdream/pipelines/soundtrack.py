"""A sound dreamed segment by segment, with checkpoints: the unit the Ray layer shards (and the reducer joins).

The audio dream (:mod:`mmdream.dream.audio`) works on the clip mixed to mono at the network's rate (``x``, 16 kHz
for YAMNet), cut into overlapping segments; each segment's change is found on its own (its own seed) and saved,
so segments can be dreamed in any order, on any machine, and a rerun skips the finished ones. The join is the
same as :func:`mmdream.dream.audio.dream_audio`'s: crossfaded overlap-add, ``mix``, back to the source's rate,
added to every channel, loudness kept and peaks limited. So a sharded dream equals the in-process one.

>>> plan, x = plan_soundtrack(source, rate, params, backbone.sample_rate)
>>> store = SegmentStore(work_uri, settings)
>>> for i, (a, b) in enumerate(plan.segments):          # dream_segment: mmdream.dream.audio's
...     store.save(i, dream_segment(x[a:b], plan, i, backbone, objective, params))
>>> out = join_soundtrack(source, plan, [store.load(i) for i in range(len(plan.segments))], params)
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from mmdream.dream.audio import AudioDreamParams, SegmentPlan, fit_level, plan_dream_segments
from mmdream.errors import ParameterError
from mmdream.pipelines.film import fingerprint
from mmdream.media import storage
from mmdream.media.audio import load_audio, resample
from mmdream.media.video import read_audio
from mmdream.ops.segments import overlap_add

__all__ = ["plan_soundtrack", "join_soundtrack", "SegmentStore", "read_soundtrack", "soundtrack_settings"]

def plan_soundtrack(source: torch.Tensor, rate: int, params: AudioDreamParams, net_rate: int
                    ) -> tuple[SegmentPlan, torch.Tensor]:
    """The plan and the network's input ``x`` ``(n,)`` float32 (``source`` ``(C, n)`` at ``rate``, mixed to mono
    and resampled to ``net_rate``), as :func:`mmdream.dream.audio.dream_audio` makes them."""
    mono = source.detach().reshape(-1, source.shape[-1]).mean(dim=0).double().cpu().numpy()
    x = torch.from_numpy(np.ascontiguousarray(resample(mono, rate, net_rate), dtype=np.float32))
    return plan_dream_segments(x.shape[-1], float(x.double().square().mean().sqrt()), net_rate, params), x


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
    """What makes a soundtrack's segments what they are (a :class:`SegmentStore` refuses segments of others)."""
    return {"input": fingerprint(path), "start_s": start_s, "samples": source.shape[-1], "rate": rate,
            "params": dataclasses.asdict(params), "objective": objective}


def join_soundtrack(source: torch.Tensor, rate: int, plan: SegmentPlan, pieces: Sequence[torch.Tensor],
                    params: AudioDreamParams, gain: tuple[np.ndarray, float] | None = None) -> torch.Tensor:
    """``source`` ``(C, n)`` at ``rate`` plus the joined change of ``pieces`` (in segment order), at the source's
    loudness with no sample beyond full scale; ``(C, n)``. ``gain``: per-frame multipliers of the change and their
    frame rate (the picture sets the sound dream's intensity, :func:`mmdream.schedules.drive.sound_gain`)."""
    if len(pieces) != len(plan.segments):
        raise ParameterError(f"{len(pieces)} dreamed segments for a plan of {len(plan.segments)}")
    change = overlap_add([p.float() for p in pieces], plan.samples, plan.overlap) * params.mix
    n = source.shape[-1]
    back = resample(change.double().numpy(), plan.net_rate, rate)[:n]
    if gain is not None:
        curve, fps = gain
        back = back * np.interp(np.arange(back.shape[-1]) * (fps / rate), np.arange(len(curve)), curve)
    full = torch.zeros(n, dtype=source.dtype)
    full[:back.shape[-1]] = torch.from_numpy(np.ascontiguousarray(back)).to(source.dtype)
    return fit_level(source.detach().cpu(), full, window=max(1, round(0.005 * rate)))


class SegmentStore:
    """Finished segment changes ``NNNNN.npy`` and the settings that made them, in a folder or under an ``s3://``
    prefix (each write atomic). A store made with other settings is refused, so no stale segment is ever joined."""

    def __init__(self, uri: str, settings: dict[str, Any]) -> None:
        self.uri = uri
        self.settings = storage.bind_settings(uri, settings, "sound segments")

    def _uri(self, index: int) -> str:
        return storage.join(self.uri, f"{index:05d}.npy")

    def finished(self) -> set[int]:
        return {int(n[:-4]) for n in storage.listdir(self.uri) if n.endswith(".npy") and n[:-4].isdigit()}

    def save(self, index: int, change: torch.Tensor) -> None:
        buffer = io.BytesIO()
        np.save(buffer, change.detach().cpu().numpy().astype(np.float32))
        storage.write_bytes(self._uri(index), buffer.getvalue())

    def load(self, index: int) -> torch.Tensor:
        return torch.from_numpy(np.load(io.BytesIO(storage.read_bytes(self._uri(index)))))
