"""GAN tests run on one thread (small ops on a shared, busy machine stall badly with more) and share the shared
generators and tiny generated image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def _single_thread(one_thread: None) -> None:
    """Every test here on one thread (the root fixture)."""


@pytest.fixture(scope="session")
def faces(weights_dir: Path):  # type: ignore[no-untyped-def]
    from mmdream.backbones.generators import load_generator

    return load_generator("dcgan_faces64", weights_dir=weights_dir)


@pytest.fixture(scope="session")
def eyes(weights_dir: Path):  # type: ignore[no-untyped-def]
    from mmdream.backbones.generators import load_generator

    return load_generator("dcgan_eyes128", weights_dir=weights_dir)


def shape_image(kind: str, rng: np.random.Generator, size: int = 40) -> Image.Image:
    """A filled disc or square of a random colour and place on a random background, ``size``² RGB."""
    a = np.empty((size, size, 3), np.uint8)
    a[:] = rng.integers(0, 256, 3)
    r = int(rng.integers(6, size // 3))
    cy, cx = rng.integers(r, size - r, 2)
    yy, xx = np.mgrid[:size, :size]
    mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r if kind == "disc" else \
        (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
    a[mask] = rng.integers(0, 256, 3)
    return Image.fromarray(a)


@pytest.fixture(scope="session")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``shapes/disc/*.png`` and ``shapes/square/*.png``: 6 tiny images each."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for kind in ("disc", "square"):
        (root / kind).mkdir()
        for i in range(6):
            shape_image(kind, rng).save(root / kind / f"{i}.png")
    return root
