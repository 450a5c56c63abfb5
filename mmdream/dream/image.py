"""Image Deep Dream: gradient ascent over an octave pyramid with jitter, gradient normalisation and tiling.

Pixels are RGB in [0, 1], shape ``(N, 3, H, W)``; the backbone does its own preprocessing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import torch

from mmdream.backbones.base import Backbone
from mmdream.errors import ParameterError, check_options
from mmdream.objectives.terms import Objective
from mmdream.ops.transforms import random_view
from mmdream.ops.color import preserve_colors
from mmdream.ops.pyramid import normalize_gradient, octave_sizes, resize
from mmdream.ops.tiling import tiled_gradient
from mmdream.progress import ProgressFn, Tracker

GRAD_NORMS = ("laplacian", "std", "mean_abs")
COLOR_MODES = ("none", "luminance", "histogram")
ROBUST_MODES = ("auto", "on", "off")


@dataclass(frozen=True)
class DreamParams:
    """Every option of an image dream, with the defaults that give a good dream unasked.

    ``step_size`` is in pixel units of [0, 1] per step for a normalised gradient. ``jitter``: maximal random roll
    in pixels per step. ``tile``: longest side evaluated at once (0: whole image). ``tile_overlap``: blended
    overlap between tiles in pixels.
    """

    steps: int = field(default=10, metadata={"help": "ascent steps per octave"})
    octaves: int = field(default=4, metadata={"help": "number of octaves (image scales), smallest first"})
    octave_scale: float = field(default=1.4, metadata={"help": "size ratio between successive octaves"})
    step_size: float = field(default=0.005, metadata={"help": "pixel change per step ([0, 1] units) of the "
                                                               "normalised gradient: the dream's strength"})
    jitter: int = field(default=32, metadata={"help": "maximal random shift in pixels per step"})
    grad_norm: str = field(default="laplacian", metadata={"help": "gradient normalisation", "choices": GRAD_NORMS})
    laplacian_levels: int = field(default=4, metadata={"help": "levels of the Laplacian gradient normalisation"})
    tile: int = field(default=1024, metadata={"help": "evaluate images larger than this in tiles of this size "
                                                      "(0: never tile); bounds memory"})
    tile_overlap: int = field(default=64, metadata={"help": "blended overlap between tiles, pixels"})
    preserve_colors: str = field(default="none", metadata={"help": "keep the input's colours",
                                                           "choices": COLOR_MODES})
    robust: str = field(default="auto", metadata={
        "help": "transformation robustness: every step evaluates a randomly zoomed, turned and cropped view at the "
                "classifier's input size, so the dream holds under any resize and crop (auto: for class and theme "
                "objectives; on; off)", "choices": ROBUST_MODES})
    robust_scale: float = field(default=0.25, metadata={"help": "robust views: random zoom within 1 ± this"})
    robust_angle: float = field(default=8.0, metadata={"help": "robust views: random turn within ± this, degrees"})
    robust_gain: float = field(default=1.5, metadata={"help": "robust views: step size multiplier (a view moves only "
                                                               "the pixels it sees, and views pull different ways)"})
    seed: int = field(default=0, metadata={"help": "random seed: same seed, same input, same output"})

    def validate(self) -> DreamParams:
        """Raise ParameterError naming the first bad option; return self."""
        checks = [
            (1 <= self.steps <= 10_000, "steps", "an integer from 1 to 10000"),
            (1 <= self.octaves <= 12, "octaves", "an integer from 1 to 12"),
            (1.0 < self.octave_scale <= 4.0, "octave_scale", "a number above 1 and at most 4"),
            (0.0 < self.step_size <= 1.0, "step_size", "a number above 0 and at most 1"),
            (0 <= self.jitter <= 512, "jitter", "an integer from 0 to 512"),
            (self.grad_norm in GRAD_NORMS, "grad_norm", f"one of {', '.join(GRAD_NORMS)}"),
            (1 <= self.laplacian_levels <= 8, "laplacian_levels", "an integer from 1 to 8"),
            (self.tile == 0 or 64 <= self.tile <= 8192, "tile", "0 (no tiling) or 64 to 8192 pixels"),
            (0 <= self.tile_overlap < max(self.tile, 1) // 2 or self.tile == 0, "tile_overlap",
             "at least 0 and under half the tile"),
            (self.preserve_colors in COLOR_MODES, "preserve_colors", f"one of {', '.join(COLOR_MODES)}"),
            (self.robust in ROBUST_MODES, "robust", f"one of {', '.join(ROBUST_MODES)}"),
            (0.0 <= self.robust_scale < 1.0, "robust_scale", "at least 0 and below 1"),
            (0.0 <= self.robust_angle <= 45.0, "robust_angle", "from 0 to 45 degrees"),
            (0.0 < self.robust_gain <= 10.0, "robust_gain", "a number above 0 and at most 10"),
        ]
        check_options(self, checks)
        return self


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
