"""Own backbone modules match torchvision's state-dict layouts and run at any reasonable input size."""

from __future__ import annotations

import json
from types import ModuleType

import pytest
import torch
from torch import nn

from sharedpaths import shared_folder
from mmdream.backbones.nets import googlenet, inception
from mmdream.backbones.nets.vgg import VGG, vgg_layers


def layouts() -> dict[str, dict]:
    """The torchvision layout file from the folder named by MMDREAM_WEIGHTS."""
    path = shared_folder("MMDREAM_WEIGHTS") / "torchvision_layouts.json"
    if not path.is_file():
        pytest.fail(f"{path} not found; MMDREAM_WEIGHTS must name the folder holding torchvision_layouts.json")
    return json.loads(path.read_text())


# key in the layout file -> (module file, model class)
CASES = {
    "googlenet": (googlenet, googlenet.GoogLeNet),
    "inception_v3": (inception, inception.InceptionV3),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request: pytest.FixtureRequest) -> tuple[str, ModuleType, nn.Module]:
    mod, cls = CASES[request.param]
    torch.manual_seed(0)
    return request.param, mod, cls().eval()


def test_state_dict_matches_layout(case: tuple[str, ModuleType, nn.Module]) -> None:
    key, _, model = case
    expected = layouts()[key]["state_dict"]
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(expected) - set(got)) == []
    assert sorted(set(got) - set(expected)) == []
    assert {k: v for k, v in got.items() if v != expected[k]} == {}


def test_random_layout_state_dict_loads_strictly(case: tuple[str, ModuleType, nn.Module]) -> None:
    key, _, model = case
    layout = layouts()[key]["state_dict"]
    state = {
        k: torch.zeros(shape, dtype=torch.long) if k.endswith("num_batches_tracked") else torch.randn(shape)
        for k, shape in layout.items()
    }
    model = type(model)()
    model.load_state_dict(state, strict=True)
    # older checkpoints lack num_batches_tracked; BatchNorm fills it in
    model.load_state_dict({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, strict=True)
    assert torch.equal(model.fc.weight, state["fc.weight"])


def test_forward_gives_logits(case: tuple[str, ModuleType, nn.Module]) -> None:
    _, mod, model = case
    with torch.no_grad():
        for shape in [(1, 3, mod.INPUT_SIZE, mod.INPUT_SIZE), (1, 3, 181, 247)]:
            out = model(torch.randn(shape))
            assert out.shape == (1, 1000)
            assert torch.isfinite(out).all()


def test_small_inputs_and_num_classes() -> None:
    with torch.no_grad():
        assert googlenet.GoogLeNet(num_classes=7).eval()(torch.randn(2, 3, 32, 33)).shape == (2, 7)
        assert inception.InceptionV3(num_classes=7).eval()(torch.randn(2, 3, 75, 80)).shape == (2, 7)


def test_layers_fire_once_in_order(case: tuple[str, ModuleType, nn.Module]) -> None:
    _, mod, model = case
    names = [layer.name for layer in mod.LAYERS]
    assert len(set(names)) == len(names)
    assert mod.LAYERS[-1].name == "logits" and mod.LAYERS[-1].module == "fc"
    assert set(mod.DEFAULT_LAYERS) <= set(names)
    modules = dict(model.named_modules())
    assert [layer.module for layer in mod.LAYERS if layer.module not in modules] == []
    fired: list[str] = []
    handles = [
        modules[layer.module].register_forward_hook(lambda *_, n=layer.name: fired.append(n))
        for layer in mod.LAYERS
    ]
    try:
        with torch.no_grad():
            model(torch.randn(1, 3, mod.INPUT_SIZE, mod.INPUT_SIZE))
    finally:
        for h in handles:
            h.remove()
    assert fired == names


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_vgg_matches_torchvision_layout(arch: str) -> None:
    expected = layouts()[arch]["state_dict"]
    model = VGG(arch)
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == expected
    features_only = VGG(arch, num_classes=None)
    assert {k: list(v.shape) for k, v in features_only.state_dict().items()} == {
        k: v for k, v in expected.items() if k.startswith("features.")
    }


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_vgg_taps_name_the_right_modules(arch: str) -> None:
    model = VGG(arch)
    modules = dict(model.named_modules())
    layers = vgg_layers(arch, with_classifier=True)
    for layer in layers:
        kind = layer.name.rstrip("0123456789_")
        expected = {"conv": nn.Conv2d, "relu": nn.ReLU, "pool": nn.MaxPool2d, "fc": nn.ReLU, "logits": nn.Linear}
        assert isinstance(modules[layer.module], expected[kind]), layer
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert len([x for x in layers if x.name.startswith("conv")]) == len(convs) == (13 if arch == "vgg16" else 16)
