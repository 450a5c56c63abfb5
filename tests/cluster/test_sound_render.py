"""Sound on Ray: segments dreamed by actors and joined by the reducer equal the in-process dream; audio-only jobs,
films with a dreamed soundtrack whose drums also drive the picture (the same schedule and sound however sharded), and
reruns that skip finished segments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mmdream_cluster.driver import render_job
from mmdream.schedules.drive import film_drive
from mmdream.backbones import load_backbone
from mmdream.dream.audio import sound_objective
from mmdream.pipelines.film import plan_film
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import parse_job
from mmdream.media.audio import load_audio
from mmdream.media.video import probe, read_audio
from mmdream.pipelines.audio import dream_audio
from mmdream.pipelines.soundtrack import plan_soundtrack

DREAM = {"steps": 2, "warps": 2}
SHARDING = {"audio_segment_s": 2.0, "audio_overlap_s": 0.5}


def sound_job(source: Path, out: Path, weights_dir: Path, **extra: object):  # type: ignore[no-untyped-def]
    spec = {"input": str(source), "output": str(out), "weights": str(weights_dir),
            "audio": {"objective": {"class": "Bark"}, "dream": DREAM}, "sharding": SHARDING,
            "resources": {"actors": 2}}
    spec.update(extra)
    return parse_job(spec)


def test_audio_job_equals_the_in_process_dream_and_resumes(local_ray, media_dir: Path,  # type: ignore[no-untyped-def]
                                                           weights_dir: Path, tmp_path: Path) -> None:
    source = media_dir / "audio" / "music_loop_amen_full.wav"
    job = sound_job(source, tmp_path / "amen.wav", weights_dir, work=str(tmp_path / "work"))
    params = compile_plan(job).sound.params
    events: list = []
    render_job(compile_plan(job), progress=events.append)
    got, rate = load_audio(tmp_path / "amen.wav")
    samples, own_rate = load_audio(source)
    assert rate == own_rate and got.shape == samples.shape  # rate, channels and length kept
    yamnet = load_backbone("yamnet", weights_dir=weights_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the actors run: float sums in the same order
    try:
        expected = dream_audio(samples, rate, yamnet, sound_objective(yamnet, class_="Bark"), params)
    finally:
        torch.set_num_threads(threads)
    assert (got - expected).abs().max() < 2e-6  # 24-bit WAV: the in-process dream, to the last bit but one
    assert (got - samples).abs().mean() > 1e-3  # and it did dream
    segments = len(plan_soundtrack(samples, rate, params, 16000)[0].segments)
    assert segments == 5 and events[-1].step == events[-1].total == segments
    assert (tmp_path / "amen.preview.png").stat().st_size > 10_000  # the spectrograms before and after
    # A rerun with one segment lost dreams only that one, and gives the same sound.
    kept = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "work" / "sound").glob("*.npy")}
    (tmp_path / "work" / "sound" / "00002.npy").unlink()
    render_job(compile_plan(job.with_overrides(output=str(tmp_path / "again.wav"))))
    redone = {p.name for p in (tmp_path / "work" / "sound").glob("*.npy") if p.stat().st_mtime_ns != kept.get(p.name)}
    assert redone == {"00002.npy"}
    assert torch.equal(load_audio(tmp_path / "again.wav")[0], got)


def test_film_with_a_dreamed_soundtrack_driving_it(local_ray, media_dir: Path,  # type: ignore[no-untyped-def]
                                                      weights_dir: Path, tmp_path: Path) -> None:
    clip = media_dir / "video" / "bbb_320x180.mp4"
    out = tmp_path / "film.mp4"
    job = sound_job(clip, out, weights_dir, dream={"steps": 1, "octaves": 1}, video={"frame_steps": 1},
                    objective={"layers": "relu4_3"}, film={"size": 64, "start": 10, "stop": 60},
                    sharding={"frames_per_shard": 25, "warmup": 2, "crossfade": 1, "audio_segment_s": 1.2,
                              "audio_overlap_s": 0.3}, av={"drive": "percussive", "channels_follow": "chroma"},
                    work=str(tmp_path / "w3"))
    plan = compile_plan(job)
    render_job(plan, shards=3)
    info = probe(out)
    assert info.frame_count == 50 and info.audio is not None
    heard, rate = read_audio(out)
    source, _ = read_audio(clip, start_s=10 / 25, duration_s=50 / 25)  # the stretch the frames cover
    yamnet = load_backbone("yamnet", weights_dir=weights_dir)
    assert len(plan_soundtrack(torch.from_numpy(source), rate, plan.sound.params, 16000)[0].segments) == 2
    expected = dream_audio(torch.from_numpy(source), rate, yamnet, "Bark", plan.sound.params).numpy()
    n = min(heard.shape[1], expected.shape[1])
    assert abs(heard.shape[1] - source.shape[1]) <= 0.05 * rate
    # AAC and its delay blur the comparison: the muxed sound is much nearer the dreamed one than the source is
    # (measured 0.31x).
    lag = int(np.argmax([np.dot(heard[0, k:n], expected[0, :n - k]) for k in range(0, 4096, 16)])) * 16
    near = np.abs(heard[:, lag:n] - expected[:, :n - lag]).mean()
    far = np.abs(source[:, :n] - expected[:, :n]).mean()
    assert near < 0.5 * far, (near, far)
    # The sound drives the picture: every frame's drive is the one schedule computed before sharding.
    drive = film_drive(str(clip), plan_film(str(clip), plan.picture.film), plan.av)
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "w3").glob("frames-*/0000*.json"))]
    assert records and all(r["drive"] == drive[r["index"]] for r in records)
    # The drums pulse the picture (measured 0.90..1.20), within the flicker budget (a mean change of 0.08 a frame).
    assert max(drive[10:]) > 1.25 * min(drive[10:])
    assert np.abs(np.diff(drive[10:])).mean() <= plan.av.max_change + 1e-9
    # One shard: the same schedule, the same sound to the bit.
    single = job.with_overrides(output=str(tmp_path / "one.mp4"), work=str(tmp_path / "w1"))
    render_job(compile_plan(single), shards=1)
    settings = {p.read_text() for p in (tmp_path / "w1").glob("frames-*/settings.json")}
    assert settings == {p.read_text() for p in (tmp_path / "w3").glob("frames-*/settings.json")}
    assert "chroma_sha256" in settings.pop()  # the sound's chroma chose the channels, frame by frame
    for name in ("00000.npy", "00001.npy"):
        assert (tmp_path / "w1" / "sound" / name).read_bytes() == (tmp_path / "w3" / "sound" / name).read_bytes()
    assert np.array_equal(read_audio(tmp_path / "one.mp4")[0], heard)
    # Each job drew its preview beside its output: frames, both spectrograms, strength and drive curves.
    from PIL import Image

    with Image.open(tmp_path / "film.preview.png") as im:
        assert im.format == "PNG" and im.size[0] >= 1000 and im.size[1] >= 600
