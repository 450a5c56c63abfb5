"""Image Deep Dream: gradient ascent over an octave pyramid with jitter, gradient normalisation and tiling.

Pixels are RGB in [0, 1], shape ``(N, 3, H, W)``; the backbone does its own preprocessing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import torch

from mmdream.backbones.base import Backbone
from mmdream.errors import ParameterError
from mmdream.objectives.terms import Objective
from mmdream.options import Options, option, seed_option
from mmdream.ops.transforms import random_view
from mmdream.ops.color import preserve_colors
from mmdream.ops.pyramid import normalize_gradient, octave_sizes, resize
from mmdream.ops.tiling import tiled_gradient
from mmdream.progress import ProgressFn, Tracker

GRAD_NORMS = ("laplacian", "std", "mean_abs")
COLOR_MODES = ("none", "luminance", "histogram")
ROBUST_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class DreamParams(Options):
    """Every option of an image dream, with the defaults that give a good dream unasked.

    ``step_size`` is in pixel units of [0, 1] per step for a normalised gradient. ``jitter``: maximal random roll
    in pixels per step. ``tile``: longest side evaluated at once (0: whole image). ``tile_overlap``: blended
    overlap between tiles in pixels.
    """

    steps: int = option(10, "ascent steps per octave", ge=1, le=10_000)
    octaves: int = option(4, "number of octaves (image scales), smallest first", ge=1, le=12)
    octave_scale: float = option(1.4, "size ratio between successive octaves", gt=1.0, le=4.0)
    step_size: float = option(0.005, "pixel change per step ([0, 1] units) of the normalised gradient: the dream's "
                                     "strength", gt=0.0, le=1.0)
    jitter: int = option(32, "maximal random shift in pixels per step", ge=0, le=512)
    grad_norm: str = option("laplacian", "gradient normalisation", choices=GRAD_NORMS)
    laplacian_levels: int = option(4, "levels of the Laplacian gradient normalisation", ge=1, le=8)
    tile: int = option(1024, "evaluate images larger than this in tiles of this size (0: never tile); bounds memory",
                       ge=64, le=8192, off=0, unit="pixels")
    tile_overlap: int = option(64, "blended overlap between tiles, pixels", ge=0)
    preserve_colors: str = option("none", "keep the input's colours", choices=COLOR_MODES, const="luminance",
                                  metavar="MODE")
    robust: str = option("auto", "transformation robustness: every step evaluates a randomly zoomed, turned and "
                                 "cropped view at the classifier's input size, so the dream holds under any resize "
                                 "and crop (auto: for class and theme objectives; on; off)", choices=ROBUST_MODES)
    robust_scale: float = option(0.25, "robust views: random zoom within 1 ± this", ge=0.0, lt=1.0)
    robust_angle: float = option(8.0, "robust views: random turn within ± this, degrees", ge=0.0, le=45.0,
                                 unit="degrees")
    robust_gain: float = option(1.5, "robust views: step size multiplier (a view moves only the pixels it sees, and "
                                     "views pull different ways)", gt=0.0, le=10.0)
    seed: int = seed_option("random seed: same seed, same input, same output")

    def cross_checks(self) -> Iterable[tuple[bool, str, str]]:
        return [(self.tile == 0 or self.tile_overlap < self.tile // 2, "tile_overlap", "under half the tile")]


def robust_views(params: DreamParams, objective: Objective) -> bool:
    """Whether a dream evaluates its objective on random classifier views (``robust``; auto: class objectives)."""
    return params.robust == "on" or (params.robust == "auto" and objective.classifies)


def _gradient(backbone: Backbone, objective: Objective, x: torch.Tensor,
              view: Callable[[torch.Tensor], torch.Tensor] | None = None) -> tuple[torch.Tensor, float]:
    """Gradient of the objective with respect to pixels ``x`` ``(N, 3, h, w)`` and the objective's value, evaluated
    on ``view(x)`` if given."""
    x = x.detach().requires_grad_(True)
    value = objective(backbone.taps(x if view is None else view(x), objective.layers))
    (grad,) = torch.autograd.grad(value, x)
    return grad, float(value.detach())


def dream_step(x: torch.Tensor, backbone: Backbone, objective: Objective, params: DreamParams,
               generator: torch.Generator) -> tuple[torch.Tensor, float]:
    """One ascent step on ``x`` ``(N, 3, H, W)``: random roll, (tiled) gradient (on a random classifier view with
    :func:`robust_views`), normalisation, clamped update."""
    h, w = x.shape[-2:]
    tiled = params.tile and max(h, w) > params.tile
    # Tiled: roll over a whole tile period so that tile edges fall somewhere else at every step.
    span_y, span_x = (params.tile, params.tile) if tiled else (2 * params.jitter + 1, 2 * params.jitter + 1)
    dy, dx = (int(torch.randint(0, s, (1,), generator=generator)) - (0 if tiled else params.jitter)
              for s in (span_y, span_x))
    rolled = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
    step_size = params.step_size
    if tiled:
        grad, value = tiled_gradient(lambda t: _gradient(backbone, objective, t), rolled, params.tile,
                                     params.tile_overlap)
    elif robust_views(params, objective):
        view = partial(random_view, side=backbone.input_size, scale=params.robust_scale, angle=params.robust_angle,
                       generator=generator)
        grad, value = _gradient(backbone, objective, rolled, view)
        step_size *= params.robust_gain
    else:
        grad, value = _gradient(backbone, objective, rolled)
    del rolled  # full-size copies are what bounds memory on huge tiled images: keep as few alive as possible
    grad = torch.roll(grad, shifts=(-dy, -dx), dims=(-2, -1))
    grad = normalize_gradient(grad, params.grad_norm, params.laplacian_levels)
    return torch.add(x, grad, alpha=step_size).clamp_(0.0, 1.0), value


def dream_octaves(
    image: torch.Tensor,
    backbone: Backbone,
    objective: Objective,
    params: DreamParams = DreamParams(),
    *,
    init: torch.Tensor | None = None,
    progress: ProgressFn | None = None,
) -> Iterator[torch.Tensor]:
    """Dream ``image`` ``(N, 3, H, W)`` octave by octave, yielding the result at each octave's size.

    The detail gained at one octave (result minus the downscaled source) is upscaled and carried to the next.
    ``init``: start from this image (full size) instead of ``image``, e.g. a warped previous dream in a film;
    its difference from ``image`` is the initial detail. The last yield is full size, with colours preserved if
    asked.
    """
    params.validate()
    if image.dim() != 4 or image.shape[1] != 3:
        raise ParameterError(f"image must be (N, 3, H, W) RGB, got shape {tuple(image.shape)}")
    generator = torch.Generator().manual_seed(params.seed)
    h, w = image.shape[-2:]
    sizes = octave_sizes(h, w, params.octaves, params.octave_scale)
    tracker = Tracker(len(sizes) * params.steps, progress)
    detail_full = None if init is None else (init - image)
    detail: torch.Tensor | None = None
    for i, size in enumerate(sizes):
        base = resize(image, size)
        if detail is None:
            detail = torch.zeros_like(base) if detail_full is None else resize(detail_full, size)
        else:
            detail = resize(detail, size)
        x = (base + detail).clamp_(0.0, 1.0)
        for _ in range(params.steps):
            x, value = dream_step(x, backbone, objective, params, generator)
            tracker.advance(value, stage=f"octave {i + 1}/{len(sizes)}")
        detail = x - base
        if i == len(sizes) - 1:
            x = preserve_colors(x, image, params.preserve_colors)
        yield x.detach()


def dream_image(
    image: torch.Tensor,
    backbone: Backbone,
    objective: Objective,
    params: DreamParams = DreamParams(),
    *,
    init: torch.Tensor | None = None,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """Dreamed image ``(N, 3, H, W)`` in [0, 1]; see :func:`dream_octaves`."""
    result = image
    for result in dream_octaves(image, backbone, objective, params, init=init, progress=progress):
        pass
    return result
