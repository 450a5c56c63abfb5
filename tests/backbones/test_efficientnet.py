"""EfficientNet-Lite0: strict loading, reference top-5 (REFERENCE.json), odd input sizes, tap order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from sharedpaths import shared_folder
from mmdream.backbones.nets.efficientnet import DEFAULT_LAYERS, INPUT_SIZE, LAYERS, EfficientNetLite0


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads((shared_folder("MMDREAM_WEIGHTS") / "REFERENCE.json").read_text())["efficientnet_lite0"]


@pytest.fixture(scope="module")
def model(reference: dict) -> EfficientNetLite0:
    net = EfficientNetLite0()
    net.load_state_dict(load_file(shared_folder("MMDREAM_WEIGHTS") / reference["weights"]), strict=True)
    return net.eval()


def _crop(img: Image.Image, mode: str, size: int = INPUT_SIZE) -> Image.Image:
    if mode == "resize_bicubic_center_crop":
        w, h = img.size
        img = img.resize((size, round(h * size / w)) if w < h else (round(w * size / h), size), Image.BICUBIC)
    else:
        assert mode == "exact_center_crop"
    w, h = img.size
    top, left = (h - size) // 2, (w - size) // 2
    return img.crop((left, top, left + size, top + size))


def test_loads_strict(reference: dict) -> None:
    sd = load_file(shared_folder("MMDREAM_WEIGHTS") / reference["weights"])
    net = EfficientNetLite0()
    result = net.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert len(sd) == 247
    assert sum(p.numel() for p in net.parameters()) == 4_652_008


@pytest.mark.parametrize("case", range(4))
def test_reference_top5(model: EfficientNetLite0, reference: dict, case: int) -> None:
    spec = reference["cases"][case]
    path = shared_folder("MMDREAM_MEDIA") / Path(spec["image"]).relative_to("media")  # paths are relative to shared/
    img = _crop(Image.open(path).convert("RGB"), spec["crop"])
    x = torch.from_numpy((np.asarray(img, dtype=np.float32) - 127.0) / 128.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        logits = model(x)[0]
    probs = logits.softmax(0)
    top = probs.topk(5)
    want = spec["top5"]
    assert top.indices.tolist() == [t["index"] for t in want]
    for t in want:
        assert abs(probs[t["index"]].item() - t["prob"]) <= 1e-3
        assert abs(logits[t["index"]].item() - t["logit"]) <= 1e-3


def test_odd_size() -> None:
    net = EfficientNetLite0().eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 181, 247)).shape == (1, 1000)


def test_layer_hooks_fire_once_in_order() -> None:
    net = EfficientNetLite0().eval()
    modules = dict(net.named_modules())
    names = [layer.name for layer in LAYERS]
    assert names == ["stem", *(f"block{i}" for i in range(16)), "head", "pool", "logits"]
    assert set(DEFAULT_LAYERS) <= set(names)
    fired: list[tuple[str, tuple[int, ...]]] = []
    for layer in LAYERS:
        modules[layer.module].register_forward_hook(
            lambda _m, _i, o, n=layer.name: fired.append((n, tuple(o.shape)))
        )
    with torch.no_grad():
        net(torch.randn(2, 3, INPUT_SIZE, INPUT_SIZE))
    assert [n for n, _ in fired] == names
    shapes = dict(fired)
    assert shapes["stem"] == (2, 32, 112, 112)
    assert shapes["block15"] == (2, 320, 7, 7)
    assert shapes["head"] == (2, 1280, 7, 7)
    assert shapes["pool"] == (2, 1280)
    assert shapes["logits"] == (2, 1000)
