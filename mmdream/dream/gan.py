"""Dreams through a generator: the generator is the image prior (Nguyen et al.'s deep generator network).

Instead of pixels, the generator's latent ``z`` (and, for a class-conditional generator, the softmax of class
logits) is optimised so that a backbone's objective of ``G(z)`` rises — any objective of
:func:`mmdream.objectives.terms.build_objective`: class, layers, channels. ``G(z)`` is resized to the backbone's input
side and randomly scaled and shifted at every step (transformation robustness), and a prior keeps the latent where
the generator was trained: a penalty on ``(|z| / sqrt(dim) - 1)²`` and every value clamped to ``±truncation``.
Several restarts run as one batch; the best (objective of the un-augmented image) is kept.

A photo is dreamed by projecting it first (optimise ``z`` so that ``G(z)`` reconstructs it: pixel MSE, optionally
plus a feature distance), dreaming from that latent, and adding back the photo's detail the generator could not
draw (``blend``). :func:`range_check` asks whether an image is in the generator's range: its re-projection error
against that of the generator's own random samples.

Images are RGB ``(N, 3, H, W)`` in [0, 1]; latents ``(N, latent_dim)``; class vectors ``(N, num_classes)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from mmdream.backbones.base import Backbone
from mmdream.backbones.generators import Generator
from mmdream.errors import ParameterError
from mmdream.objectives.terms import Objective
from mmdream.options import Options, option, seed_option
from mmdream.ops.pyramid import resize
from mmdream.progress import ProgressFn, Tracker

CANDIDATES = 16  # random latents tried per projection restart to choose its start

__all__ = ["GanDreamParams", "GanDream", "RangeCheck", "dream_latent", "dream_photo", "project", "range_check",
           "class_probability", "square_crop"]


@dataclass(frozen=True)
class GanDreamParams(Options):
    """Every option of a dream through a generator."""

    steps: int = option(120, "optimisation steps of the latent", ge=1, le=100_000)
    restarts: int = option(4, "independent random starts (one batch); the best is kept", ge=1, le=256)
    lr: float = option(0.05, "learning rate of the latent (Adam)", gt=0.0, le=10.0)
    prior: float = option(1.0, "weight of the latent prior (|z| / sqrt(dim) - 1)²: keeps the dream in the "
                               "generator's range", ge=0.0, le=10_000.0)
    truncation: float = option(3.0, "clamp every latent value to ±this (0: no clamp)", ge=0.5, le=100.0, off=0.0)
    input_size: int = option(0, "side at which the backbone sees G(z), pixels (0: the backbone's own, 224 for "
                                "ImageNet nets)", ge=16, le=2048, off=0, unit="pixels")
    jitter: float = option(0.06, "random shift of G(z) per step, as a share of its side", ge=0.0, le=0.5)
    scale: float = option(0.1, "random zoom of G(z) per step, up to ±this share", ge=0.0, le=0.5)
    project_steps: int = option(150, "steps that project a photo (or an image to check) into the latent", ge=1,
                                le=100_000)
    feature_weight: float = option(0.0, "photo projection: weight of the backbone feature distance beside the pixel "
                                        "error", ge=0.0, le=10_000.0)
    blend: float = option(1.0, "photo dream: share of the photo's detail the generator cannot draw that is added "
                               "back (0: the generator's image alone)", ge=0.0, le=1.0)
    seed: int = seed_option("random seed: same seed, same dream")


@dataclass(frozen=True)
class GanDream:
    """The best restart: ``image`` ``(1, 3, size, size)``, its ``latent`` ``(1, latent_dim)`` and class vector
    ``(1, num_classes)`` (None when unconditional); ``values``: every restart's final objective."""

    image: torch.Tensor
    latent: torch.Tensor
    onehot: torch.Tensor | None
    values: list[float]


@dataclass(frozen=True)
class RangeCheck:
    """Re-projection error of an image — pixel MSE over the image's variance: the share of its variance the best
    latent found leaves unexplained — and that of the generator's own random samples (``reference``): ``ratio`` =
    error / median reference; ``in_range`` when the ratio is at most ``tolerance``."""

    error: float
    reference: tuple[float, ...]
    tolerance: float

    @property
    def ratio(self) -> float:
        ref = sorted(self.reference)
        return self.error / max(ref[len(ref) // 2], 1e-12)

    @property
    def in_range(self) -> bool:
        return self.ratio <= self.tolerance

    def record(self) -> dict[str, Any]:
        return {"error": round(self.error, 6), "reference_median": round(sorted(self.reference)[len(self.reference)
                                                                                                // 2], 6),
                "reference_max": round(max(self.reference), 6), "ratio": round(self.ratio, 3),
                "tolerance": self.tolerance, "in_range": self.in_range}


def square_crop(image: torch.Tensor) -> torch.Tensor:
    """The centre square of ``(N, 3, H, W)``."""
    h, w = image.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return image[..., top:top + s, left:left + s]


def _uniform(gen: torch.Generator) -> float:
    return float(torch.rand((), generator=gen))


def _augment(x: torch.Tensor, size: int, jitter: float, scale: float, gen: torch.Generator) -> torch.Tensor:
    """``x`` ``(N, 3, s, s)`` resized to ``size`` × a random zoom, shifted randomly, cropped to ``(N, 3, size,
    size)`` (edges replicated)."""
    side = max(8, round(size * (1.0 + scale * (2 * _uniform(gen) - 1))))
    x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
    margin = max(round(jitter * size), 0) + max(size - side, 0)
    if margin:
        x = F.pad(x, (margin,) * 4, mode="replicate")
    room = x.shape[-1] - size
    top, left = (int(torch.randint(0, room + 1, (), generator=gen)) for _ in range(2))
    return x[..., top:top + size, left:left + size]


def _prior(z: torch.Tensor) -> torch.Tensor:
    """Per-latent penalty ``(N,)``: (|z| / sqrt(dim) - 1)²."""
    return (z.norm(dim=1) / math.sqrt(z.shape[1]) - 1.0).square()


def _class_vector(generator: Generator, logits: torch.Tensor | None, class_index: int | None, n: int
                  ) -> torch.Tensor | None:
    if not generator.num_classes:
        return None
    if class_index is not None:
        return generator.one_hot(class_index, n)
    assert logits is not None
    return torch.softmax(logits, dim=1)


def _check_class(generator: Generator, class_index: int | None) -> None:
    if class_index is None:
        return
    if not generator.num_classes:
        raise ParameterError("this generator is not class-conditional; give no generator class")
    if not 0 <= class_index < generator.num_classes:
        raise ParameterError(f"generator class {class_index} is out of range: it has classes 0.."
                             f"{generator.num_classes - 1}")


def _per_item(objective: Objective, backbone: Backbone, images: torch.Tensor) -> list[float]:
    """Objective of each image alone (no gradients)."""
    return [objective.evaluate(backbone, images[i:i + 1]) for i in range(images.shape[0])]


def _ascend(generator: Generator, backbone: Backbone, objective: Objective, params: GanDreamParams,
            z: torch.Tensor, logits: torch.Tensor | None, class_index: int | None, gen: torch.Generator,
            tracker: Tracker) -> GanDream:
    """Adam on ``z`` ``(R, dim)`` (and class logits) maximising the objective under the prior; the best kept."""
    size = params.input_size or backbone.input_size
    z = z.clone().requires_grad_(True)
    variables = [z] + ([logits.clone().requires_grad_(True)] if logits is not None else [])
    opt = torch.optim.Adam(variables, lr=params.lr)
    for _ in range(params.steps):
        onehot = _class_vector(generator, variables[1] if logits is not None else None, class_index, z.shape[0])
        x = _augment(generator.generate(z, onehot), size, params.jitter, params.scale, gen)
        value = objective(backbone.taps(x, objective.layers))
        loss = -value + params.prior * _prior(z).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if params.truncation:
            with torch.no_grad():
                z.clamp_(-params.truncation, params.truncation)
        tracker.advance(float(value.detach()))
    with torch.no_grad():
        onehot = _class_vector(generator, variables[1] if logits is not None else None, class_index, z.shape[0])
        images = generator.generate(z, onehot)
        values = _per_item(objective, backbone, resize(images, (size, size)))
    best = max(range(len(values)), key=values.__getitem__)
    return GanDream(images[best:best + 1].detach(), z[best:best + 1].detach(),
                    None if onehot is None else onehot[best:best + 1].detach(), [round(v, 6) for v in values])


def dream_latent(generator: Generator, backbone: Backbone, objective: Objective,
                 params: GanDreamParams = GanDreamParams(), *, class_index: int | None = None,
                 progress: ProgressFn | None = None) -> GanDream:
    """Dream from ``params.restarts`` random latents (seeded); ``class_index``: fix a conditional generator's
    class (else its class mix is optimised too)."""
    params.validate()
    _check_class(generator, class_index)
    gen = torch.Generator().manual_seed(params.seed)
    z = torch.randn(params.restarts, generator.latent_dim, generator=gen)
    if params.truncation:
        z = z.clamp(-params.truncation, params.truncation)
    logits = torch.zeros(params.restarts, generator.num_classes) if generator.num_classes and class_index is None \
        else None
    return _ascend(generator, backbone, objective, params, z, logits, class_index, gen,
                   Tracker(params.steps, progress, stage="dream"))


def _closest_starts(generator: Generator, squares: torch.Tensor, r: int, params: GanDreamParams,
                    class_index: int | None) -> torch.Tensor:
    """Starting latents ``(N * r, dim)``: for each image ``(N, 3, s, s)`` the ``r`` of ``CANDIDATES * r`` seeded
    random latents whose images are closest to it (one forward pass each: a much better start than blind)."""
    gen = torch.Generator().manual_seed(params.seed + 1)
    k = CANDIDATES * r
    z = torch.randn(k, generator.latent_dim, generator=gen)
    if params.truncation:
        z = z.clamp(-params.truncation, params.truncation)
    with torch.no_grad():
        onehot = _class_vector(generator, torch.zeros(k, generator.num_classes) if generator.num_classes else None,
                               class_index, k)
        errors = torch.cat([torch.cdist(squares.flatten(1), generator.generate(
            z[i:i + 64], None if onehot is None else onehot[i:i + 64]).flatten(1)) for i in range(0, k, 64)], dim=1)
    return z[errors.topk(r, dim=1, largest=False).indices.flatten()]


def project(generator: Generator, images: torch.Tensor, params: GanDreamParams = GanDreamParams(), *,
            backbone: Backbone | None = None, class_index: int | None = None, progress: ProgressFn | None = None
            ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Latents that reconstruct ``images`` ``(N, 3, H, W)`` (centre squares, resized to the generator's side):
    ``(N, dim)``, class vectors ``(N, classes)`` or None, and each image's pixel MSE ``(N,)``. ``params.restarts``
    starts per image, ``params.project_steps`` Adam steps, the prior and clamp as in a dream; with ``backbone`` and
    ``params.feature_weight`` > 0 the relative feature distance at its default layers is added."""
    params.validate()
    _check_class(generator, class_index)
    n, r = images.shape[0], params.restarts
    squares = resize(square_crop(images), (generator.size, generator.size))
    target = squares.repeat_interleave(r, dim=0)
    z = _closest_starts(generator, squares, r, params, class_index).requires_grad_(True)
    logits = torch.zeros(n * r, generator.num_classes, requires_grad=True) if generator.num_classes else None
    opt = torch.optim.Adam([z] + ([logits] if logits is not None and class_index is None else []), lr=params.lr)
    use_features = backbone is not None and params.feature_weight > 0
    if use_features:
        assert backbone is not None
        layers = list(backbone.default_layers)
        with torch.no_grad():
            wanted = backbone.taps(target, layers)
    tracker = Tracker(params.project_steps, progress, stage="project")
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, params.project_steps)  # settle into the minimum
    for _ in range(params.project_steps):
        x = generator.generate(z, _class_vector(generator, logits, class_index, n * r))
        per = (x - target).square().mean(dim=(1, 2, 3))
        loss = per.sum() + params.prior * _prior(z).sum() / 100.0
        if use_features:
            assert backbone is not None
            acts = backbone.taps(x, layers)
            loss = loss + params.feature_weight * sum(
                ((acts[k] - wanted[k]).square().flatten(1).sum(1) / wanted[k].square().flatten(1).sum(1)
                 .clamp_min(1e-12)).sum() for k in layers)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        schedule.step()
        if params.truncation:
            with torch.no_grad():
                z.clamp_(-params.truncation, params.truncation)
        tracker.advance(float(per.detach().mean()))
    with torch.no_grad():
        onehot = _class_vector(generator, logits, class_index, n * r)
        errors = (generator.generate(z, onehot) - target).square().mean(dim=(1, 2, 3)).view(n, r)
    best = errors.argmin(dim=1) + torch.arange(n) * r
    return (z[best].detach(), None if onehot is None else onehot[best].detach(), errors.min(dim=1).values)


def dream_photo(generator: Generator, backbone: Backbone, objective: Objective, photo: torch.Tensor,
                params: GanDreamParams = GanDreamParams(), *, size: int = 256, class_index: int | None = None,
                progress: ProgressFn | None = None) -> tuple[GanDream, torch.Tensor]:
    """Dream a photo ``(1, 3, H, W)`` through the generator: project its centre square, dream from that latent
    (restarts start near it), and return the dream and the output ``(1, 3, size, size)`` = the dream's image
    resized + ``blend`` × (photo - its projection's image), so the photo's detail the generator cannot draw stays."""
    params.validate()
    if photo.dim() != 4 or photo.shape[:2] != (1, 3):
        raise ParameterError(f"photo must be (1, 3, H, W) RGB, got shape {tuple(photo.shape)}")
    z0, onehot0, _ = project(generator, photo, params, backbone=backbone, class_index=class_index,
                             progress=progress)
    gen = torch.Generator().manual_seed(params.seed)
    spread = torch.linspace(0.0, 0.3, params.restarts)[:, None]  # the first restart starts at the projection
    z = z0.repeat(params.restarts, 1) + spread * torch.randn(params.restarts, generator.latent_dim, generator=gen)
    logits = None if onehot0 is None or class_index is not None else \
        onehot0.clamp_min(1e-6).log().repeat(params.restarts, 1)
    result = _ascend(generator, backbone, objective, params, z, logits, class_index, gen,
                     Tracker(params.steps, progress, stage="dream"))
    with torch.no_grad():
        start = generator.generate(z0, onehot0)
        crop = resize(square_crop(photo), (size, size))
        out = resize(result.image, (size, size)) + params.blend * (crop - resize(start, (size, size)))
    return result, out.clamp(0.0, 1.0)


def range_check(generator: Generator, image: torch.Tensor, params: GanDreamParams = GanDreamParams(), *,
                samples: int = 8, tolerance: float = 2.0, class_index: int | None = None) -> RangeCheck:
    """Is ``image`` ``(1, 3, H, W)`` in the generator's range? It is projected (from fresh random starts, seeded
    apart from the dream's) together with ``samples`` random images of the generator; in range when its relative
    error (MSE / variance) is at most ``tolerance`` × their median. Random starts make single projections a
    lottery: more ``params.restarts`` and ``params.project_steps`` make the verdict surer."""
    gen = torch.Generator().manual_seed(params.seed + 12345)
    z = torch.randn(samples, generator.latent_dim, generator=gen)
    with torch.no_grad():
        onehot = (generator.one_hot(class_index, samples) if class_index is not None else
                  F.one_hot(torch.arange(samples) % generator.num_classes, generator.num_classes).float()
                  if generator.num_classes else None)
        references = generator.generate(z, onehot)
    target = resize(square_crop(image), (generator.size, generator.size))
    check = dataclasses.replace(params, seed=params.seed + 777)
    images = torch.cat([target, references])
    _, _, errors = project(generator, images, check, class_index=class_index)
    relative = errors / images.var(dim=(1, 2, 3)).clamp_min(1e-8)  # a contrasty image errs more in absolute terms
    return RangeCheck(float(relative[0]), tuple(float(e) for e in relative[1:]), tolerance)


def class_probability(backbone: Backbone, images: torch.Tensor, index: int, size: int = 0) -> torch.Tensor:
    """Softmax probability ``(N,)`` of class ``index`` for images ``(N, 3, H, W)`` resized to ``size`` (0: the
    backbone's input side)."""
    side = size or backbone.input_size
    with torch.no_grad():
        return torch.softmax(backbone.logits(resize(images, (side, side))), dim=-1)[:, index]
