"""Job specs with frame sequences: a 16-bit sequence in, 16-bit PNGs out (numbered like the input) on Ray, and a
sequence plus a sound rendered into a film; both carry the job's record."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mmdream_cluster.driver import render_job
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import parse_job
from mmdream.media.video import probe
from mmdream.provenance import read_record


def frames16(folder: Path) -> None:
    folder.mkdir()
    ramp = np.round(np.linspace(0, 65535, 300)).astype(np.uint16)
    for i in range(4):
        rgb = np.stack([np.broadcast_to(ramp, (48, 300)), np.broadcast_to(ramp[::-1], (48, 300)),
                        np.full((48, 300), 9000 * i, np.uint16)], -1)
        cv2.imwrite(str(folder / f"plate.{i + 100:04d}.png"), rgb[..., ::-1])


def spec(inp: str, out: str, weights_dir: Path, **extra: object):  # type: ignore[no-untyped-def]
    data = {"input": inp, "output": out, "weights": str(weights_dir), "objective": {"layers": "relu3_3"},
            "dream": {"steps": 1, "octaves": 1, "step_size": 0.0005},
            "video": {"frame_steps": 1, "frame_step_size": 0.0005}, "film": {"fps": 8},
            "sharding": {"frames_per_shard": 2, "warmup": 1, "crossfade": 0}, "resources": {"actors": 2},
            "preview": False}
    data.update(extra)
    return compile_plan(parse_job(data))


def test_sixteen_bit_sequence_renders_to_a_sequence_and_to_a_film(local_ray, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                   weights_dir: Path, media_dir: Path) -> None:
    frames16(tmp_path / "plates")
    (tmp_path / "out").mkdir()
    render_job(spec(str(tmp_path / "plates" / "plate.%04d.png"), f"{tmp_path / 'out'}/", weights_dir,
                    film={"fps": 8, "bit_depth": 16}))
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [f"plate.{n:04d}.png" for n in range(100, 104)]
    x = cv2.imread(str(tmp_path / "out" / "plate.0102.png"), cv2.IMREAD_UNCHANGED)
    assert x.dtype == np.uint16 and len(np.unique(x[..., 2])) > 256  # channel 2: red (OpenCV's BGR)
    assert read_record(tmp_path / "out" / "plate.0100.png")["command"] == "render"
    film = tmp_path / "film.mp4"
    render_job(spec(str(tmp_path / "plates"), str(film), weights_dir,
                    film={"fps": 8, "audio_file": str(media_dir / "audio" / "music_ambi_piano.wav")}))
    info = probe(film)
    assert info.frame_count == 4 and info.audio is not None and abs(info.audio.duration_s - 0.5) < 0.05
    record = read_record(film)
    assert record["command"] == "render" and record["networks"][0]["name"] == "vgg16"
    assert record["extra"]["job"]["film"]["audio_file"].endswith("music_ambi_piano.wav")
