"""Phase timing: what PhaseTimes counts, and where a film range spends its time."""

from __future__ import annotations

import time
from pathlib import Path

from mmdream.dream.image import DreamParams
from mmdream.dream.temporal import VideoParams
from mmdream.pipelines.film import FilmParams, dream_range, plan_film
from mmdream.pipelines.store import FrameStore
from mmdream.objectives.terms import build_objective
from mmdream.timing import PhaseTimes


def test_phase_times_sum_blocks_and_the_production_of_items() -> None:
    times = PhaseTimes()

    def slow():  # type: ignore[no-untyped-def]
        for i in range(3):
            time.sleep(0.02)
            yield i

    consumed = []
    for item in times.iterate(slow(), "decode"):
        with times.phase("encode"):
            time.sleep(0.01)
        consumed.append(item)
    assert consumed == [0, 1, 2]
    assert 0.06 <= times.seconds["decode"] < 0.2 and 0.03 <= times.seconds["encode"] < 0.15
    assert times.total("decode", "encode", "nothing") == times.seconds["decode"] + times.seconds["encode"]


def test_a_film_range_reports_decode_dream_and_encode(vgg16, media_dir: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                      one_thread: None) -> None:
    video = media_dir / "video" / "bbb_320x180.mp4"
    plan = plan_film(video, FilmParams(size=64, stop=3))
    work = FrameStore(tmp_path / "work", {"test": 1})
    times = PhaseTimes()
    start = time.perf_counter()
    dream_range(video, plan, work, 0, 3, vgg16, build_objective(vgg16, layers="relu3_3"),
                DreamParams(steps=2, octaves=1), VideoParams(frame_steps=1), times=times)
    wall = time.perf_counter() - start
    assert work.finished() == {0, 1, 2}
    assert set(times.seconds) == {"decode", "dream", "encode"} and min(times.seconds.values()) > 0
    assert abs(sum(times.seconds.values()) - wall) < 0.05 * wall  # the phases cover the range's time
    assert times.seconds["dream"] > times.seconds["encode"]
