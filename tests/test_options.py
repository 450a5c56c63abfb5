"""Option declarations: one field carries default, help, bounds and choices; validate(), the CLI help and the job
spec's checks all come from it."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import dataclass

import pytest

import mmdream
from mmdream.dream.image import DreamParams
from mmdream.errors import ParameterError
from mmdream.jobspec.plan import compile_plan
from mmdream.jobspec.schema import parse_job
from mmdream.options import Options, help_text, option, requirement, seed_option, validate
from mmdream.pipelines.walk import WalkFilmParams


@dataclass(frozen=True)
class Toy(Options):
    steps: int = option(10, "steps", ge=1, le=100)
    rate: float = option(0.5, "rate", gt=0.0, lt=1.0)
    tile: int = option(0, "tile side (0: none)", ge=64, le=512, off=0, unit="pixels")
    mode: str = option("a", "mode", choices=("a", "b"))
    size: int | None = option(None, "size (default: the input's)", ge=16)
    on: bool = option(True, "switch")
    seed: int = seed_option("seed")

    def cross_checks(self) -> list[tuple[bool, str, str]]:
        return [(self.tile == 0 or self.steps < self.tile, "steps", "below the tile")]


@pytest.mark.parametrize("bad,message", [
    ({"steps": 0}, "steps=0 is invalid: it must be an integer from 1 to 100"),
    ({"steps": 101}, "steps=101 is invalid: it must be an integer from 1 to 100"),
    ({"steps": 2.0}, "steps=2.0 is invalid: it must be an integer from 1 to 100"),
    ({"steps": True}, "steps=True is invalid"),
    ({"rate": 1.0}, "rate=1.0 is invalid: it must be a number above 0 and below 1"),
    ({"rate": float("nan")}, "rate=nan is invalid"),
    ({"tile": 32}, "tile=32 is invalid: it must be 0 (off) or an integer from 64 to 512 pixels"),
    ({"mode": "c"}, "mode='c' is invalid: it must be one of a, b"),
    ({"size": 8}, "size=8 is invalid: it must be an integer at least 16"),
    ({"on": 1}, "on=1 is invalid: it must be true or false"),
    ({"seed": -1}, "seed=-1 is invalid: it must be an integer at least 0 and below 2^62"),
    ({"seed": 2**62}, "seed=4611686018427387904 is invalid"),
    ({"tile": 64, "steps": 64}, "steps=64 is invalid: it must be below the tile"),  # a cross check, after the fields
])
def test_a_value_outside_its_declaration_names_the_option(bad: dict, message: str) -> None:
    with pytest.raises(ParameterError) as err:
        Toy(**bad).validate()
    assert str(err.value).startswith(message)


def test_values_within_the_declarations_pass() -> None:
    toy = Toy(steps=100, rate=0.25, tile=512, mode="b", size=16, on=False, seed=2**62 - 1)
    assert toy.validate() is toy and validate(Toy(tile=0, steps=5)) == Toy(tile=0, steps=5)
    assert DreamParams(robust_angle=8).validate().robust_angle == 8  # an int is a number
    with pytest.raises(ParameterError, match="^audio_steps=0 is invalid"):  # shown under another name
        validate(Toy(steps=0), names={"steps": "audio_steps"})


def test_every_params_dataclass_declares_each_option_and_its_defaults_fit() -> None:
    for info in pkgutil.walk_packages(mmdream.__path__, "mmdream."):
        if not info.name.startswith("mmdream.cli"):
            importlib.import_module(info.name)
    found = []
    pending = list(Options.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls.__module__.startswith("mmdream."):
            found.append(cls.__name__)
            assert all(f.metadata.get("help") for f in dataclasses.fields(cls)), cls
            cls().validate()
    assert {"DreamParams", "VideoParams", "FilmParams", "StyledFilmParams", "WalkParams", "WalkFilmParams",
            "AudioDreamParams", "GANParams", "TrainParams"} <= set(found)


def test_cli_help_shows_the_default_and_the_range() -> None:
    assert help_text(DreamParams, "steps") == "ascent steps per octave (default: 10; an integer from 1 to 10000)"
    assert help_text(Toy, "on") == "switch (default: on)" and help_text(Toy, "mode") == "mode (default: a)"
    assert requirement(DreamParams, "tile") == "0 (off) or an integer from 64 to 8192 pixels"


def test_cli_options_come_from_the_declarations(capsys: pytest.CaptureFixture[str]) -> None:
    from mmdream.cli import build_parser

    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["gan", "walk", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "frame rate (default: 25.0; a number from 1 to 120)" in shown
    assert "H.264 quality: 0 lossless .. 51 worst (default: 18; an integer from 0 to 51)" in shown
    args = parser.parse_args(["video", "in.mp4", "out.mp4"])
    assert (args.crf, args.style_frame_steps, args.temporal_loss) == (18, 30, 500.0)


@pytest.mark.parametrize("section,key,value,message", [
    ("walk", "fps", 500, "walk: fps=500.0 is invalid: it must be a number from 1 to 120"),
    ("walk", "crf", 52, "walk: crf=52 is invalid: it must be an integer from 0 to 51"),
    ("walk", "seed", -1, "walk: seed=-1 is invalid: it must be an integer at least 0 and below 2^62"),
    ("style", "frame_steps", 0, "style: frame_steps=0 is invalid: it must be an integer from 1 to 10000"),
    ("sharding", "audio_segment_s", 700, "sharding: audio_segment_s=700.0 is invalid: it must be a number from 1 to "
                                         "600 seconds"),
    ("zoom", "size", 8, "zoom: size=8 is invalid: it must be an integer from 16 to 8192 pixels"),
    ("dream", "steps", 0, "dream: steps=0 is invalid: it must be an integer from 1 to 10000"),
])
def test_the_job_spec_refuses_a_value_outside_the_same_declaration(section: str, key: str, value: object,
                                                                    message: str) -> None:
    spec = {"walk": {"generator": "dcgan_faces64"}, "style": {"images": ["a.jpg"]}}.get(section, {})
    with pytest.raises(ParameterError) as err:
        parse_job({"input": "in.mp4", "output": "out.mp4", section: {**spec, key: value}})
    assert message in str(err.value)


def test_the_job_spec_takes_its_defaults_from_the_declarations() -> None:
    job = parse_job({"input": "music.wav", "output": "walk.mp4", "walk": {"generator": "dcgan_faces64", "size": 64}})
    assert compile_plan(job).walk.film == WalkFilmParams(size=64)  # type: ignore[union-attr]
    styled = compile_plan(parse_job({"input": "in.mp4", "output": "out.mp4", "style": {"images": ["a.jpg"]}}))
    assert styled.picture.style.film.temporal_weight == 500.0  # type: ignore[union-attr]
