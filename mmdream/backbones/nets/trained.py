"""Architectures that training makes (:mod:`mmdream.train`) and checkpoints name.

- ``vgg16_pooled`` / ``vgg19_pooled``: VGG's conv stack (``features.N``, as the Caffe ports) with a new head on
  globally averaged pool5 features: ``(N, 3, H, W)`` -> ``gap`` ``(N, 512)`` -> ``logits`` ``(N, classes)``;
- ``efficientnet_lite0``: :class:`~mmdream.backbones.nets.efficientnet.EfficientNetLite0` with its own number of classes;
- ``googlenet`` / ``inception_v3``: the torchvision-layout nets with their own number of classes and no auxiliary
  heads; the head reads the globally pooled features (tap ``pool``: ``(N, 1024|2048, 1, 1)``);
- ``small_cnn``: :class:`SmallCNN`, a small image CNN trained from scratch;
- ``mel_cnn``: :class:`MelCNN`, a small CNN over a differentiable log-mel front-end (waveform in, so taps and
  gradients reach the samples, like YAMNet).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mmdream.backbones.base import Layer
from mmdream.backbones.nets.vgg import VGG, vgg_layers
from mmdream.errors import ParameterError
from mmdream.ops.mel import LogMel, MelParams


class PooledVGG(VGG):
    """VGG conv stack + global average pool + linear head: ``(N, 3, H, W)`` preprocessed -> ``(N, num_classes)``."""

    def __init__(self, arch: str, num_classes: int) -> None:
        super().__init__(arch, None)
        self.gap = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.head = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gap(self.features(x)))


def pooled_vgg_layers(arch: str) -> tuple[Layer, ...]:
    return (*vgg_layers(arch, False), Layer("gap", "gap"), Layer("logits", "head"))


def _block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(2)) if pool else nn.Sequential(*layers)


class SmallCNN(nn.Module):
    """Small image CNN: ``(N, 3, H, W)`` centred pixels -> logits ``(N, num_classes)``.

    Taps: ``block1`` ``(N, w, H/2, W/2)``, ``block2`` ``(N, 2w, H/4, W/4)``, ``block3`` ``(N, 4w, H/4, W/4)``,
    ``pool`` ``(N, 4w)`` (global average), ``logits``.
    """

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.block1 = nn.Sequential(_block(3, width, False), _block(width, width, True))
        self.block2 = nn.Sequential(_block(width, 2 * width, False), _block(2 * width, 2 * width, True))
        self.block3 = _block(2 * width, 4 * width, False)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.block3(self.block2(self.block1(x)))))


SMALL_CNN_LAYERS = (Layer("block1", "block1"), Layer("block2", "block2"), Layer("block3", "block3"),
                    Layer("pool", "pool"), Layer("logits", "head"))

MEL_CNN_SAMPLE_RATE = 16000


def mel_cnn_frontend(sample_rate: int = MEL_CNN_SAMPLE_RATE) -> MelParams:
    """25 ms Hann frames every 10 ms, 64 Slaney mel bands 50 Hz .. Nyquist, power, ``log(mel + 1e-6)``."""
    return MelParams(sample_rate=sample_rate, n_fft=512, hop_length=sample_rate // 100,
                     win_length=sample_rate // 40, n_mels=64, fmin=50.0, log_offset=1e-6)


class MelCNN(nn.Module):
    """Small mel-spectrogram CNN: mono waveform ``(N, samples)`` (or ``(samples,)``) at ``sample_rate`` -> logits
    ``(N, num_classes)``, one row per clip whatever its length (global max over time and frequency: a call is
    found wherever it sits in the clip; on the animals set this cross-validated 0.44 on average against 0.31 for
    the global average).

    Taps: ``logmel`` ``(N, 64, frames)``; ``norm`` ``(N, 1, 64, frames)`` (BatchNorm of the log-mel);
    ``block1`` .. ``block3`` (3x3 conv, BN, ReLU, 2x2 max pool: ``(N, w * 2^(k-1), 64 / 2^k, frames / 2^k)``);
    ``block4`` (no pool); ``pool`` ``(N, 4w)`` (global max); ``logits``.
    """

    def __init__(self, num_classes: int, width: int = 16, sample_rate: int = MEL_CNN_SAMPLE_RATE) -> None:
        super().__init__()
        self.logmel = LogMel(mel_cnn_frontend(sample_rate))
        self.norm = nn.BatchNorm2d(1)
        self.block1 = _block(1, width, True)
        self.block2 = _block(width, 2 * width, True)
        self.block3 = _block(2 * width, 4 * width, True)
        self.block4 = _block(4 * width, 4 * width, False)
        self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(1))
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if not waveform.is_floating_point() or waveform.dim() not in (1, 2):
            raise ParameterError(f"MelCNN takes a float mono waveform (samples,) or (N, samples); got "
                                 f"{waveform.dtype} {tuple(waveform.shape)}")
        x = self.norm(self.logmel(waveform.reshape(-1, waveform.shape[-1]))[:, None])
        return self.head(self.pool(self.block4(self.block3(self.block2(self.block1(x))))))


MEL_CNN_LAYERS = (Layer("logmel", "logmel"), Layer("norm", "norm"),
                  *(Layer(f"block{i}", f"block{i}") for i in range(1, 5)),
                  Layer("pool", "pool"), Layer("logits", "head"))


def build(architecture: str, num_classes: int, config: dict[str, Any]) -> nn.Module:
    """The module of a named architecture with ``num_classes`` outputs (see the module docstring)."""
    from mmdream.backbones.nets.efficientnet import EfficientNetLite0
    from mmdream.backbones.nets.googlenet import GoogLeNet
    from mmdream.backbones.nets.inception import InceptionV3

    if architecture in ("vgg16_pooled", "vgg19_pooled"):
        return PooledVGG(architecture.removesuffix("_pooled"), num_classes)
    if architecture == "efficientnet_lite0":
        return EfficientNetLite0(num_classes)
    if architecture == "googlenet":
        return GoogLeNet(num_classes, aux=False)
    if architecture == "inception_v3":
        return InceptionV3(num_classes, aux=False)
    if architecture == "small_cnn":
        return SmallCNN(num_classes, int(config.get("width", 32)))
    if architecture == "mel_cnn":
        return MelCNN(num_classes, int(config.get("width", 16)), int(config.get("sample_rate", MEL_CNN_SAMPLE_RATE)))
    raise ParameterError(f"unknown architecture '{architecture}'; known: {', '.join(ARCHITECTURES)}")


def min_side(architecture: str) -> int:
    """The smallest image side the architecture takes (see :attr:`mmdream.backbones.base.Backbone.min_side`)."""
    from mmdream.backbones.nets import googlenet, inception, vgg

    return {"vgg16_pooled": vgg.MIN_SIDE, "vgg19_pooled": vgg.MIN_SIDE, "googlenet": googlenet.MIN_SIDE,
            "inception_v3": inception.MIN_SIDE, "small_cnn": 4}.get(architecture, 1)  # small_cnn: two 2x2 pools


def layers(architecture: str) -> tuple[Layer, ...]:
    from mmdream.backbones.nets import efficientnet, googlenet, inception

    if architecture in ("vgg16_pooled", "vgg19_pooled"):
        return pooled_vgg_layers(architecture.removesuffix("_pooled"))
    if architecture in ("googlenet", "inception_v3"):
        taps = (googlenet if architecture == "googlenet" else inception).LAYERS
        return (*taps[:-1], Layer("pool", "avgpool"), taps[-1])
    return {"efficientnet_lite0": efficientnet.LAYERS, "small_cnn": SMALL_CNN_LAYERS,
            "mel_cnn": MEL_CNN_LAYERS}[architecture]


# architecture -> (default dream layers, layer whose output the head reads)
ARCHITECTURES: dict[str, tuple[tuple[str, ...], str]] = {
    "vgg16_pooled": (("relu4_3", "relu5_2"), "gap"),
    "vgg19_pooled": (("relu4_4", "relu5_3"), "gap"),
    "efficientnet_lite0": (("block9", "block12"), "pool"),
    "googlenet": (("inception4c",), "pool"),
    "inception_v3": (("Mixed_5d", "Mixed_6c"), "pool"),
    "small_cnn": (("block2", "block3"), "pool"),
    "mel_cnn": (("block3", "block4"), "pool"),
}
