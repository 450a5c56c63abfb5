"""`mmdream render` and `mmdream submit` find setup errors before any work: one line, exit status 2, Ray never
imported, nothing written (the preflight, :mod:`mmdream.jobspec.preflight`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from mmdream.cli import main
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import parse_job
from mmdream.jobspec.preflight import check_job


@pytest.fixture
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Importing Ray (or the cluster modules) fails: a command that got past the preflight would raise."""
    for name in ("ray", "mmdream_cluster.driver", "mmdream_cluster.jobs_api"):
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def silent_film(tmp_path: Path) -> Path:
    from mmdream.media.video import VideoWriter

    path = tmp_path / "silent.mp4"
    with VideoWriter(path, fps=25, preset="ultrafast") as writer:
        for i in range(4):
            writer.write(np.full((32, 48, 3), 40 * i, np.uint8))
    return path


def base_job(media_dir: Path, tmp_path: Path) -> dict[str, Any]:
    """A small film job that dreams picture and sound (EfficientNet-Lite0 and YAMNet): it passes the preflight."""
    return {"input": str(media_dir / "video" / "bbb_320x180.mp4"), "output": str(tmp_path / "out" / "film.mp4"),
            "backbone": {"name": "efficientnet_lite0"}, "theme": "dog", "film": {"size": 64, "stop": 4},
            "resources": {"actors": 1}}


def _set(spec: dict[str, Any], key: str, value: Any) -> None:
    *path, last = key.split(".")
    node = spec
    for part in path:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(last, None)
    else:
        node[last] = value


CASES: dict[str, tuple[dict[str, Any], str]] = {
    "missing input": ({"input": "{tmp}/nope.mp4"}, "does not exist"),
    "input is a folder without frames": ({"input": "{tmp}/empty"}, "holds no numbered images"),
    "input without a picture": ({"input": "{media}/audio/dog_bark.wav"}, "no video stream"),
    "input without the sound the job dreams": ({"input": "{silent}"}, "no audio stream"),
    "sound follows an input without sound": ({"input": "{silent}", "theme": None, "av.drive": "rms",
                                              "backbone.name": "vgg16"}, "no audio stream"),
    "audio job on an image": ({"input": "{tmp}/text.png", "output": "{tmp}/out.wav", "theme": None,
                               "audio": {"objective": {"class": "Bark"}}}, "text.png"),
    "output cannot be created": ({"output": "/proc/mmdream/film.mp4"}, "cannot be written"),
    "output is the input": ({"output": "{media}/video/bbb_320x180.mp4"}, "is the input"),
    "output without a film suffix": ({"output": "{tmp}/film.avi"}, "no video suffix"),
    "output inside a file": ({"output": "{tmp}/text.png/film.mp4"}, "is a file, not a folder"),
    "work location is a file": ({"work": "{tmp}/text.png"}, "is a file"),
    "preview is not a png": ({"preview": "{tmp}/p.jpg"}, ".png"),
    "empty frame range": ({"film.start": 500, "film.stop": None}, "selects no frame"),
    "GPU actors on a machine without one": ({"resources.gpus_per_actor": 1}, "has no GPU"),
    "weights missing offline": ({"weights": "{tmp}/empty"}, "MMDREAM_OFFLINE"),
    "corrupt weights": ({"weights": "{tmp}/broken"}, "efficientnet_lite0.safetensors"),
    "unknown layer": ({"theme": None, "objective.layers": "block99"}, "unknown layer 'block99'"),
    "unknown sound class": ({"theme": None, "audio": {"objective": {"class": "unicorn"}}}, "no class"),
    "missing style image": ({"theme": None, "backbone.name": "vgg16", "style": {"images": ["{tmp}/nope.jpg"]}},
                            "nope.jpg"),
    "unknown walk class": ({"theme": None, "backbone": None, "input": "{media}/audio/dog_bark.wav",
                            "walk": {"generator": "dcgan_eyes128", "class": "purple"}}, "purple"),
}


def _prepare(tmp_path: Path, media_dir: Path, weights_dir: Path, silent_film: Path, case: str) -> Path:
    (tmp_path / "text.png").write_text("not a picture")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    data = (weights_dir / "efficientnet_lite0.safetensors").read_bytes()
    (tmp_path / "broken" / "efficientnet_lite0.safetensors").write_bytes(data[: len(data) // 3])
    spec = base_job(media_dir, tmp_path)
    changes, _ = CASES[case]
    for key, value in changes.items():
        text = yaml.safe_dump(value).format(tmp=tmp_path, media=media_dir, silent=silent_film)
        _set(spec, key, yaml.safe_load(text))
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_render_refuses_before_ray(case: str, tmp_path: Path, media_dir: Path, weights_dir: Path,
                                   silent_film: Path, no_ray: None, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setenv("MMDREAM_WEIGHTS", str(weights_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # an empty user cache
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    job = _prepare(tmp_path, media_dir, weights_dir, silent_film, case)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    code = main(["render", str(job), "--progress", "none"])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mmdream: error: "), err
    assert CASES[case][1] in err, err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "written before the refusal"


def test_submit_refuses_before_reaching_the_cluster(tmp_path: Path, media_dir: Path, weights_dir: Path,
                                                   silent_film: Path, no_ray: None,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The same checks run on the submitting machine: the bad input is named, the (unreachable) head never
    contacted."""
    monkeypatch.setenv("MMDREAM_WEIGHTS", str(weights_dir))
    job = _prepare(tmp_path, media_dir, weights_dir, silent_film, "input without the sound the job dreams")
    code = main(["submit", str(job), "--address", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2 and "no audio stream" in err and len(err.strip().splitlines()) == 1, err


def test_a_good_job_passes_and_writes_nothing(tmp_path: Path, media_dir: Path, weights_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMDREAM_WEIGHTS", str(weights_dir))
    lines: list[str] = []
    check_job(compile_plan(parse_job(base_job(media_dir, tmp_path))), local_ray=True, say=lines.append)
    assert lines == [] and list(tmp_path.iterdir()) == []  # nothing fetched, the output folder not yet made


def test_s3_locations_are_checked(s3_server, tmp_path: Path, media_dir: Path, weights_dir: Path,  # type: ignore[no-untyped-def]
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from mmdream.errors import MediaError

    for key, value in {**s3_server.env, "MMDREAM_WEIGHTS": str(weights_dir)}.items():
        monkeypatch.setenv(key, value)
    spec = base_job(media_dir, tmp_path)
    with pytest.raises(MediaError, match="does not exist"):
        check_job(compile_plan(parse_job({**spec, "input": f"s3://{s3_server.bucket}/nope.mp4"})), local_ray=True)
    with pytest.raises(MediaError, match="bucket 'no-such-bucket' does not exist"):
        check_job(compile_plan(parse_job({**spec, "output": "s3://no-such-bucket/film.mp4"})), local_ray=True)
