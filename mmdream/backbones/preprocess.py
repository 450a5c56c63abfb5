"""The preprocessing each backbone's weights were trained with: RGB ``(..., 3, H, W)`` in [0, 1] (or a waveform)
in, the network's input out; by the name a checkpoint's sidecar records (:data:`PREPROCESSORS`)."""

from __future__ import annotations

from collections.abc import Callable

import torch

_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def _channel_vector(values: tuple[float, ...], x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, device=x.device, dtype=x.dtype).view(-1, 1, 1)


def caffe_bgr(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> BGR 0-255 minus the Caffe ImageNet mean."""
    return x.flip(-3) * 255.0 - _channel_vector(_CAFFE_MEAN_BGR, x)


def imagenet_norm(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> (x - ImageNet mean) / std."""
    return (x - _channel_vector(_IMAGENET_MEAN, x)) / _channel_vector(_IMAGENET_STD, x)


def inception_norm(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> (x - 0.5) / 0.5, what torchvision's ``transform_input=True`` feeds GoogLeNet/Inception v3."""
    return (x - 0.5) / 0.5


def efficientnet_norm(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> (255 x - 127) / 128 (EfficientNet-Lite's MEAN_RGB 127, STDDEV_RGB 128)."""
    return (x * 255.0 - 127.0) / 128.0


def waveform_as_is(x: torch.Tensor) -> torch.Tensor:
    """Audio backbones take the waveform itself; their front-end is part of the module."""
    return x


def centred(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> (x - 0.5) / 0.25: the own image CNNs' input."""
    return (x - 0.5) / 0.25


PREPROCESSORS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "caffe_bgr": caffe_bgr, "efficientnet": efficientnet_norm, "imagenet": imagenet_norm,
    "inception": inception_norm, "centred": centred, "waveform": waveform_as_is}
