"""Fine-tuning GoogLeNet and Inception v3 where their weights are present, per-dataset normalisation, and
checkpoints on S3.

The GoogLeNet / Inception v3 weights are not among the shared ones: a weights folder holds seeded files in the
published (torchvision) layout, aux heads included, so the whole path runs: weights found and loaded, the body
copied into the fine-tuned net (without aux heads), the head trained, the checkpoint loaded as a backbone.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from mmdream.backbones import class_names, get_spec, imagenet_norm, load_backbone
from mmdream.backbones.checkpoint import DatasetNormalised, read_meta
from mmdream.backbones.nets.googlenet import GoogLeNet
from mmdream.backbones.nets.inception import InceptionV3
from mmdream.errors import ParameterError, WeightsError
from mmdream.media import storage
from mmdream.train.data import ImageDataset, prepare_image
from mmdream.train.finetune import TrainParams, check_training, dataset_stats, save_trained, train_image


@pytest.fixture(scope="module")
def published_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder with seeded GoogLeNet and Inception v3 files in the published layout."""
    folder = tmp_path_factory.mktemp("weights")
    for name, cls in (("googlenet", GoogLeNet), ("inception_v3", InceptionV3)):
        torch.manual_seed(1)
        net = cls()  # 1000 classes, aux heads: the published file's keys and shapes
        save_file({k: v.contiguous() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")},
                  str(folder / f"{name}.safetensors"))
    return folder


@pytest.mark.parametrize(("base", "size", "body_key", "features"), [
    ("googlenet", 64, "inception5b.branch4.1.conv.weight", 1024),
    ("inception_v3", 96, "Mixed_7c.branch_pool.conv.weight", 2048),
])
def test_googlenet_and_inception_fine_tune_from_their_weights(animal_images: ImageDataset, published_layout: Path,
                                                              tmp_path: Path, base: str, size: int, body_key: str,
                                                              features: int) -> None:
    ds = animal_images.subset(range(0, 19, 3))
    result = train_image(ds, base, TrainParams(epochs=3, views=2, size=size, holdout=0, seed=0),
                         weights_dir=published_layout)
    published = load_backbone(base, weights_dir=published_layout).module.state_dict()
    state = result.module.state_dict()
    assert result.meta["cached_features"] and result.meta["preprocess"] == "inception"
    assert torch.equal(state[body_key], published[body_key])  # the frozen body is the published one
    assert not any(k.startswith(("aux", "AuxLogits")) for k in state)
    assert state["fc.weight"].shape == (len(ds.classes), features)
    assert not torch.equal(state["fc.weight"], published["fc.weight"][:len(ds.classes)])
    ckpt = tmp_path / f"{base}.safetensors"
    save_trained(result, str(ckpt))
    bb = load_backbone(f"ckpt:{ckpt}")
    assert bb.classes == ds.classes and get_spec(f"ckpt:{ckpt}").input_size == size
    assert "pool" in bb.layer_names
    x = torch.stack([prepare_image(im, size) for im in ds.images[:3]])
    with torch.no_grad():
        assert torch.allclose(bb.logits(x), result.module(bb.preprocess(x)), atol=1e-5)


def test_dataset_normalisation_is_recorded_and_loaded(animal_images: ImageDataset, tmp_path: Path) -> None:
    ds = animal_images.subset(range(0, 19, 2))
    result = train_image(ds, "small", TrainParams(epochs=2, size=32, holdout=0, normalise="dataset", seed=0))
    images = torch.stack([prepare_image(im, 32) for im in ds.images])
    stats = dataset_stats(images)
    assert result.meta["dataset_stats"] == stats and max(stats["std"]) < 0.2  # cut-outs on grey: 0.11..0.13
    ckpt = tmp_path / "small.safetensors"
    save_trained(result, str(ckpt))
    bb = load_backbone(f"ckpt:{ckpt}")
    assert isinstance(bb.preprocess, DatasetNormalised) and bb.preprocess.base == "centred"
    standardised = bb.preprocess(images)  # the own CNN sees the dataset standardised: mean 0, std 1 per channel
    assert torch.allclose(standardised.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(standardised.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    with torch.no_grad():
        assert torch.allclose(bb.logits(images), result.module(bb.preprocess(images)), atol=1e-5)


def test_dataset_statistics_move_onto_what_a_pretrained_base_expects() -> None:
    """Before an ImageNet-normalised base, the dataset's statistics become ImageNet's: after the base's own
    normalisation the dataset is standardised."""
    torch.manual_seed(0)
    images = torch.rand(6, 3, 16, 16) * 0.5 + 0.3
    stats = dataset_stats(images)
    norm = DatasetNormalised("imagenet", tuple(stats["mean"]), tuple(stats["std"]))
    out = norm(images)
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(out.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    assert not torch.allclose(out, imagenet_norm(images), atol=0.1)


def test_dataset_normalisation_refused_for_sounds() -> None:
    with pytest.raises(ParameterError, match="for images"):
        check_training("mel-small", TrainParams(normalise="dataset"), "audio")


def test_checkpoint_from_s3_is_cached_and_refetched_when_changed(animal_images: ImageDataset, s3_server,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ds = animal_images.subset(range(0, 19, 2))
    result = train_image(ds, "small", TrainParams(epochs=1, size=32, holdout=0, seed=0))
    local = tmp_path / "small.safetensors"
    save_trained(result, str(local))
    prefix = f"s3://{s3_server.bucket}/ckpt-{secrets.token_hex(4)}"
    uri = f"{prefix}/small.safetensors"
    with pytest.raises(WeightsError, match="does not exist"):
        get_spec(f"ckpt:{uri}")
    storage.upload(local, uri)
    storage.upload(local.with_suffix(".json"), f"{prefix}/small.json")
    downloads: list[str] = []
    real = storage.download
    monkeypatch.setattr(storage, "download", lambda u, p: (downloads.append(str(u)), real(u, p))[1])
    bb = load_backbone(f"ckpt:{uri}")
    assert class_names(f"ckpt:{uri}") == ds.classes and len(downloads) == 2
    x = torch.stack([prepare_image(im, 32) for im in ds.images[:2]])
    with torch.no_grad():
        assert torch.allclose(bb.logits(x), load_backbone(f"ckpt:{local}").logits(x))
    load_backbone(f"ckpt:{uri}")
    assert len(downloads) == 2  # cached while the sizes match
    meta = read_meta(local)
    meta["classes"] = [c + "_renamed" for c in meta["classes"]]
    storage.write_text(f"{prefix}/small.json", json.dumps(meta))
    assert class_names(f"ckpt:{uri}")[0].endswith("_renamed") and len(downloads) == 3
