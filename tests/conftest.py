"""Shared fixtures: the shared weights and media folders (from MMDREAM_WEIGHTS / MMDREAM_MEDIA), loaded backbones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never download weights: a missing file must be an error, not a silent fetch.
os.environ["MMDREAM_OFFLINE"] = "1"


def shared_folder(var: str) -> Path:
    """The folder named by environment variable ``var``; the test fails (never skips) when it is unset."""
    value = os.environ.get(var)
    if not value or not Path(value).is_dir():
        pytest.fail(f"set {var} to the shared folder (.ci/run sets it from ../shared); got {value!r}")
    return Path(value)


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    return shared_folder("MMDREAM_WEIGHTS")


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return shared_folder("MMDREAM_MEDIA")


@pytest.fixture(scope="session")
def vgg16(weights_dir: Path):  # type: ignore[no-untyped-def]
    from mmdream.backbones import load_backbone

    return load_backbone("vgg16", weights_dir=weights_dir)


@pytest.fixture(scope="session")
def effnet(weights_dir: Path):  # type: ignore[no-untyped-def]
    from mmdream.backbones import load_backbone

    return load_backbone("efficientnet_lite0", weights_dir=weights_dir)
