"""YAMNet (AudioSet, 521 classes) with the key layout of ``yamnet.safetensors``, as documented in ``yamnet.md``.

The module takes the waveform and does TF YAMNet's front-end inside, so taps and gradients reach the samples:

- input ``waveform``: mono float audio in [-1, 1] at 16 kHz, shape ``(N, samples)`` or ``(N, C, samples)``
  (channels are averaged; ``(N, 1, samples)`` is plain mono); ``(samples,)`` is a batch of one;
- ``logmel`` ``(N, frames, 64)``: end-padding of the waveform to whole patches (upstream ``pad_waveform``), periodic
  Hann STFT (400 samples, hop 160, 512-point FFT, frames not centred), ``|STFT|`` through
  ``tf.signal.linear_to_mel_weight_matrix`` (64 HTK bands, 125-7500 Hz), ``log(mel + 0.001)``;
- ``patches`` ``(N * P, 1, 96, 64)``: 96-frame patches with a hop of 48 frames (0.96 s windows every 0.48 s),
  item ``n`` owning rows ``n * P .. n * P + P - 1``; every later tap has this leading ``N * P`` too, so each
  patch is a batch item (``logits.view(N, P, 521)`` regroups them);
- ``layer1`` .. ``layer14``: MobileNet-v1 body (BN folded into each conv's bias), ReLU after every conv, TF "SAME"
  padding; ``embeddings`` ``(N * P, 1024)`` (global average pool); ``logits`` ``(N * P, 521)``.

Scores are ``sigmoid(logits)`` (multi-label); a clip's score is their mean over its patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmdream.backbones.base import Layer
from mmdream.backbones.nets.efficientnet import Conv2dSame
from mmdream.errors import ParameterError
from mmdream.ops.mel import MelParams, log_mel

SAMPLE_RATE = 16000
NUM_CLASSES = 521
FRONTEND = MelParams(
    sample_rate=SAMPLE_RATE, n_fft=512, hop_length=160, win_length=400, window="hann", center=False,
    window_at="start", power=1.0, n_mels=64, fmin=125.0, fmax=7500.0, mel_scale="tf", norm=None, log_offset=0.001,
)
PATCH_FRAMES = 96
PATCH_HOP_FRAMES = 48
PATCH_SAMPLES = (PATCH_FRAMES - 1) * FRONTEND.hop + FRONTEND.win  # 15600: 0.96 s + 0.025 s - 0.010 s
PATCH_HOP_SAMPLES = PATCH_HOP_FRAMES * FRONTEND.hop  # 7680
INPUT_SIZE = PATCH_SAMPLES  # the shortest input that is not padded

# (stride, out channels) of the separable layers 2..14; layer 1 is a plain 3x3 conv, stride 2, 32 channels.
_SEPARABLE: tuple[tuple[int, int], ...] = (
    (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024),
)

LAYERS: tuple[Layer, ...] = (
    Layer("logmel", "logmel"),
    Layer("patches", "patches"),
    *(Layer(f"layer{i}", f"layer{i:02d}") for i in range(1, 15)),
    Layer("embeddings", "pool"),
    Layer("logits", "classifier"),
)
# Mid-depth, 512 channels on a 6x4 grid per patch (one position per 0.16 s x 16 mel bands): sound textures and
# motifs rather than band-level detail (layers 1-6) or class evidence (13-14); the analogue of relu4_3 / inception4c.
DEFAULT_LAYERS: tuple[str, ...] = ("layer8", "layer10")


def padded_length(samples: int) -> int:
    """Samples after upstream ``pad_waveform``: at least one patch (15600), then whole patch hops (7680)."""
    extra = max(samples - PATCH_SAMPLES, 0)
    return PATCH_SAMPLES + -(-extra // PATCH_HOP_SAMPLES) * PATCH_HOP_SAMPLES


def num_patches(samples: int) -> int:
    """Patches YAMNet makes of a clip of ``samples`` samples at 16 kHz."""
    return 1 + (padded_length(samples) - PATCH_SAMPLES) // PATCH_HOP_SAMPLES


def _as_batch(waveform: torch.Tensor) -> torch.Tensor:
    if not waveform.is_floating_point() or waveform.dim() not in (1, 2, 3):
        raise ParameterError(
            "YAMNet takes a float waveform at 16 kHz shaped (samples,), (N, samples) or (N, channels, samples); "
            f"got {waveform.dtype} {tuple(waveform.shape)}"
        )
    if waveform.dim() == 1:
        return waveform[None]
    if waveform.dim() == 3:
        return waveform.mean(dim=1)
    return waveform


class LogMelFrontend(nn.Module):
    """Waveform (see module docstring) -> end-padded -> log-mel ``(N, frames, 64)``, time first."""

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        x = _as_batch(waveform)
        x = F.pad(x, (0, padded_length(x.shape[-1]) - x.shape[-1]))
        return log_mel(x, FRONTEND).transpose(-1, -2)


class Patches(nn.Module):
    """Log-mel ``(N, frames, 64)`` -> ``(N * P, 1, 96, 64)``, P = 1 + (frames - 96) // 48."""

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        if logmel.shape[-2] < PATCH_FRAMES:
            raise ParameterError(f"YAMNet needs at least {PATCH_FRAMES} log-mel frames; got {logmel.shape[-2]}")
        p = logmel.unfold(-2, PATCH_FRAMES, PATCH_HOP_FRAMES)  # (N, P, 64, 96)
        return p.transpose(-1, -2).reshape(-1, 1, PATCH_FRAMES, logmel.shape[-1])


class ConvLayer(nn.Module):
    """Layer 1: 3x3 conv, stride 2, + ReLU: ``(N, 1, 96, 64) -> (N, 32, 48, 32)``."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv = Conv2dSame(in_ch, out_ch, 3, stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


class SeparableLayer(nn.Module):
    """Depthwise 3x3 (stride ``s``) + ReLU, pointwise 1x1 + ReLU: ``(N, C, H, W) -> (N, C', ceil(H/s), ceil(W/s))``."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.depthwise = Conv2dSame(in_ch, in_ch, 3, stride, groups=in_ch, bias=True)
        self.pointwise = Conv2dSame(in_ch, out_ch, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pointwise(F.relu(self.depthwise(x))))


class YAMNet(nn.Module):
    """YAMNet: waveform at 16 kHz -> logits ``(N * P, 521)``, one row per 0.96 s patch (see the module docstring).

    :meth:`classify_patches` runs the network on ready-made log-mel patches ``(M, 1, 96, 64)``.
    """

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.logmel = LogMelFrontend()
        self.patches = Patches()
        self.layer01 = ConvLayer(1, 32, 2)
        in_ch = 32
        for i, (stride, out_ch) in enumerate(_SEPARABLE, start=2):
            self.add_module(f"layer{i:02d}", SeparableLayer(in_ch, out_ch, stride))
            in_ch = out_ch
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.classifier = nn.Linear(in_ch, num_classes)

    def classify_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """Log-mel patches ``(M, 1, 96, 64)`` -> logits ``(M, num_classes)``."""
        x = patches
        for i in range(1, 15):
            x = getattr(self, f"layer{i:02d}")(x)
        return self.classifier(self.pool(x))

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.classify_patches(self.patches(self.logmel(waveform)))
