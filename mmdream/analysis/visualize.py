"""Feature visualisation from noise: the picture (or sound) that most excites a channel, neuron, class or direction.

Images (any image backbone, ``ckpt:`` checkpoints included): a :class:`~mmdream.analysis.param.FourierImage`
optimised with Adam, each step evaluated under random pad / jitter / scale / rotation
(:func:`~mmdream.ops.transforms.random_transform`), as lucid does.

Sounds (YAMNet, audio checkpoints): the mel-domain ascent of the audio dream
(:func:`mmdream.dream.audio.dream_change_mel`: a magnitude spectrogram of steady partials, kept to its peaks,
evaluated under random time and pitch warps) applied to quiet white noise, then peak-limited
(:func:`mmdream.ops.loudness.limit_peaks`).

>>> vgg = load_backbone("vgg16")
>>> pics = visualize(vgg, channel_objective(vgg, "relu4_3", (12, 40)), VisParams(steps=128), batch=2)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from mmdream.analysis.param import FourierImage
from mmdream.ops.transforms import random_transform
from mmdream.backbones.base import Backbone
from mmdream.errors import ParameterError
from mmdream.options import Options, option, seed_option
from mmdream.progress import ProgressFn, Tracker

Advance = Callable[[float], None]


class VisObjective(Protocol):
    """What a visualisation maximises: taps ``layers`` -> a scalar (an :class:`mmdream.objectives.terms.Objective`)."""

    @property
    def layers(self) -> tuple[str, ...]: ...

    def __call__(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor: ...


@dataclass(frozen=True)
class VisParams(Options):
    """Options of a feature visualisation; the defaults suit a CPU (128 px, 128 steps; sounds 2 s, 32 steps)."""

    size: int = option(128, "side of the square visualisation, pixels", ge=16, le=2048)
    steps: int = option(128, "optimisation steps (Adam) of a picture", ge=1, le=10_000)
    lr: float = option(0.05, "Adam learning rate on the Fourier coefficients", gt=0.0, le=1.0)
    decay_power: float = option(1.0, "frequency decay of the Fourier parametrisation (higher: smoother pictures)",
                                ge=0.0, le=4.0)
    pad: int = option(12, "grey padding added before the random transformations, px", ge=0)
    jitter: int = option(8, "maximal random shift per step, pixels", ge=0)
    scale: float = option(0.1, "random zoom per step within 1 ± this", ge=0.0, lt=1.0)
    angle: float = option(10.0, "random rotation per step within ± this, degrees", ge=0.0, le=180.0, unit="degrees")
    seconds: float = option(2.0, "audio backbones: length of the visualised sound, s", ge=0.5, le=30.0,
                            unit="seconds")
    sound_steps: int = option(32, "audio backbones: mel-domain ascent steps of a sound (each evaluates 8 warped "
                                  "copies)", ge=1, le=10_000)
    seed: int = seed_option("random seed: same seed, same result")

    def cross_checks(self) -> Iterable[tuple[bool, str, str]]:
        return [(self.pad <= self.size, "pad", "from 0 to the size"),
                (self.jitter <= self.size // 2, "jitter", "from 0 to half the size")]


def _weights_of(backbone: Backbone) -> torch.Tensor:
    """A parameter of the backbone: its device and dtype are the visualisation's."""
    p = next(backbone.module.parameters(), None)
    return torch.zeros(()) if p is None else p


class _RedirectedReLU(torch.autograd.Function):
    """A ReLU's output whose gradient, for a batch item where the ReLU passes none at all (every unit below
    zero: a dead start), is let through where it would raise the unit (lucid's redirected ReLU gradient)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, out: torch.Tensor, high: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.high = high
        return out.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        live = (x > 0) & (x < ctx.high)
        normal = grad * live
        raising = grad * (live | ((x <= 0) & (grad < 0)))  # the loss is minus the objective: grad < 0 raises
        stuck = normal.flatten(1).abs().amax(dim=1) == 0
        return torch.where(stuck.view(-1, *[1] * (grad.dim() - 1)), raising, normal), None, None


@contextmanager
def redirected_relus(module: nn.Module) -> Iterator[None]:
    """Within the block, every ``nn.ReLU`` / ``nn.ReLU6`` of ``module`` passes gradients as
    :class:`_RedirectedReLU`: channels that no unit of a noise start excites can still be visualised."""
    handles = []
    for m in module.modules():
        if isinstance(m, (nn.ReLU, nn.ReLU6)):
            high = 6.0 if isinstance(m, nn.ReLU6) else float("inf")
            handles.append(m.register_forward_hook(
                lambda _m, inp, out, high=high: _RedirectedReLU.apply(inp[0], out, high)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def optimise_images(backbone: Backbone, objective: VisObjective, params: VisParams, *, batch: int = 1,
                    correlation: torch.Tensor | None = None, advance: Advance | None = None) -> torch.Tensor:
    """``batch`` images ``(batch, 3, size, size)`` in [0, 1] optimised from noise to maximise ``objective``;
    ``advance(value)`` after each step. ``correlation``: colour correlation ``(3, 3)`` (default: the built-in)."""
    params.validate()
    if backbone.modality != "image":
        raise ParameterError(f"{backbone.name} is an audio backbone; visualise it with visualize_sound")
    like = _weights_of(backbone)
    generator = torch.Generator().manual_seed(params.seed)
    image = FourierImage(batch, params.size, params.size, decay_power=params.decay_power, correlation=correlation,
                         generator=generator).to(device=like.device, dtype=like.dtype)
    optimiser = torch.optim.Adam(image.parameters(), lr=params.lr)
    with redirected_relus(backbone.module):
        for _ in range(params.steps):
            x = random_transform(image(), pad_px=params.pad, jitter=params.jitter, scale=params.scale,
                                 angle=params.angle, generator=generator)
            value = objective(backbone.taps(x, objective.layers))
            optimiser.zero_grad(set_to_none=True)
            (-value).backward()
            optimiser.step()
            if advance is not None:
                advance(float(value.detach()))
    with torch.no_grad():
        return image().detach()


def visualize(backbone: Backbone, objective: VisObjective, params: VisParams = VisParams(), *, batch: int = 1,
              correlation: torch.Tensor | None = None, progress: ProgressFn | None = None) -> torch.Tensor:
    """Images ``(batch, 3, size, size)`` in [0, 1] that maximise ``objective`` (see :func:`optimise_images`);
    progress: one event per step."""
    tracker = Tracker(params.steps, progress, stage="visualise")
    return optimise_images(backbone, objective, params, batch=batch, correlation=correlation,
                           advance=tracker.advance)


def optimise_sound(backbone: Backbone, objective: VisObjective, params: VisParams, *,
                   advance: Advance | None = None) -> torch.Tensor:
    """A mono sound ``(samples,)`` at ``backbone.sample_rate``, ``params.seconds`` long, optimised from quiet
    white noise (RMS 0.003) to maximise ``objective``: ``params.sound_steps`` steps of the audio dream's mel-domain
    ascent (its defaults otherwise: 24 peaks per frame, 8 warps), each adding 0.01 RMS; peak-limited."""
    from mmdream.dream.audio import AudioDreamParams, dream_change_mel
    from mmdream.ops.loudness import limit_peaks

    params.validate()
    if backbone.modality != "audio" or backbone.sample_rate is None:
        raise ParameterError(f"{backbone.name} is an image backbone; visualise it with visualize")
    like = _weights_of(backbone)
    generator = torch.Generator().manual_seed(params.seed)
    n = round(params.seconds * backbone.sample_rate)
    noise = (torch.randn(n, generator=generator) * 0.003).to(device=like.device, dtype=like.dtype)
    dream = AudioDreamParams(steps=params.sound_steps, seed=params.seed,
                             fmax=min(AudioDreamParams.fmax, backbone.sample_rate * 0.47)).validate()
    change = dream_change_mel(noise, backbone, objective, dream, step=0.01, generator=generator, advance=advance)
    return limit_peaks(noise + change).detach()


def visualize_sound(backbone: Backbone, objective: VisObjective, params: VisParams = VisParams(), *,
                    progress: ProgressFn | None = None) -> torch.Tensor:
    """A sound ``(samples,)`` that maximises ``objective`` (see :func:`optimise_sound`); one event per step."""
    tracker = Tracker(params.sound_steps, progress, stage="visualise sound")
    return optimise_sound(backbone, objective, params, advance=tracker.advance)


def channel_means(backbone: Backbone, layer: str, x: torch.Tensor) -> torch.Tensor:
    """Mean activation ``(N, C)`` of every channel of ``layer`` for pictures ``(N, 3, H, W)`` (or sounds
    ``(N, samples)``: the mean over their patches too), without gradients."""
    with torch.no_grad():
        a = backbone.taps(x, [layer])[layer]
    return a.reshape(x.shape[0], -1, a.shape[1], *a.shape[2:]).transpose(1, 2).flatten(2).mean(dim=2)


def texture_distance(backbone: Backbone, layer: str, x: torch.Tensor) -> float:
    """Mean over pairs of items of ``1 - cos`` between the Gram matrices of their activations at ``layer`` (what
    textures they show, wherever they show them): 0 for identical pictures ``(N, 3, H, W)``, N >= 2."""
    if x.shape[0] < 2:
        raise ParameterError("a distance between pictures needs at least 2 of them")
    with torch.no_grad():
        f = backbone.taps(x, [layer])[layer].flatten(2)
    gram = torch.nn.functional.normalize((f @ f.transpose(1, 2)).flatten(1), dim=1)
    sim = gram @ gram.t()
    n = x.shape[0]
    return float(1.0 - (sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))
