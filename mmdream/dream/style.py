"""Neural style transfer (Gatys et al.) on an image backbone's features, coarse to fine, for stills and films.

The result ``x`` (RGB in [0, 1], ``(1, 3, H, W)``) minimises

    content_weight x mean over content layers of ||F(x) - F(content)||² / ||F(content)||²
  + style_weight x mean over style layers of the Gram (or W2) distance of F(x) to the styles' statistics
  + tv_weight x total variation,

by Adam (or L-BFGS) on the pixels, over ``scales`` sizes growing by √2 up to ``size`` (each scale starts from the
previous result, upscaled), with iterate averaging (the output is an exponential moving average of the iterates,
which removes the optimiser's high-frequency jitter). Several styles blend their statistics with ``style_weights``;
``style_scale`` sets the size the styles are seen at relative to the content; colours can be kept (``luminance``
transfer or ``histogram`` matching). Large images are optimised tile by tile (``tile``): each tile matches the
global style statistics and its own content.

Films (:func:`style_frames`): each frame starts from the previous stylised frame carried by the optical flow where
it is reliable, and a temporal loss keeps reliable pixels near it (Ruder et al.).

>>> styled = style_image(content, [starry], vgg16, StyleParams(size=512))
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch

from mmdream.backbones.base import Backbone
from mmdream.errors import ParameterError
from mmdream.objectives.terms import StyleAccumulator, StyleStats, feature_loss, parse_layers, style_distance
from mmdream.dream.image import COLOR_MODES
from mmdream.dream.temporal import quantize
from mmdream.options import Options, option, seed_option
from mmdream.ops.color import preserve_colors
from mmdream.ops.flow import motion, warp
from mmdream.ops.pyramid import resize
from mmdream.ops.tiling import tiled_gradient
from mmdream.progress import ProgressFn, Tracker

__all__ = ["StyleParams", "StyledFilmParams", "FrameStyle", "style_targets", "style_image", "style_frames",
           "style_gradient", "style_losses"]

LOSSES = ("gram", "w2")
OPTIMIZERS = ("adam", "lbfgs")
INITS = ("content", "style", "noise")
MIN_SIDE = 32  # coarse scales whose shorter side would be smaller are skipped (the backbone mirrors smaller
# pictures up to its own smallest input, see Backbone.min_side)


@dataclass(frozen=True)
class StyleParams(Options):
    """Every option of a style transfer, with defaults that give a clearly stylised, recognisable picture."""

    content_layers: str = option("relu4_2", "layers whose features keep the content")
    style_layers: str = option("relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", "layers whose statistics carry the style")
    content_weight: float = option(1.0, "weight of the content loss", ge=0.0)
    style_weight: float = option(10.0, "weight of the style loss", ge=0.0)
    tv_weight: float = option(0.0, "weight of the total-variation loss (smoothness)", ge=0.0)
    loss: str = option("gram", "style statistics: Gram matrices or Gaussian W2", choices=LOSSES)
    size: int = option(512, "longer side of the result, pixels", ge=32, le=8192, unit="pixels")
    scales: int = option(3, "coarse-to-fine sizes, each √2 larger, ending at --size", ge=1, le=8)
    steps: int = option(100, "optimiser steps per scale", ge=0, le=10_000)
    optimizer: str = option("adam", "pixel optimiser", choices=OPTIMIZERS)
    lr: float = option(0.02, "Adam's step size in [0, 1] pixel units (L-BFGS: 1)", gt=0.0, le=10.0)
    init: str = option("content", "start from the content, the (first) style, or noise", choices=INITS)
    style_scale: float = option(1.0, "size the styles are seen at, relative to the result's size", ge=0.1, le=4.0)
    average: float = option(0.9, "iterate averaging: the result is this exponential moving average of the "
                                 "iterates (0: the last iterate)", ge=0.0, lt=1.0)
    preserve_colors: str = option("none", "keep the content's colours", choices=COLOR_MODES, const="luminance",
                                  metavar="MODE")
    tile: int = option(0, "optimise in tiles of this size when larger (0: never)", ge=128, le=4096, off=0,
                       unit="pixels")
    seed: int = seed_option("random seed (noise init)")


@dataclass(frozen=True)
class StyledFilmParams(Options):
    """Options of a styled film beyond the still ones (:class:`StyleParams` styles each shot's first frame)."""

    frame_steps: int = option(30, "optimiser steps per frame after a shot's first", ge=1, le=10_000)
    temporal_weight: float = option(500.0, "pull of reliable pixels toward the warped previous styled frame "
                                           "(temporal loss)", ge=0.0)


def _names(spec: str, backbone: Backbone) -> tuple[str, ...]:
    return tuple(name for name, _ in parse_layers(spec, backbone))


def _flat(a: torch.Tensor) -> torch.Tensor:
    return a[0].flatten(1)  # (1, C, H, W) -> (C, M)


def style_targets(styles: Sequence[torch.Tensor], backbone: Backbone, params: StyleParams,
                  weights: Sequence[float] | None = None) -> StyleStats:
    """Statistics of ``styles`` (each ``(1, 3, h, w)`` in [0, 1]), seen with a longer side of ``size x
    style_scale``, blended with ``weights`` (default: equal; normalised to sum 1)."""
    if not styles:
        raise ParameterError("give at least one style image")
    weights = [1.0] * len(styles) if weights is None else list(weights)
    if len(weights) != len(styles) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ParameterError(f"style weights {weights} must be {len(styles)} non-negative numbers, not all 0")
    layers = _names(params.style_layers, backbone)
    acc = StyleAccumulator()
    with torch.no_grad():
        for style, w in zip(styles, weights):
            acts = backbone.taps(_fit(style, round(params.size * params.style_scale)), layers)
            for name in layers:
                f = _flat(acts[name])
                acc.add(name, f, w / sum(weights) / f.shape[1])  # each style counts its weight, whatever its size
    return acc.stats(params.loss == "w2", styles[0].dtype)


def style_losses(x: torch.Tensor, content: torch.Tensor, targets: StyleStats, backbone: Backbone,
                 params: StyleParams, content_acts: dict[str, torch.Tensor] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(content loss, style loss) of ``x`` ``(1, 3, H, W)`` against ``content`` (same size) and the targets."""
    c_layers, s_layers = _names(params.content_layers, backbone), tuple(targets.gram)
    acts = backbone.taps(x, tuple(dict.fromkeys(c_layers + s_layers)))
    if content_acts is None:
        with torch.no_grad():
            content_acts = backbone.taps(content, c_layers)
    content_loss = torch.stack([feature_loss(acts[n], content_acts[n]) for n in c_layers]).mean()
    return content_loss, style_distance({n: _flat(acts[n]) for n in s_layers}, targets, s_layers)


def _tv(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def _gradient(x: torch.Tensor, content: torch.Tensor, targets: StyleStats, backbone: Backbone,
              params: StyleParams, anchor: tuple[torch.Tensor, torch.Tensor] | None, temporal_weight: float,
              content_acts: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, float]:
    """Gradient of the total loss w.r.t. ``x`` and its value; ``anchor``: (warped previous frame, reliable mask);
    ``content_acts``: the content's features, if already computed."""
    x = x.detach().requires_grad_(True)
    c, s = style_losses(x, content, targets, backbone, params, content_acts)
    loss = params.content_weight * c + params.style_weight * s
    if params.tv_weight:
        loss = loss + params.tv_weight * _tv(x)
    if anchor is not None and temporal_weight > 0:
        previous, mask = anchor
        loss = loss + temporal_weight * (mask * (x - previous).square()).mean() / mask.mean().clamp_min(1e-6)
    (grad,) = torch.autograd.grad(loss, x)
    return grad, float(loss.detach())


def _tiled(x: torch.Tensor, params: StyleParams) -> bool:
    return bool(params.tile) and max(x.shape[-2:]) > params.tile


def style_gradient(x: torch.Tensor, content: torch.Tensor, targets: StyleStats, backbone: Backbone,
                   params: StyleParams, anchor: tuple[torch.Tensor, torch.Tensor] | None, temporal_weight: float,
                   content_acts: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, float]:
    """The gradient over the whole picture, or tile by tile (blended) when it is larger than ``tile``: each tile
    is cut from the result, the content and the anchor alike (stacked as channels) and matches the global style.
    ``content_acts``: the whole content's features (untiled only), computed once per optimisation."""
    if not _tiled(x, params):
        return _gradient(x, content, targets, backbone, params, anchor, temporal_weight, content_acts)
    parts = [x, content] + ([] if anchor is None else [anchor[0], anchor[1].expand_as(x[:, :1])])

    def tile_gradient(stack: torch.Tensor) -> tuple[torch.Tensor, float]:
        t = stack.split([3, 3] + ([3, 1] if anchor is not None else []), dim=1)
        grad, value = _gradient(t[0], t[1], targets, backbone, params,
                                None if anchor is None else (t[2], t[3]), temporal_weight)
        return torch.cat([grad, torch.zeros_like(stack[:, 3:])], dim=1), value

    grad, value = tiled_gradient(tile_gradient, torch.cat(parts, dim=1), params.tile, params.tile // 8)
    return grad[:, :3], value


def _optimise(x: torch.Tensor, content: torch.Tensor, targets: StyleStats, backbone: Backbone,
              params: StyleParams, steps: int, tracker: Tracker, stage: str,
              anchor: tuple[torch.Tensor, torch.Tensor] | None = None, temporal_weight: float = 0.0
              ) -> torch.Tensor:
    """``steps`` optimiser steps on ``x`` ``(1, 3, H, W)``; returns the averaged iterate, clamped to [0, 1]."""
    content_acts = None
    if not _tiled(x, params):
        with torch.no_grad():
            content_acts = backbone.taps(content, _names(params.content_layers, backbone))  # once, not every step
    x = x.detach().clone().requires_grad_(True)
    mean = x.detach().clone()
    if params.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam([x], lr=params.lr)
    else:
        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=1, history_size=10)
    for _ in range(steps):
        value = 0.0

        def closure() -> torch.Tensor:
            nonlocal value
            x.grad, value = style_gradient(x, content, targets, backbone, params, anchor, temporal_weight,
                                           content_acts)
            return torch.tensor(value)

        opt.step(closure)
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
            mean.mul_(params.average).add_(x.detach(), alpha=1 - params.average)
        tracker.advance(value, stage=stage)
    return (mean if params.average > 0 and steps > 0 else x.detach()).clamp(0.0, 1.0)


def _fit(image: torch.Tensor, side: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    scale = side / max(h, w)
    return resize(image, (max(1, round(h * scale)), max(1, round(w * scale))))


def _check(image: torch.Tensor, name: str) -> None:
    if image.dim() != 4 or image.shape[:2] != (1, 3) or not image.is_floating_point():
        raise ParameterError(f"{name} must be one RGB image (1, 3, H, W) in [0, 1]; got {tuple(image.shape)}")


def style_image(
    content: torch.Tensor,
    styles: Sequence[torch.Tensor],
    backbone: Backbone,
    params: StyleParams = StyleParams(),
    *,
    style_weights: Sequence[float] | None = None,
    progress: ProgressFn | None = None,
) -> torch.Tensor:
    """``content`` ``(1, 3, H, W)`` in the style of ``styles`` (each ``(1, 3, h, w)``): ``(1, 3, h', w')`` with a
    longer side of ``params.size``, in [0, 1]. See the module docstring."""
    params.validate()
    _check(content, "content")
    for style in styles:
        _check(style, "a style")
    if backbone.modality != "image":
        raise ParameterError(f"{backbone.name} hears sounds; style pictures with an image backbone (vgg16)")
    final = _fit(content, params.size)
    aspect = min(final.shape[-2:]) / max(final.shape[-2:])
    sizes = [round(params.size / math.sqrt(2) ** k) for k in range(params.scales - 1, -1, -1)]
    sizes = [side for side in sizes[:-1] if side * aspect >= MIN_SIDE] + sizes[-1:]  # coarse scales that fit
    targets = style_targets(styles, backbone, params, style_weights)
    tracker = Tracker(len(sizes) * params.steps, progress, stage="style")
    x: torch.Tensor | None = None
    for i, side in enumerate(sizes):
        base = final if i == len(sizes) - 1 else _fit(content, side)
        if x is None:
            if params.init == "content":
                x = base.clone()
            elif params.init == "style":
                x = resize(styles[0], tuple(base.shape[-2:]))
            else:
                g = torch.Generator().manual_seed(params.seed)
                x = torch.rand(base.shape, generator=g).to(base)
        else:
            x = resize(x, tuple(base.shape[-2:]))
        x = _optimise(x, base, targets, backbone, params, params.steps, tracker, f"scale {i + 1}/{len(sizes)}")
    assert x is not None
    return preserve_colors(x, final, params.preserve_colors)


@dataclass(frozen=True)
class FrameStyle:
    """Per-frame facts of a styled film: ``cut`` (styled as a still), share of reliable flow, the losses."""

    index: int
    cut: bool
    reliable: float
    content_loss: float
    style_loss: float


def style_frames(
    frames: Iterable[torch.Tensor],
    styles: Sequence[torch.Tensor],
    backbone: Backbone,
    params: StyleParams = StyleParams(),
    video: StyledFilmParams = StyledFilmParams(),
    *,
    frame_lr: float | None = None,
    style_weights: Sequence[float] | None = None,
    flow: str = "dis",
    start: int = 0,
    state: tuple[torch.Tensor, torch.Tensor] | None = None,
    total: int = 0,
    progress: ProgressFn | None = None,
) -> Iterator[tuple[torch.Tensor, FrameStyle]]:
    """Style a film's frames ``(3, H, W)`` (at their own size; indices ``start, start + 1, ...``): the first frame
    (and each after a scene cut) as a still with ``params``; every later one from the previous result warped by the
    flow where it is reliable (the content elsewhere), ``video.frame_steps`` small steps (Adam at ``frame_lr``,
    default a quarter of ``params.lr``: a correction, not a repaint) at full size with a temporal loss of
    ``video.temporal_weight`` on reliable pixels. ``state``: the previous frame's source and styled frame when resuming.
    Yields ``(frame (3, H, W), FrameStyle)``; progress counts frames of ``total``."""
    params.validate()
    video.validate()
    targets: StyleStats | None = None
    tracker = Tracker(total, progress, stage="frames")
    prev_source, prev_styled = state if state is not None else (None, None)
    for index, source in enumerate(frames, start=start):
        if source.dim() != 3 or source.shape[0] != 3:
            raise ParameterError(f"frames must be (3, H, W) RGB, got shape {tuple(source.shape)}")
        content = source[None]
        if targets is None:
            targets = style_targets(styles, backbone, dataclasses.replace(params, size=max(content.shape[-2:])),
                                    style_weights)
        mot = None if prev_source is None else motion(prev_source, source, flow)
        if mot is None or mot.cut:
            still = dataclasses.replace(params, size=max(content.shape[-2:]))
            styled = style_image(content, styles, backbone, still, style_weights=style_weights)
            reliable = 1.0
        else:
            warped = warp(prev_styled, mot.backward)
            mask = mot.mask[None, None]
            init = mask * warped + (1 - mask) * content
            small = dataclasses.replace(params, lr=params.lr / 4 if frame_lr is None else frame_lr)
            styled = _optimise(init, content, targets, backbone, small, video.frame_steps, Tracker(0, None), "frame",
                               anchor=(warped, mask), temporal_weight=video.temporal_weight)
            styled = preserve_colors(styled, content, params.preserve_colors)
            reliable = mot.reliable
        styled = quantize(styled)  # what a frame file holds: a resumed film equals an uninterrupted one
        with torch.no_grad():
            c, s = style_losses(styled, content, targets, backbone, params)
        prev_source, prev_styled = source, styled[0]
        yield styled[0], FrameStyle(index, mot is None or mot.cut, reliable, float(c), float(s))
        tracker.advance(float(s))
