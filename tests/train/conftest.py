"""Training tests run on one thread: small ops on a shared, busy machine stall badly with more."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmdream.train.data import AudioDataset, ImageDataset


@pytest.fixture(autouse=True)
def _single_thread(one_thread: None) -> None:
    """Every test here on one thread (the root fixture)."""


@pytest.fixture(scope="session")
def animal_images(media_dir: Path) -> ImageDataset:
    return ImageDataset.from_folder(media_dir / "datasets" / "animals" / "images")


@pytest.fixture(scope="session")
def animal_sounds(media_dir: Path) -> AudioDataset:
    return AudioDataset.open(media_dir / "datasets" / "animals" / "sounds", 16000)
