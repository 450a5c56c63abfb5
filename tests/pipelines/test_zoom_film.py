"""Zoom films end to end at tiny sizes: frames, rate and sound of the film; a killed render resumes to the same
frames; checkpoints of other settings are refused; a sound drives motion and strength; a film input starts from
its last frame; the sound can be dreamed; drafts keep apart and the full render reuses nothing wrong."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mmdream.schedules.drive import AVParams
from mmdream.cli import main
from mmdream.dream.audio import AudioDreamParams, sound_objective
from mmdream.dream.image import DreamParams
from mmdream.dream.zoom import ZoomParams
from mmdream.errors import ParameterError
from mmdream.pipelines.store import FrameStore
from mmdream.media import storage
from mmdream.media.video import probe, read_audio, read_frames
from mmdream.objectives.terms import build_objective
from mmdream.pipelines.zoom import (SoundDream, ZoomFilmParams, dream_zoom_range, plan_zoom, render_zoom, zoom_plan_schedules,
                          zoom_settings)

STILL = DreamParams(steps=1, octaves=1)
FAST = ZoomParams(frame_steps=1, frame_octaves=1, zoom=1.5)


@pytest.fixture
def photo(media_dir: Path) -> Path:
    return media_dir / "images" / "chelsea.png"


@pytest.fixture
def amen(media_dir: Path) -> Path:
    return media_dir / "audio" / "music_loop_amen_full.wav"


def _frames(work: str) -> list[bytes]:
    return [(Path(work) / "frames" / n).read_bytes() for n in sorted(os.listdir(Path(work) / "frames"))
            if n.endswith(".png")]


def test_zoom_film_has_its_frames_rate_and_size(photo: Path, tmp_path: Path,
                                                effnet) -> None:  # type: ignore[no-untyped-def]
    plan = plan_zoom(photo, ZoomFilmParams(seconds=1.0, fps=6.0), size=48)
    out = tmp_path / "zoom.mp4"
    records = render_zoom(plan, out, effnet, build_objective(effnet), STILL, FAST)
    info = probe(out)
    assert (info.frame_count, info.fps, info.width, info.height, info.audio) == (6, 6.0, 48, 32, None)
    assert [r["index"] for r in records] == list(range(6))
    assert records[1]["scale"] == pytest.approx(1.5 ** (1 / 6))
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # the default work folder is gone
    frames = list(read_frames(out))
    assert np.abs(frames[-1].astype(float) - frames[0].astype(float)).mean() > 5  # it moved


def test_a_killed_zoom_resumes_to_the_same_frames(photo: Path, tmp_path: Path,
                                                 effnet) -> None:  # type: ignore[no-untyped-def]
    objective = build_objective(effnet)
    plan = plan_zoom(photo, ZoomFilmParams(seconds=1.0, fps=5.0), size=48)
    whole = tmp_path / "whole"
    render_zoom(plan, tmp_path / "a.mp4", effnet, objective, STILL, FAST, work_dir=whole)
    part = tmp_path / "part"
    schedule, _ = zoom_plan_schedules(plan, FAST, AVParams())
    spec = {"layers": list(objective.layers), "backbone": effnet.name}
    work = FrameStore(storage.join(str(part), "frames"), zoom_settings(plan, STILL, FAST, schedule, spec))
    dream_zoom_range(plan, work, schedule, effnet, objective, STILL, FAST, stop=3)  # killed after frame 2
    assert len(_frames(str(part))) == 3
    render_zoom(plan, tmp_path / "b.mp4", effnet, objective, STILL, FAST, work_dir=part)
    assert _frames(str(part)) == _frames(str(whole))  # byte for byte
    with pytest.raises(ParameterError, match="other settings"):
        render_zoom(plan, tmp_path / "c.mp4", effnet, objective, STILL, ZoomParams(frame_steps=1, frame_octaves=1),
                    work_dir=part)


def test_the_sound_drives_motion_and_strength_and_the_film_carries_it(photo: Path, amen: Path, tmp_path: Path,
                                                                      effnet) -> None:  # type: ignore[no-untyped-def]
    plan = plan_zoom(photo, ZoomFilmParams(seconds=2.0, fps=10.0), size=48, audio=amen)
    out = tmp_path / "z.mp4"
    records = render_zoom(plan, out, effnet, build_objective(effnet), STILL, FAST, AVParams(drive="onset"))
    info = probe(out)
    assert info.frame_count == 20 and info.audio is not None
    assert info.audio.duration_s == pytest.approx(2.0, abs=0.05)
    drive = np.array([r["drive"] for r in records[1:]])
    log_scale = np.log([r["scale"] for r in records[1:]])
    assert drive.std() > 0.04  # the amen break is no steady sound (0.05: av.max_change bounds the depth at 10 fps)
    assert np.allclose(log_scale, drive * np.log(1.5) / 10.0)
    detail = np.array([r["detail"] for r in records[1:]])
    assert np.corrcoef(drive, detail)[0, 1] > 0.5  # the dream is stronger where the drive is
    with pytest.raises(ParameterError, match="need a sound"):
        zoom_plan_schedules(plan_zoom(photo, ZoomFilmParams(seconds=1.0, fps=5.0), size=48), FAST,
                            AVParams(drive="rms"))


def test_chroma_picks_the_channel_groups(photo: Path, amen: Path, effnet) -> None:  # type: ignore[no-untyped-def]
    plan = plan_zoom(photo, ZoomFilmParams(seconds=1.0, fps=5.0), size=48, audio=amen)
    _, chroma = zoom_plan_schedules(plan, FAST, AVParams(channels_follow="chroma"))
    assert chroma is not None and len(chroma) == 5
    assert all(sum(w) == pytest.approx(1.0, abs=1e-4) for w in chroma)


def test_a_film_input_starts_from_its_last_frame_and_carries_its_sound(media_dir: Path) -> None:
    bbb = media_dir / "video" / "bbb_320x180.mp4"
    plan = plan_zoom(bbb, ZoomFilmParams(seconds=1.0, fps=5.0), size=64)
    last = list(read_frames(bbb, size=(64, 36)))[-1]
    assert np.abs(plan.start.permute(1, 2, 0).numpy() * 255 - last).max() <= 1
    assert plan.sound_path == str(bbb) and plan.frames == 5


def test_the_sound_can_be_dreamed_too(photo: Path, amen: Path, tmp_path: Path,
                                      effnet, yamnet) -> None:  # type: ignore[no-untyped-def]
    plan = plan_zoom(photo, ZoomFilmParams(seconds=1.5, fps=4.0), size=32, audio=amen)
    sound = SoundDream(yamnet, sound_objective(yamnet, class_="Bark"), AudioDreamParams(steps=2),
                       {"class": "Bark"})
    out = tmp_path / "z.mp4"
    render_zoom(plan, out, effnet, build_objective(effnet), STILL, FAST, sound=sound)
    dreamed, rate = read_audio(out)
    source, _ = read_audio(amen, duration_s=dreamed.shape[-1] / rate)
    n = min(dreamed.shape[-1], source.shape[-1])
    assert dreamed.shape[-1] / rate == pytest.approx(1.5, abs=0.05)
    change = dreamed[:, :n] - source[:, :n]
    assert np.sqrt((change ** 2).mean()) > 0.01  # well above AAC's own error on an unchanged sound


def run_cli(*args: str, capsys: pytest.CaptureFixture[str]) -> str:
    """``mmdream ARGS`` in this process; its stderr."""
    capsys.readouterr()
    assert main(list(args)) == 0, capsys.readouterr().err
    return capsys.readouterr().err


ZOOM_CLI = ["-b", "efficientnet_lite0", "--steps", "1", "--octaves", "1", "--frame-steps", "1", "--frame-octaves",
            "1", "--seconds", "1", "--fps", "8", "--progress", "none"]


def test_cli_draft_keeps_apart_and_the_full_render_reuses_nothing_wrong(photo: Path, amen: Path, tmp_path: Path,
                                                                        weights_dir: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    work, out = tmp_path / "work", tmp_path / "z.mp4"
    args = ["zoom", str(photo), str(out), *ZOOM_CLI, "--size", "64", "--audio", str(amen), "--drive", "rms",
            "--weights", str(weights_dir), "--work-dir", str(work)]
    err = run_cli(*args, "--draft", capsys=capsys)
    event = json.loads([line for line in err.splitlines() if '"draft"' in line][0])
    assert event["frames"] == 2 and not out.exists()
    draft = probe(tmp_path / "z.draft.mp4")
    assert (draft.frame_count, draft.fps, draft.width) == (2, 2.0, 32) and draft.audio is not None
    assert (tmp_path / "z.draft.png").stat().st_size > 0
    assert len(_frames(str(work / "draft"))) == 2
    run_cli(*args, capsys=capsys)  # the full render in the same work folder
    fresh = tmp_path / "fresh"
    run_cli(*args[:-1], str(fresh), capsys=capsys)
    assert _frames(str(work)) == _frames(str(fresh))  # nothing of the draft leaked into the full render
    full = probe(out)
    assert (full.frame_count, full.fps, full.width) == (8, 8.0, 64)


def test_cli_zoom_records_its_settings_and_like_repeats_it_byte_for_byte(photo: Path, tmp_path: Path,
                                                                        weights_dir: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from mmdream.provenance import read_record

    first, again = tmp_path / "a.mp4", tmp_path / "b.mp4"
    run_cli("zoom", str(photo), str(first), *ZOOM_CLI, "--size", "48", "--zoom", "1.4", "--rotate", "5",
            "--weights", str(weights_dir), capsys=capsys)
    record = read_record(first)
    assert record is not None and record["command"] == "zoom"
    assert record["params"]["ZoomParams"]["zoom"] == 1.4 and record["options"]["size"] == 48
    run_cli("zoom", str(photo), str(again), "--like", str(first), "--progress", "none", "--weights",
            str(weights_dir), capsys=capsys)
    assert again.read_bytes() == first.read_bytes()
