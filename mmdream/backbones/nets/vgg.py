"""VGG16 / VGG19 with torchvision's state-dict layout (``features.N``, ``classifier.N``).

The same module serves torchvision's checkpoints (with classifier) and the Caffe ports used by neural-style-pt
(feature layers only); the registry chooses the weights and the preprocessing.
"""

from __future__ import annotations

from torch import nn

from mmdream.backbones.base import Layer

CONFIGS: dict[str, tuple[int, ...]] = {
    "vgg16": (2, 2, 3, 3, 3),
    "vgg19": (2, 2, 4, 4, 4),
}
WIDTHS = (64, 128, 256, 512, 512)
DEFAULT_LAYERS: dict[str, tuple[str, ...]] = {"vgg16": ("relu4_3", "relu5_2"), "vgg19": ("relu4_4", "relu5_3")}
INPUT_SIZE = 224
MIN_SIDE = 32  # five 2x2 max pools: a smaller side leaves pool5 empty


class VGG(nn.Module):
    """VGG convolutional stack, optionally with the 3-layer classifier.

    ``forward``: preprocessed ``(N, 3, H, W)`` -> logits ``(N, num_classes)``, or pool5 features
    ``(N, 512, H/32, W/32)`` when built without a classifier.
    """

    def __init__(self, arch: str, num_classes: int | None = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for n_convs, width in zip(CONFIGS[arch], WIDTHS):
            for _ in range(n_convs):
                layers += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU(inplace=False)]
                c_in = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.classifier: nn.Module | None = None
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d(7)
            self.flatten = nn.Flatten(1)
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096), nn.ReLU(inplace=False), nn.Dropout(),
                nn.Linear(4096, 4096), nn.ReLU(inplace=False), nn.Dropout(),
                nn.Linear(4096, num_classes),
            )

    def forward(self, x):  # type: ignore[no-untyped-def]
        x = self.features(x)
        if self.classifier is None:
            return x
        return self.classifier(self.flatten(self.avgpool(x)))


def vgg_layers(arch: str, with_classifier: bool) -> tuple[Layer, ...]:
    """Taps ``conv{b}_{i}``, ``relu{b}_{i}``, ``pool{b}`` (and ``fc6``, ``fc7``, ``logits``) in forward order."""
    out: list[Layer] = []
    idx = 0
    for block, n_convs in enumerate(CONFIGS[arch], start=1):
        for i in range(1, n_convs + 1):
            out.append(Layer(f"conv{block}_{i}", f"features.{idx}"))
            out.append(Layer(f"relu{block}_{i}", f"features.{idx + 1}"))
            idx += 2
        out.append(Layer(f"pool{block}", f"features.{idx}"))
        idx += 1
    if with_classifier:
        out += [Layer("fc6", "classifier.1"), Layer("fc7", "classifier.4"), Layer("logits", "classifier.6")]
    return tuple(out)
