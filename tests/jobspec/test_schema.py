"""Job specs: errors that name the key, URIs that stay put, overrides, examples (what they compile into:
test_plan.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdream.errors import ParameterError
from mmdream.jobspec.schema import load_job, parse_job

ROOT = Path(__file__).resolve().parents[2]


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
    ({"output": "out.wav"}, "an audio-only job (output out.wav) needs an `audio` section"),
    ({"audio": {"dream": {"segment_s": 3}}}, "audio.dream.segment_s: unknown key"),  # set under sharding
    ({"audio": {"dream": {"domain": "fourier"}}}, "domain='fourier' is invalid"),
    ({"audio": {"objective": {"guide": "x.wav"}}}, "audio.objective.guide: unknown key"),
    ({"sharding": {"audio_segment_s": 2, "audio_overlap_s": 1.5}}, "audio_overlap_s=1.5 is invalid: it must be at "
                                                                   "most half the segment length"),
    ({"audio": {}, "film": {"keep_audio": False}}, "the film drops its sound"),
    ({"av": {"drive": "loudness"}}, "drive='loudness' is invalid"),
    ({"av": {"sound_follows": "motion"}}, "av.sound_follows: motion needs a film whose sound is dreamed"),
    ({"theme": "unicorn"}, "unknown theme 'unicorn'"),
    ({"theme": {"image": [1, 2]}}, "needs both image: and sound: class lists"),
    ({"theme": "dog", "objective": {"class": "goldfish"}}, "a theme sets the classes"),
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


@pytest.mark.parametrize("name,kind", [("demo.yaml", "film"), ("long_film.yaml", "film"), ("audio.yaml", "audio"),
                                       ("../bench/film_job.yaml", "film"),
                                       ("music.yaml", "film"), ("dogs.yaml", "film")])
def test_shipped_examples_are_valid(name: str, kind: str) -> None:
    job = load_job(ROOT / "jobs" / name)
    assert job.kind == kind


def test_unreadable_specs(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="does not exist"):
        load_job(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("input: [unclosed")
    with pytest.raises(ParameterError, match="cannot read job spec"):
        load_job(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ParameterError, match="YAML mapping"):
        load_job(tmp_path / "list.yaml")


def test_a_class_objective_without_classifier_is_refused_before_ray_starts(media_dir: Path, tmp_path: Path) -> None:
    import ray

    from mmdream.jobspec.plan import compile_plan
    from mmdream_cluster.driver import render_job

    job = parse_job({"input": str(media_dir / "video" / "bbb_320x180.mp4"), "output": str(tmp_path / "o.mp4"),
                     "backbone": {"name": "vgg16"}, "theme": "dog"})
    with pytest.raises(ParameterError, match="has no classifier; try --variant torchvision"):
        render_job(compile_plan(job))
    assert not ray.is_initialized() and not (tmp_path / "o.mp4").exists()


def test_style_section() -> None:
    job = parse_job({"input": "in.mp4", "output": "out.mp4",
                     "style": {"images": ["a.jpg", "s3://b/s.jpg"], "weights": [0.7, 0.3], "params": {"loss": "w2"}}})
    assert job.style is not None and job.style.params.loss == "w2" and job.style.frame_steps == 30
    for bad, fragment in ((({"images": ["a.jpg"], "weights": [1, 2]}), "2 weights for 1 style images"),
                          ({"images": []}, "style.images"), ({"images": ["a"], "params": {"loss": "l1"}}, "loss=")):
        with pytest.raises(ParameterError, match=None) as err:
            parse_job({"input": "in.mp4", "output": "out.mp4", "style": bad})
        assert fragment in str(err.value)
    with pytest.raises(ParameterError, match="a styled film"):
        parse_job({"input": "in.mp4", "output": "out.mp4", "theme": "dog", "style": {"images": ["a.jpg"]}})
