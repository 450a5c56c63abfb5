"""The option machinery the command families share (mmdream.cli.common): options generated from a params
dataclass's fields, filled back into the dataclass, and the two channel-list syntaxes."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import pytest

from mmdream.cli.analyze import channel_selection
from mmdream.cli.common import UsageErrorParser, add_dataclass_options, params_from_args, weighted_channels
from mmdream.errors import ParameterError


@dataclass(frozen=True)
class Knobs:
    steps: int = field(default=10, metadata={"help": "ascent steps", "ge": 1, "le": 100})
    rate: float = field(default=0.5, metadata={"help": "step rate", "aliases": ("-r",)})
    mode: str = field(default="fast", metadata={"help": "how", "choices": ("fast", "slow")})
    colours: str = field(default="none", metadata={"help": "keep colours", "choices": ("none", "luma", "hist"),
                                                    "const": "luma", "metavar": "MODE"})
    fps: float | None = field(default=None, metadata={"help": "frame rate (default: the input's)", "metavar": "FPS"})
    label: int = field(default=3, metadata={"help": "label as text", "type": str})
    hold: bool = field(default=True, metadata={"help": "hold it"})

    def validate(self) -> Knobs:
        if self.steps > 100:
            raise ParameterError(f"steps={self.steps} is invalid: at most 100")
        return self


def parser() -> argparse.ArgumentParser:
    p = UsageErrorParser(prog="knobs")
    add_dataclass_options(p, Knobs, exclude=("label",))
    return p


def test_every_field_becomes_an_option_with_its_default() -> None:
    args = parser().parse_args([])
    assert params_from_args(Knobs, args, label=3) == Knobs()
    args = parser().parse_args(["--steps", "7", "-r", "2", "--mode", "slow", "--colours", "--fps", "24",
                                "--no-hold"])
    assert params_from_args(Knobs, args, label=3) == Knobs(steps=7, rate=2.0, mode="slow", colours="luma",
                                                           fps=24.0, hold=False)
    assert parser().parse_args(["--colours", "hist"]).colours == "hist"


def test_help_shows_defaults_choices_and_metavars() -> None:
    text = " ".join(parser().format_help().split())
    assert "--steps N ascent steps (default: 10; an integer from 1 to 100)" in text  # mmdream.options.help_text
    assert "--rate N, -r N step rate (default: 0.5)" in text
    assert "--mode {fast,slow} how (default: fast)" in text
    assert "--colours [MODE] keep colours: luma (default when given) or hist" in text
    assert "--fps FPS frame rate (default: the input's)" in text  # a None default: the help says what it means
    assert "--hold, --no-hold hold it (default: on)" in text
    assert "--label" not in text


def test_only_picks_fields_and_type_overrides_the_annotation() -> None:
    p = argparse.ArgumentParser()
    add_dataclass_options(p, Knobs, only=("label",))
    assert vars(p.parse_args(["--label", "12"])) == {"label": "12"}


def test_bad_values_are_usage_errors_and_validate_runs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(["--mode", "medium"])
    assert exit_info.value.code == 2
    assert "(see `knobs --help`)" in capsys.readouterr().err
    with pytest.raises(ParameterError, match="steps=101"):
        params_from_args(Knobs, parser().parse_args(["--steps", "101"]), label=3)


def test_the_two_channel_syntaxes() -> None:
    assert weighted_channels("12,40:2,7:-1") == ((12, 1.0), (40, 2.0), (7, -1.0))
    assert channel_selection("0,5,9-11") == [0, 5, 9, 10, 11]
    assert channel_selection("all") == "all"
    with pytest.raises(argparse.ArgumentTypeError):
        channel_selection("9-x")
    with pytest.raises(argparse.ArgumentTypeError):
        weighted_channels("a:b")
