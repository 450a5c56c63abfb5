"""Shard planning without Ray: coverage, warm-up, crossfade weights."""

from __future__ import annotations

import pytest

from mmdream_cluster.planner import Shard, frame_sources, plan_shards


def test_shards_cover_the_range_once_with_warmup() -> None:
    shards = plan_shards(10, 110, frames_per_shard=30, warmup=8, crossfade=4)
    assert [(s.start, s.stop) for s in shards] == [(10, 35), (35, 60), (60, 85), (85, 110)]
    assert shards[0] == Shard(0, 10, 10, 35, 0)
    assert all(s.first == s.start - 8 and s.fade == 4 for s in shards[1:])


def test_warmup_never_reaches_before_the_film() -> None:
    shards = plan_shards(0, 10, frames_per_shard=3, warmup=5, crossfade=5)
    assert all(s.first >= 0 for s in shards)
    assert shards[1].first == 0 and shards[1].fade <= shards[0].stop - shards[0].start


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_every_frame_is_made_once_with_weights_summing_to_one(n: int) -> None:
    shards = plan_shards(0, 50, frames_per_shard=1000, warmup=6, crossfade=3, shards=n)
    sources = frame_sources(shards)
    assert sorted(sources) == list(range(50))
    for t, parts in sources.items():
        assert abs(sum(w for _, w in parts) - 1.0) < 1e-9
        assert all(shards[k].first <= t < shards[k].stop for k, _ in parts)
    if n > 1:
        fade = [sources[t] for t in range(shards[1].start - 3, shards[1].start)]
        assert [round(p[1][1], 2) for p in fade] == [0.25, 0.5, 0.75]  # the dissolve ramps up


def test_more_shards_than_frames_is_capped() -> None:
    assert len(plan_shards(0, 3, frames_per_shard=1, warmup=0, crossfade=0, shards=10)) == 3
