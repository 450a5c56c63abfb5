"""Shard planning (pure, no Ray): frame ranges with warm-up, and which shard(s) make each output frame.

Shard k owns frames ``[start, stop)``. It dreams from ``first = start - warmup`` (a shot starts there) so that its
temporal state has settled by ``start``; the last ``fade`` warm-up frames ``[start - fade, start)`` are blended
with the previous shard's own frames (a dissolve from the previous shard's dream to this one's), the others are
dropped.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    index: int
    first: int  # first frame dreamed (warm-up start)
    start: int  # first frame owned
    stop: int  # one past the last frame owned and dreamed
    fade: int  # frames before ``start`` blended with the previous shard

    @property
    def name(self) -> str:
        return f"frames-{self.first:06d}-{self.stop:06d}"


def plan_shards(start: int, stop: int, frames_per_shard: int, warmup: int, crossfade: int,
                shards: int | None = None) -> list[Shard]:
    """Split ``[start, stop)`` into shards of ``frames_per_shard`` frames (or into ``shards`` equal parts).

    Warm-up and crossfade are cut where the film begins: shard k never dreams before ``start``.
    """
    count = stop - start
    if count <= 0:
        raise ValueError(f"empty frame range [{start}, {stop})")
    n = shards if shards is not None else -(-count // frames_per_shard)
    n = max(1, min(n, count))
    bounds = [start + round(i * count / n) for i in range(n + 1)]
    out = []
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        w = min(warmup, a - start)
        out.append(Shard(i, a - w, a, b, min(crossfade, w, bounds[i] - bounds[i - 1] if i else 0)))
    return out


def frame_sources(shards: list[Shard]) -> dict[int, list[tuple[int, float]]]:
    """For every output frame, the shards whose dreams make it and their weights (summing to 1)."""
    out: dict[int, list[tuple[int, float]]] = {}
    for shard in shards:
        for t in range(shard.start, shard.stop):
            out.setdefault(t, []).append((shard.index, 1.0))
    for shard in shards:
        for j, t in enumerate(range(shard.start - shard.fade, shard.start)):
            alpha = (j + 1) / (shard.fade + 1)
            (prev, _), = out[t]
            out[t] = [(prev, 1.0 - alpha), (shard.index, alpha)]
    return out
