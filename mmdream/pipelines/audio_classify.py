"""Sound-event classification of audio files with an audio backbone (YAMNet): top classes of a clip.

A clip's score for a class is the mean over its 0.96 s patches of ``sigmoid(logit)`` (YAMNet is multi-label:
scores do not sum to 1). The audio is mixed to mono and resampled to the backbone's rate with librosa
(``soxr_hq``), as in ``REFERENCE.json``.
"""

from __future__ import annotations

import os

import torch

from mmdream.backbones.base import Backbone
from mmdream.errors import MediaError, ParameterError
from mmdream.media.audio import load_audio

PATCH_CHUNK = 256  # patches per forward pass: bounds memory on long files (about 0.2 GB at 256)


def _require_audio_classifier(backbone: Backbone) -> None:
    if backbone.modality != "audio":
        raise ParameterError(f"{backbone.name} is an image backbone; classify sounds with an audio one (yamnet)")
    backbone.require_classes()


def patch_scores(waveform: torch.Tensor, backbone: Backbone) -> torch.Tensor:
    """``sigmoid(logits)`` per patch ``(P, num_classes)`` of one mono clip ``(samples,)`` or ``(1, samples)``.

    The waveform must already be at ``backbone.sample_rate``. Runs without gradients, ``PATCH_CHUNK`` patches at a
    time when the module can take patches directly (YAMNet's ``classify_patches``).
    """
    _require_audio_classifier(backbone)
    x = waveform.reshape(1, -1) if waveform.dim() == 1 or waveform.shape[0] == 1 else None
    if x is None or not x.is_floating_point():
        raise ParameterError(f"expected one mono float clip (samples,) or (1, samples); got {tuple(waveform.shape)}")
    module = backbone.module
    with torch.no_grad():
        if not hasattr(module, "classify_patches"):
            return torch.sigmoid(backbone.logits(x))
        patches = module.patches(module.logmel(x))
        return torch.cat([torch.sigmoid(module.classify_patches(patches[i:i + PATCH_CHUNK]))
                          for i in range(0, patches.shape[0], PATCH_CHUNK)])


def clip_scores(waveform: torch.Tensor, backbone: Backbone) -> torch.Tensor:
    """Scores ``(num_classes,)`` of one mono clip at ``backbone.sample_rate``: mean of sigmoid over patches."""
    return patch_scores(waveform, backbone).mean(dim=0)


def classify_audio(path: str | os.PathLike[str], backbone: Backbone, top: int = 5) -> list[tuple[int, str, float]]:
    """The ``top`` classes of an audio (or video) file: ``[(index, name, score)]``, best first.

    Raises MediaError for a missing, undecodable or empty file, ParameterError for an image backbone or ``top < 1``.
    """
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ParameterError(f"top must be a positive integer; got {top!r}")
    _require_audio_classifier(backbone)
    assert backbone.sample_rate is not None
    samples, _ = load_audio(path, rate=backbone.sample_rate, mono=True)
    if samples.shape[-1] == 0:
        raise MediaError(f"{path} holds no audio samples; nothing to classify")
    scores = clip_scores(samples, backbone)
    best = scores.topk(min(top, scores.numel()))
    classes = backbone.require_classes()
    return [(int(i), classes[int(i)], float(s)) for s, i in zip(best.values, best.indices)]
