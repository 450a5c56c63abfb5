"""Channel atlases: a visualisation of every chosen channel of a layer, rendered in batches, laid out in a grid.

>>> for chunk, pics in atlas_batches(vgg, "relu4_3", range(16), VisParams(), batch=8):
...     ...                                           # pics: (len(chunk), 3, size, size)
>>> atlas_image(all_pics, [f"{c}" for c in channels]).save("atlas.png")

Channels for a class (:func:`class_channels`): the channels of a layer whose activation contributes most to a
class's logit, by activation × gradient summed over positions (a first-order attribution), on given inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence

import torch
from PIL import Image, ImageDraw

from mmdream.objectives.visualization import ChannelPerItem, check_channels
from mmdream.analysis.visualize import Advance, VisParams, optimise_images, optimise_sound
from mmdream.backbones.base import Backbone
from mmdream.errors import ParameterError
from mmdream.media.images import to_pil
from mmdream.objectives.terms import Objective


def chunks(channels: Sequence[int], batch: int) -> list[tuple[int, ...]]:
    """``channels`` in consecutive batches of at most ``batch`` (audio backbones: always 1 per batch)."""
    if batch < 1:
        raise ParameterError(f"batch={batch} is invalid: it must be a positive integer")
    return [tuple(channels[i:i + batch]) for i in range(0, len(channels), batch)]


def batch_params(params: VisParams, index: int) -> VisParams:
    """The options of batch ``index``: its own seed, so a batch's result does not depend on the others (a
    resumed atlas renders the missing batches exactly as an uninterrupted run would)."""
    return dataclasses.replace(params, seed=params.seed + 1_000_003 * index)


def render_batch(backbone: Backbone, layer: str, chunk: tuple[int, ...], params: VisParams, *,
                 correlation: torch.Tensor | None = None, advance: Advance | None = None) -> torch.Tensor:
    """Visualisations of the channels ``chunk`` of ``layer``, one per item: pictures ``(k, 3, size, size)``,
    or for an audio backbone (``chunk`` of one channel) a sound ``(1, samples)``."""
    objective = Objective((ChannelPerItem(layer, chunk),))
    if backbone.modality == "audio":
        if len(chunk) != 1:
            raise ParameterError("sounds are visualised one channel at a time; use a batch of 1")
        return optimise_sound(backbone, objective, params, advance=advance)[None]
    return optimise_images(backbone, objective, params, batch=len(chunk), correlation=correlation,
                           advance=advance)


def atlas_batches(backbone: Backbone, layer: str, channels: Sequence[int], params: VisParams, *, batch: int = 8,
                  correlation: torch.Tensor | None = None, skip: Callable[[tuple[int, ...]], bool] | None = None,
                  advance: Advance | None = None) -> Iterator[tuple[tuple[int, ...], torch.Tensor]]:
    """Render ``channels`` of ``layer`` in batches of ``batch`` (sounds: 1), yielding ``(chunk, result)`` as each
    batch finishes (see :func:`render_batch`); batches for which ``skip(chunk)`` is true are not rendered."""
    channels = list(channels)
    check_channels(backbone, layer, tuple(channels))
    for i, chunk in enumerate(chunks(channels, 1 if backbone.modality == "audio" else batch)):
        if skip is not None and skip(chunk):
            continue
        yield chunk, render_batch(backbone, layer, chunk, batch_params(params, i), correlation=correlation,
                                  advance=advance)


def class_channels(backbone: Backbone, layer: str, class_: str | int, k: int,
                   inputs: Sequence[torch.Tensor]) -> list[int]:
    """The ``k`` channels of ``layer`` that contribute most to the logit of ``class_`` on ``inputs`` (pictures
    ``(1, 3, H, W)`` of any sizes, or sounds ``(1, samples)``): largest sum over inputs and positions of
    activation × gradient of the logit (a first-order attribution); strongest first."""
    index = backbone.resolve_class(class_)
    count = check_channels(backbone, layer, (0,))
    if not 1 <= k <= count:
        raise ParameterError(f"--top-k {k} is invalid: {layer} has {count} channels")
    if not inputs:
        raise ParameterError("choosing channels for a class needs at least one input")
    score = torch.zeros(count, dtype=torch.float64)
    for x in inputs:
        x = x.detach().requires_grad_(True)
        acts = backbone.taps(x, [layer, "logits"])
        (grad,) = torch.autograd.grad(acts["logits"][:, index].sum(), acts[layer])
        score += (acts[layer] * grad).detach().transpose(0, 1).flatten(1).sum(dim=1).double().cpu()
    return [int(c) for c in score.topk(k).indices]


def atlas_image(images: torch.Tensor, labels: Sequence[str], columns: int = 8, gap: int = 4) -> Image.Image:
    """A grid of pictures ``(K, 3, h, w)`` on white, ``columns`` wide, each with its label drawn below it."""
    if images.dim() != 4 or images.shape[0] != len(labels) or not len(labels):
        raise ParameterError(f"an atlas needs pictures (K, 3, h, w) and K labels; got {tuple(images.shape)} and "
                             f"{len(labels)} labels")
    k, _, h, w = images.shape
    cols = min(columns, k)
    rows = -(-k // cols)
    text = 14
    sheet = Image.new("RGB", (cols * (w + gap) + gap, rows * (h + text + gap) + gap), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i in range(k):
        r, c = divmod(i, cols)
        left, top = gap + c * (w + gap), gap + r * (h + text + gap)
        sheet.paste(to_pil(images[i]), (left, top))
        draw.text((left + 2, top + h + 1), labels[i], fill=(40, 40, 40))
    return sheet
