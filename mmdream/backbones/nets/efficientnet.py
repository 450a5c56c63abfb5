"""EfficientNet-Lite0 (ImageNet-1k) with the lukemelas key layout, as documented in ``efficientnet_lite0.md``.

TensorFlow "SAME" padding is computed from the actual input size, so any ``H, W`` works. ReLU6, no
squeeze-and-excitation, BatchNorm ``eps=1e-3``. Inference definition: training-only dropout and
drop-connect are left out. Input is already normalised: RGB, ``(pixel - 127) / 128``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmdream.backbones.base import Layer

# (expansion, kernel, stride of first repeat, in, out, repeats) per stage; stem 32 and head 1280 unscaled.
_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01

INPUT_SIZE = 224
LAYERS: tuple[Layer, ...] = (
    Layer("stem", "_stem_act"),
    *(Layer(f"block{i}", f"_blocks.{i}") for i in range(sum(s[-1] for s in _STAGES))),
    Layer("head", "_head_act"),
    Layer("pool", "_pool"),
    Layer("logits", "_fc"),
)
DEFAULT_LAYERS: tuple[str, ...] = ("block9", "block12")


class Conv2dSame(nn.Conv2d):
    """``Conv2d`` with TF "SAME" padding: ``(N, C, H, W) -> (N, C', ceil(H/s), ceil(W/s))`` (also YAMNet's).

    Padding is computed from the actual input size; the extra pixel of an odd total goes bottom/right.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1,
                 bias: bool = False) -> None:
        super().__init__(in_ch, out_ch, kernel, stride=stride, padding=0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for size, k, s in zip(x.shape[:-3:-1], self.kernel_size[::-1], self.stride[::-1]):  # W first, then H
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return self._conv_forward(x, self.weight, self.bias)


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """MBConv ``(N, in, H, W) -> (N, out, ceil(H/s), ceil(W/s))``: [1x1 expand] -> depthwise kxk -> 1x1 project.

    Expansion and depthwise are followed by BN + ReLU6, the projection by BN only; the input is added back
    when ``stride == 1`` and ``in == out``.
    """

    def __init__(self, expand: int, kernel: int, stride: int, in_ch: int, out_ch: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.expand = expand != 1
        self.residual = stride == 1 and in_ch == out_ch
        if self.expand:
            self._expand_conv = Conv2dSame(in_ch, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = Conv2dSame(mid, mid, kernel, stride=stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = Conv2dSame(mid, out_ch, 1)
        self._bn2 = _bn(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return x + h if self.residual else h


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0: ``(N, 3, H, W)`` normalised RGB -> logits ``(N, num_classes)``.

    At 224x224: stem ``(N, 32, 112, 112)``; blocks 0-15 down to ``(N, 320, 7, 7)``; head ``(N, 1280, 7, 7)``;
    pool ``(N, 1280)``. Taps are listed in ``LAYERS``.
    """

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = Conv2dSame(3, 32, 3, stride=2)
        self._bn0 = _bn(32)
        self._stem_act = nn.ReLU6()
        self._blocks = nn.ModuleList(
            MBConvBlock(e, k, s if r == 0 else 1, cin if r == 0 else cout, cout)
            for e, k, s, cin, cout, repeats in _STAGES
            for r in range(repeats)
        )
        self._conv_head = Conv2dSame(320, 1280, 1)
        self._bn1 = _bn(1280)
        self._head_act = nn.ReLU6()
        self._pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._stem_act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._head_act(self._bn1(self._conv_head(x)))
        return self._fc(self._pool(x))
