"""The shared generators and the generator file formats: layout, strict loading, seeded sampling, grids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mmdream.backbones.generators import GAN_FORMAT, Generator, GeneratorConfig, load_generator, sample_latents
from mmdream.errors import ParameterError, WeightsError

pytestmark = pytest.mark.usefixtures("one_thread")  # small ops on a shared, busy machine stall with more threads


def test_faces64_matches_gans_md(faces) -> None:  # type: ignore[no-untyped-def]
    assert (faces.latent_dim, faces.num_classes, faces.size) == (100, 0, 64)
    assert sum(p.numel() for p in faces.parameters()) == 3_576_704
    assert not faces.training and not any(p.requires_grad for p in faces.parameters())
    y = faces(torch.randn(4, 100, 1, 1, generator=torch.Generator().manual_seed(0)))
    assert y.shape == (4, 3, 64, 64) and -1.0 <= float(y.min()) < -0.9 and float(y.max()) <= 1.0
    x = faces.generate(torch.randn(2, 100))
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_eyes128_is_conditional(eyes) -> None:  # type: ignore[no-untyped-def]
    assert (eyes.latent_dim, eyes.num_classes, eyes.size) == (100, 8, 128)
    assert sum(p.numel() for p in eyes.parameters()) == 12_917_632
    assert eyes.classes[1] == "blue" and eyes.resolve_class("hazel") == 6 and eyes.resolve_class("7") == 7
    z = torch.randn(2, 100)
    blue, red = eyes.generate(z, eyes.one_hot(1, 2)), eyes.generate(z, eyes.one_hot(7, 2))
    assert blue.shape == (2, 3, 128, 128)
    assert float(blue[:, 2].mean() - blue[:, 0].mean()) > float(red[:, 2].mean() - red[:, 0].mean())
    assert torch.equal(blue, eyes.generate(z, eyes.one_hot(1, 2)))  # eval: the dropout is inactive
    with pytest.raises(ParameterError, match="class-conditional"):
        eyes.generate(z)
    with pytest.raises(ParameterError, match="unknown or ambiguous"):
        eyes.resolve_class("purple")


def test_official_package_layout_loads(weights_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The faces package's weights.tar (a torch.save dict with ``netG_state_dict``, read without pickle) is found
    in the weights folder by its own name."""
    state = load_file(weights_dir / "dcgan_faces64.safetensors")
    torch.save({"netG_state_dict": state, "epoch": torch.tensor(5)}, tmp_path / "weights.tar")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    g = load_generator("dcgan_faces64", weights_dir=tmp_path)
    z = torch.randn(1, 100)
    reference = load_generator("dcgan_faces64", weights_dir=weights_dir)
    assert torch.equal(g(z), reference(z))
    by_path = load_generator(weights_dir / "dcgan_faces64.safetensors")  # a shared file given as CKPT
    assert by_path.name == "dcgan_faces64" and torch.equal(by_path(z), reference(z))
    assert load_generator(tmp_path / "weights.tar").name == "dcgan_faces64"


def test_checkpoint_errors(weights_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="unknown generator 'dcgan_cats'"):
        load_generator("dcgan_cats")
    lone = tmp_path / "lone.safetensors"
    save_file(load_file(weights_dir / "dcgan_faces64.safetensors"), lone)
    with pytest.raises(WeightsError, match="no sidecar"):
        load_generator(lone)
    config = {"latent_dim": 100, "num_classes": 0, "ngf": 32, "size": 64, "dropout": 0.0}
    lone.with_suffix(".json").write_text(json.dumps({"format": GAN_FORMAT, "generator": config}))
    with pytest.raises(WeightsError, match="do not fit.*wrong shape"):
        load_generator(lone)
    config["ngf"] = 64
    lone.with_suffix(".json").write_text(json.dumps({"format": GAN_FORMAT, "generator": config}))
    assert load_generator(f"ckpt:{lone}").size == 64
    with pytest.raises(WeightsError, match="does not exist"):
        load_generator(tmp_path / "missing.safetensors")


def test_sampling_is_seeded_and_truncated() -> None:
    g = Generator(GeneratorConfig(latent_dim=16, num_classes=3, ngf=4, size=32), ("a", "b", "c")).eval()
    z1, y1 = sample_latents(g, 5, seed=4)
    z2, y2 = sample_latents(g, 5, seed=4)
    assert torch.equal(z1, z2) and y1 is not None and y2 is not None and torch.equal(y1, y2)
    assert y1.argmax(1).tolist() == [0, 1, 2, 0, 1]
    z, y = sample_latents(g, 50, seed=4, class_index=2, truncation=1.0)
    assert float(z.abs().max()) <= 1.0 and y is not None and (y.argmax(1) == 2).all()
