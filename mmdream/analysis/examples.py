"""Dataset examples: for each channel, the image patches (or sound snippets) of a dataset folder that excite it most.

One pass over the folder keeps, per file and channel, only the strongest position (a picture: the feature-map
cell; a sound: the analysis patch) and its activation; the ``k`` files that score highest for a channel give its
examples, cut out at the end. A picture's patch is the square of ``patch`` pixels (default 8 × the layer's
stride, clamped to the picture) centred on the strongest cell; a sound's snippet is the analysis window of the
strongest patch (YAMNet: 0.96 s).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from mmdream.objectives.visualization import check_channels
from mmdream.analysis.param import IMAGE_SUFFIXES, image_files, media_files
from mmdream.backbones.base import Backbone
from mmdream.errors import MediaError

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg")
MAX_SECONDS = 30.0  # a long sound is examined over its first 30 s only


@dataclass(frozen=True)
class Example:
    """One example of a channel: its ``score`` (the activation), the ``source`` file, where in it (a picture:
    ``(top, left, height, width)`` pixels of the picture as loaded; a sound: ``(start, length)`` samples) and the
    excerpt: a patch ``(3, h, w)`` in [0, 1] or a snippet ``(samples,)`` at the backbone's rate."""

    channel: int
    score: float
    source: Path
    where: tuple[int, ...]
    excerpt: torch.Tensor


def dataset_files(folder: str | os.PathLike[str], modality: str) -> list[Path]:
    """The pictures (image backbones) or sounds (audio backbones) under ``folder``, recursively, sorted;
    MediaError if there are none."""
    return image_files(folder) if modality == "image" else media_files(folder, AUDIO_SUFFIXES, "sounds")


def load_item(backbone: Backbone, path: Path) -> torch.Tensor:
    """A picture ``(1, 3, H, W)`` (longer side the backbone's input size) or a mono sound ``(1, n)`` at its rate,
    on the backbone's device."""
    if backbone.modality == "image":
        from mmdream.media.images import load_image

        x = load_image(path, backbone.input_size)
    else:
        from mmdream.media.audio import load_audio

        x = load_audio(path, rate=backbone.sample_rate, mono=True)[0]
        x = x[:, :round(MAX_SECONDS * (backbone.sample_rate or 16000))]
    weight = next(backbone.module.parameters(), None)
    return x if weight is None else x.to(weight.device)


def _best(backbone: Backbone, layer: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Per channel: the strongest activation ``(C,)``, where ``(C,)`` (flat cell index, or patch row) and the
    shape it indexes (``(h, w)``, or ``(rows,)``)."""
    with torch.no_grad():
        a = backbone.taps(x, [layer])[layer]
    if backbone.modality == "image":
        flat = a[0].flatten(1)  # (C, h * w)
        score, where = flat.max(dim=1)
        return score, where, tuple(a.shape[-2:])
    per_row = a.flatten(2).mean(dim=2) if a.dim() > 2 else a  # (rows, C): mean over each patch's cells
    score, where = per_row.max(dim=0)
    return score, where, (a.shape[0],)


def _patch(x: torch.Tensor, cell: int, grid: tuple[int, int], side: int) -> tuple[tuple[int, ...], torch.Tensor]:
    h, w = x.shape[-2:]
    gy, gx = divmod(cell, grid[1])
    side = min(side, h, w)
    cy, cx = (gy + 0.5) * h / grid[0], (gx + 0.5) * w / grid[1]
    top = int(min(max(round(cy - side / 2), 0), h - side))
    left = int(min(max(round(cx - side / 2), 0), w - side))
    return (top, left, side, side), x[0, :, top:top + side, left:left + side]


def _snippet(wave: torch.Tensor, row: int, rows: int, window: int) -> tuple[tuple[int, ...], torch.Tensor]:
    n = wave.shape[-1]
    if rows == 1:
        return (0, n), wave[0]
    hop = -(-max(n - window, 0) // (rows - 1))  # the backbone pads the sound to whole patches
    start = min(row * hop, max(n - window, 0))
    return (start, min(window, n - start)), wave[0, start:start + window]


def dataset_examples(backbone: Backbone, layer: str, channels: Sequence[int], files: Sequence[Path], *, k: int = 4,
                     patch: int | None = None, advance: Callable[[], None] | None = None) -> dict[int, list[Example]]:
    """The ``k`` strongest examples of each of ``channels`` of ``layer`` among ``files`` (pictures or sounds, as the
    backbone takes), strongest first; ``advance()`` after each file. ``patch``: side of a picture's patch
    (default: 8 × the layer's stride)."""
    channels = list(channels)
    check_channels(backbone, layer, tuple(channels))
    if not files:
        raise MediaError("no dataset files to take examples from")
    index = torch.tensor(channels)
    scores, places = [], []
    grid: tuple[int, ...] = ()
    for path in files:
        score, where, grid = _best(backbone, layer, load_item(backbone, path))
        scores.append(score[index].float().cpu())
        places.append((where[index].cpu(), grid))
        if advance is not None:
            advance()
    table = torch.stack(scores)  # (files, channels)
    loaded: dict[int, torch.Tensor] = {}
    out: dict[int, list[Example]] = {}
    for j, c in enumerate(channels):
        top = table[:, j].topk(min(k, len(files))).indices.tolist()
        found = []
        for f in top:
            x = loaded[f] if f in loaded else loaded.setdefault(f, load_item(backbone, files[f]))
            where, grid = places[f][0][j].item(), places[f][1]
            if backbone.modality == "image":
                side = patch or 8 * round(x.shape[-1] / grid[1])
                box, excerpt = _patch(x, where, (grid[0], grid[1]), side)
            else:
                box, excerpt = _snippet(x, where, grid[0], backbone.input_size)
            found.append(Example(c, float(table[f, j]), files[f], box, excerpt.clone()))
        out[c] = found
    return out


__all__ = ["AUDIO_SUFFIXES", "IMAGE_SUFFIXES", "Example", "dataset_examples", "dataset_files"]
