"""The CLI called in this process, as a test sees it (importable from any test folder, like sharedpaths)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmdream.cli import main


def call_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``mmdream ARGV``: its exit status (argparse's too), stdout and stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_refused(code: int, err: str, folder: Path, before: set[str]) -> None:
    """Exit status 2, one line of error (``mmdream: error: ...``, or argparse's ``mmdream image: error: ...``), and
    ``folder`` holding exactly the names ``before`` (nothing written)."""
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and re.match(r"mmdream( [a-z-]+)*: error: ", err), err
    assert {p.name for p in folder.iterdir()} == before, "files written on failure"
