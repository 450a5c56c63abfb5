"""Job specs: defaults from the algorithms' dataclasses, errors that name the key, URIs that stay put, examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdream.dream.image import DreamParams
from mmdream.dream.temporal import VideoParams
from mmdream.errors import ParameterError
from mmdream.jobspec import load_job, parse_job

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_come_from_the_dataclasses() -> None:
    job = parse_job({"input": "in.mp4", "output": "out/film.mp4"})
    assert job.still_params() == DreamParams() and job.video_params() == VideoParams()
    assert job.work_uri() == "out/.film.mp4.work"
    assert parse_job({"input": "a", "output": "s3://b/x/film.mp4"}).work_uri() == "s3://b/x/.film.mp4.work"


@pytest.mark.parametrize("spec,fragment", [
    ({"dream": {"stepz": 3}}, "dream.stepz: unknown key"),
    ({"colour": "red"}, "colour: unknown key"),
    ({"dream": {"steps": 0}}, "steps=0 is invalid"),
    ({"video": {"flow": "magic"}}, "flow='magic' is invalid"),
    ({"film": {"crf": 99}}, "crf=99 is invalid"),
    ({"sharding": {"warmup": 2, "crossfade": 5}}, "crossfade (5) must not exceed warmup (2)"),
    ({"resources": {"actors": 0}}, "resources.actors"),
    ({"output": "s3://bucket/../other/film.mp4"}, "without '.' or '..'"),
    ({"work": "s3:///nobucket"}, "work:"),
])
def test_bad_values_name_their_key(spec: dict, fragment: str) -> None:
    with pytest.raises(ParameterError, match=None) as err:
        parse_job({"input": "in.mp4", "output": "out.mp4", **spec})
    assert fragment in str(err.value)


def test_missing_required_keys_and_overrides() -> None:
    with pytest.raises(ParameterError, match="output: Field required"):
        parse_job({"input": "in.mp4"})
    job = parse_job({"input": "in.mp4", "output": "out.mp4"}).with_overrides(
        **{"resources.actors": 5, "output": "other.mp4", "input": None})
    assert job.resources.actors == 5 and job.output == "other.mp4" and job.input == "in.mp4"
    with pytest.raises(ParameterError, match="resources.actors"):
        job.with_overrides(**{"resources.actors": -1})


@pytest.mark.parametrize("name", ["demo.yaml", "long_film.yaml"])
def test_shipped_examples_are_valid(name: str) -> None:
    job = load_job(ROOT / "jobs" / name)
    assert job.output.endswith(".mp4")


def test_unreadable_specs(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="does not exist"):
        load_job(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("input: [unclosed")
    with pytest.raises(ParameterError, match="cannot read job spec"):
        load_job(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ParameterError, match="YAML mapping"):
        load_job(tmp_path / "list.yaml")
