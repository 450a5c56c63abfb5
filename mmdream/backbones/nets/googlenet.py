"""GoogLeNet (Inception v1) laid out exactly as torchvision's ``googlenet`` with ``aux_logits=True``, so its
published checkpoint loads with ``strict=True``; the auxiliary heads are kept as weights only and never run,
and the ``transform_input`` re-mapping is left to the caller (the model sees ``(x - 0.5) / 0.5``)."""

from __future__ import annotations

import torch
from torch import nn

from mmdream.backbones.base import Layer

INPUT_SIZE: int = 224
MIN_SIDE: int = 15  # the smallest side all its (ceil-mode) pools and valid convolutions take
DEFAULT_LAYERS: tuple[str, ...] = ("inception4c",)
LAYERS: tuple[Layer, ...] = (
    *(
        Layer(name, name)
        for name in (
            "conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3",
            "inception4a", "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4",
            "inception5a", "inception5b",
        )
    ),
    Layer("logits", "fc"),
)


class ConvBN(nn.Module):
    """Bias-free convolution, BatchNorm (eps 0.001) and ReLU: ``(N, C_in, H, W) -> (N, C_out, H', W')``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu_(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four parallel branches concatenated on channels:
    ``(N, C_in, H, W) -> (N, ch1x1 + ch3x3 + ch5x5 + pool_proj, H, W)``.

    As in torchvision's port, the "5x5" branch really uses a 3x3 convolution.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
    ) -> None:
        super().__init__()
        self.branch1 = ConvBN(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(ConvBN(in_channels, ch3x3red, 1), ConvBN(ch3x3red, ch3x3, 3, padding=1))
        self.branch3 = nn.Sequential(ConvBN(in_channels, ch5x5red, 1), ConvBN(ch5x5red, ch5x5, 3, padding=1))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), ConvBN(in_channels, pool_proj, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


def _aux_head(in_channels: int, num_classes: int) -> nn.ModuleDict:
    """Weights of an auxiliary classifier, held only so the checkpoint loads strictly; never run."""
    return nn.ModuleDict(
        {"conv": ConvBN(in_channels, 128, 1), "fc1": nn.Linear(2048, 1024), "fc2": nn.Linear(1024, num_classes)}
    )


class GoogLeNet(nn.Module):
    """GoogLeNet classifier: ``(N, 3, H, W)`` with H, W >= 32, already mapped to ``(x - 0.5) / 0.5``,
    to logits ``(N, num_classes)``.

    At 224 x 224 the taps are: conv1 ``(N, 64, 112, 112)``; maxpool1, conv2 ``(N, 64, 56, 56)``;
    conv3 ``(N, 192, 56, 56)``; maxpool2 ``(N, 192, 28, 28)``; inception3a/3b ``(N, 256|480, 28, 28)``;
    maxpool3 ``(N, 480, 14, 14)``; inception4a..4e ``(N, 512|512|512|528|832, 14, 14)``;
    maxpool4, inception5a ``(N, 832, 7, 7)``; inception5b ``(N, 1024, 7, 7)``.
    """

    def __init__(self, num_classes: int = 1000, aux: bool = True) -> None:
        super().__init__()
        self.conv1 = ConvBN(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = ConvBN(64, 64, 1)
        self.conv3 = ConvBN(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)
        if aux:  # only for the published checkpoint; fine-tuned nets have none
            self.aux1 = _aux_head(512, num_classes)
            self.aux2 = _aux_head(528, num_classes)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool2(self.conv3(self.conv2(self.maxpool1(self.conv1(x)))))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4c(self.inception4b(self.inception4a(x)))
        x = self.maxpool4(self.inception4e(self.inception4d(x)))
        x = self.inception5b(self.inception5a(x))
        return self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))
