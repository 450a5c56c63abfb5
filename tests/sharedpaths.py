"""The shared weights and media folders, for fixtures and for module-level test parameters (importable from any
test folder: pytest puts tests/ on the path with the root conftest)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def shared_folder(var: str) -> Path:
    """The folder named by environment variable ``var``; the test fails (never skips) when it is unset."""
    value = os.environ.get(var)
    if not value or not Path(value).is_dir():
        pytest.fail(f"set {var} to the shared folder (.ci/run sets it from ../shared); got {value!r}")
    return Path(value)
