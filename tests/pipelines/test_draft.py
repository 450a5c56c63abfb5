"""Drafts: where they go, which frames and size they take, and that a full render after a draft in the same work
folder reuses nothing of it (`mmdream video --draft`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmdream.cli import main
from mmdream.pipelines.draft import DraftParams, draft_film, draft_paths
from mmdream.errors import ParameterError
from mmdream.pipelines.film import FilmParams, plan_film
from mmdream.media.video import probe


def test_draft_paths_sit_beside_the_output_and_apart_from_its_work() -> None:
    p = draft_paths("out/film.mp4")
    assert (p.film, p.sheet, p.work) == ("out/film.draft.mp4", "out/film.draft.png", "out/.film.draft.mp4.work")
    assert draft_paths("s3://b/k/film.mkv", "s3://b/work").work == "s3://b/work/draft"
    assert draft_paths("film.mp4", "w").work == "w/draft"


def test_a_draft_takes_every_nth_frame_of_the_range_at_a_smaller_size(media_dir: Path) -> None:
    bbb = media_dir / "video" / "bbb_320x180.mp4"
    full = plan_film(bbb, FilmParams(size=160))
    film = draft_film(bbb, FilmParams(size=160, start=8, stop=50), DraftParams(draft_every=4, draft_scale=0.5))
    plan = plan_film(bbb, film)
    assert (plan.width, plan.fps) == (80, full.fps / 4)
    assert (plan.start, plan.stop) == (2, 13)  # frames 8..49 -> every 4th: 8, 12, ..., 48
    with pytest.raises(ParameterError, match="draft_every=0"):
        DraftParams(draft_every=0).validate()


def test_video_draft_then_full_render_in_the_same_work_folder(media_dir: Path, tmp_path: Path, weights_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    bbb, work, out = media_dir / "video" / "bbb_320x180.mp4", tmp_path / "work", tmp_path / "v.mp4"
    args = ["video", str(bbb), str(out), "-b", "efficientnet_lite0", "--weights", str(weights_dir), "--size", "64",
            "--steps", "1", "--octaves", "1", "--frame-steps", "1", "--frames", "0:12", "--progress", "none",
            "--work-dir", str(work)]
    assert main([*args, "--draft"]) == 0
    event = json.loads([line for line in capsys.readouterr().err.splitlines() if '"draft"' in line][0])
    draft = probe(tmp_path / "v.draft.mp4")
    assert event["frames"] == draft.frame_count == 3 and draft.width == 32 and draft.audio is not None
    assert (tmp_path / "v.draft.png").stat().st_size > 1000 and not out.exists()
    assert len(list((work / "draft").glob("0*.png"))) == 3 and not list(work.glob("0*.png"))
    assert main(args) == 0
    fresh = tmp_path / "fresh"
    assert main([*args[:-1], str(fresh)]) == 0
    frames = sorted(work.glob("0*.png"))
    assert len(frames) == 12
    assert [p.read_bytes() for p in frames] == [p.read_bytes() for p in sorted(fresh.glob("0*.png"))]
