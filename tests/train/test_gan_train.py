"""GAN training on tiny generated shapes: files written per epoch, exact resume, conditional runs, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mmdream.backbones.generators import load_generator
from mmdream.cli import main as cli
from mmdream.errors import MediaError, ParameterError
from mmdream.train.gan import GANParams, load_gan_images, output_paths, train_gan

TINY = GANParams(epochs=2, batch_size=4, size=32, latent_dim=8, ngf=8, ndf=8, seed=3)


def test_load_gan_images_squares_and_labels(shapes: Path) -> None:
    data = load_gan_images(shapes, 32)
    assert data.images.shape == (12, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.classes == () and set(data.labels.tolist()) == {0}
    cond = load_gan_images(shapes, 32, conditional=True)
    assert cond.classes == ("disc", "square") and cond.labels.tolist() == [0] * 6 + [1] * 6


def test_training_writes_checkpoint_grids_curves_history(shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.safetensors"
    epochs: list[dict] = []  # type: ignore[type-arg]
    events = []
    meta = train_gan(load_gan_images(shapes, 32), TINY, out, progress=events.append, on_epoch=epochs.append)
    paths = output_paths(out)
    assert all(p.is_file() for p in paths.values())
    assert (tmp_path / "tiny.samples-e001.png").is_file() and (tmp_path / "tiny.samples-e002.png").is_file()
    history = [json.loads(line) for line in paths["history"].read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2] == [r["epoch"] for r in epochs]
    assert {"d_loss", "g_loss", "d_real", "d_fake", "seconds"} <= history[0].keys()
    assert meta["epoch"] == 2 and meta["generator"]["ngf"] == 8
    assert [e.step for e in events] == list(range(1, 7)) and events[-1].total == 6  # 3 batches of 4 per epoch
    g = load_generator(out)
    assert (g.latent_dim, g.num_classes, g.size) == (8, 0, 32)
    assert not any(p.requires_grad for p in g.parameters()) and not g.training
    x = g.generate(torch.randn(3, 8))
    assert x.shape == (3, 3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1


def test_resume_continues_exactly(shapes: Path, tmp_path: Path) -> None:
    data = load_gan_images(shapes, 32)
    train_gan(data, TINY, tmp_path / "full.safetensors")
    train_gan(data, GANParams(**{**TINY.__dict__, "epochs": 1}), tmp_path / "half.safetensors")
    meta = train_gan(data, TINY, tmp_path / "half.safetensors", resume=True)
    assert meta["epoch"] == 2 and [r["epoch"] for r in meta["history"]] == [1, 2]
    full, half = load_file(tmp_path / "full.resume.safetensors"), load_file(tmp_path / "half.resume.safetensors")
    assert full.keys() == half.keys() and any(k.startswith("opt_d.") for k in full)
    for k in full:
        assert torch.equal(full[k], half[k]), k
    with pytest.raises(ParameterError, match="ngf=8"):
        train_gan(data, GANParams(**{**TINY.__dict__, "ngf": 16, "epochs": 3}), tmp_path / "half.safetensors",
                  resume=True)
    with pytest.raises(ParameterError, match="nothing to resume"):
        train_gan(data, TINY, tmp_path / "none.safetensors", resume=True)


def test_conditional_gan_generates_per_class(shapes: Path, tmp_path: Path) -> None:
    out = tmp_path / "cond.safetensors"
    params = GANParams(**{**TINY.__dict__, "epochs": 1, "conditional": True})
    train_gan(load_gan_images(shapes, 32, conditional=True), params, out)
    g = load_generator(out)
    assert g.num_classes == 2 and g.classes == ("disc", "square") and g.resolve_class("sq") == 1
    z = torch.randn(2, 8)
    a, b = g.generate(z, g.one_hot(0, 2)), g.generate(z, g.one_hot(1, 2))
    assert not torch.equal(a, b)  # the class vector reaches the output
    with pytest.raises(ParameterError, match="class-conditional"):
        g.generate(z)


def test_bad_datasets(shapes: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="not a folder"):
        load_gan_images(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MediaError, match="holds 0 image"):
        load_gan_images(tmp_path / "empty")
    with pytest.raises(MediaError, match="no class folders"):
        load_gan_images(shapes / "disc", conditional=True)
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "disc").symlink_to(shapes / "disc")
    with pytest.raises(ParameterError, match="single class"):
        load_gan_images(tmp_path / "one", conditional=True)
    with pytest.raises(ParameterError, match="--conditional"):
        train_gan(load_gan_images(shapes, 32, conditional=True), TINY, tmp_path / "x.safetensors")


def test_cli_train_then_sample_is_seeded(shapes: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.safetensors"
    assert cli(["gan", "train", str(shapes), "--out", str(out), "--epochs", "1", "--batch-size", "4", "--size",
                "32", "--latent-dim", "8", "--ngf", "8", "--ndf", "8", "--progress", "json"]) == 0
    captured = capsys.readouterr()
    epochs = [json.loads(line) for line in captured.err.splitlines() if '"epoch"' in line and "event" in line]
    assert [e["epoch"] for e in epochs if e["event"] == "epoch"] == [1]
    assert json.loads(captured.out)["epoch"] == 1
    for name, seed in (("a.png", 5), ("b.png", 5), ("c.png", 6)):
        assert cli(["gan", "sample", str(out), str(tmp_path / name), "--count", "4", "--seed", str(seed)]) == 0
    a, b, c = ((tmp_path / n).read_bytes() for n in ("a.png", "b.png", "c.png"))
    assert a == b != c
