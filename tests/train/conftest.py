"""Training tests run on one thread: small ops on a shared, busy machine stall badly with more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from mmdream.train.data import AudioDataset, ImageDataset


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def animal_images(media_dir: Path) -> ImageDataset:
    return ImageDataset.from_folder(media_dir / "datasets" / "animals" / "images")


@pytest.fixture(scope="session")
def animal_sounds(media_dir: Path) -> AudioDataset:
    return AudioDataset.open(media_dir / "datasets" / "animals" / "sounds", 16000)
