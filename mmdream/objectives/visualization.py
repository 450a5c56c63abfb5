"""Objectives of feature visualisation: what a picture (or sound) optimised from noise should excite.

Terms follow :mod:`mmdream.objectives.terms` (a ``layer``, a ``weight`` and ``value(acts)``, a scalar to maximise, a mean
over the batch) and combine in its :class:`~mmdream.objectives.terms.Objective`; its :class:`ChannelTerm` (every item
the same channels) and :class:`ClassTerm` (log-softmax) are used as they are. Added here:

- :class:`ChannelPerItem`: item ``i`` of the batch excites channel ``channels[i]`` (an atlas renders many channels
  in one batch);
- :class:`NeuronTerm`: one unit, the channel at the centre position only;
- :class:`DirectionTerm`: a direction in activation space (a sum of channels with signs);
- :class:`DiversityTerm`: items of a batch unlike each other (lucid's diversity: minus the mean cosine similarity
  of their Gram matrices), so one channel's batch shows several of the things it responds to.

Audio backbones (YAMNet) give one batch row per 0.96 s patch; :class:`ChannelPerItem` regroups rows by item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from mmdream.backbones.base import Backbone
from mmdream.errors import ParameterError
from mmdream.objectives.terms import ChannelTerm, ClassTerm, Objective, channel_count


def _by_item(a: torch.Tensor, items: int) -> torch.Tensor:
    """Activations ``(items * P, C, ...)`` (``P`` rows per item, 1 for images) -> ``(items, P, C, ...)``."""
    if a.shape[0] % items:
        raise ParameterError(f"a batch of {a.shape[0]} activation rows cannot be split among {items} items")
    return a.reshape(items, a.shape[0] // items, *a.shape[1:])


@dataclass(frozen=True)
class ChannelPerItem:
    """Item ``i`` of the batch raises the mean activation of channel ``channels[i]``; the value is the mean over
    the items, so each item's gradient is its own channel's alone."""

    layer: str
    channels: tuple[int, ...]
    weight: float = 1.0

    def per_item(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Mean activation ``(items,)`` of each item's channel."""
        a = _by_item(acts[self.layer], len(self.channels))  # (items, P, C, ...)
        index = torch.tensor(self.channels, device=a.device)
        picked = a[torch.arange(len(self.channels), device=a.device), :, index]  # (items, P, ...)
        return picked.flatten(1).mean(dim=1)

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.per_item(acts).mean()


@dataclass(frozen=True)
class NeuronTerm:
    """Activation of channel ``channel`` at one position (default: the centre of the map), batch mean."""

    layer: str
    channel: int
    position: tuple[int, int] | None = None
    weight: float = 1.0

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        a = acts[self.layer][:, self.channel]  # (N, h, w)
        y, x = self.position if self.position is not None else (a.shape[-2] // 2, a.shape[-1] // 2)
        return a[:, y, x].mean()


@dataclass(frozen=True)
class DirectionTerm:
    """Projection of the activations onto ``vector`` ``(C,)`` (unit length), averaged over positions and items:
    a direction in activation space, e.g. ``+e_12 - e_40``."""

    layer: str
    vector: torch.Tensor = field(repr=False)
    weight: float = 1.0

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        a = acts[self.layer]
        v = self.vector.to(a)
        return torch.einsum("nc...,c->n...", a, v / v.norm()).mean()


@dataclass(frozen=True)
class DiversityTerm:
    """Minus the mean pairwise cosine similarity of the items' Gram matrices at ``layer`` (lucid's diversity
    objective, averaged over pairs): in [-1, 1] up to sign, highest when the items' textures differ most."""

    layer: str
    weight: float = 1.0

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        a = acts[self.layer]
        if a.shape[0] < 2:
            raise ParameterError("the diversity objective needs a batch of at least 2 images")
        f = a.flatten(2)  # (N, C, M)
        gram = F.normalize((f @ f.transpose(1, 2)).flatten(1), dim=1)  # (N, C*C), unit rows
        sim = gram @ gram.t()
        n = a.shape[0]
        return -(sim.sum() - sim.diagonal().sum()) / (n * (n - 1))


def check_channels(backbone: Backbone, layer: str, channels: tuple[int, ...]) -> int:
    """The channel count of ``layer``; ParameterError naming the range if a channel is outside it."""
    backbone.check_layers([layer])
    count = channel_count(backbone, layer)
    bad = [c for c in channels if not 0 <= c < count]
    if bad or not channels:
        raise ParameterError(f"channel(s) {bad or list(channels)} out of range for {layer}: it has channels "
                             f"0..{count - 1}")
    return count


def direction_vector(spec: str, count: int) -> torch.Tensor:
    """``"12:1,40:-1"`` (channels with optional weights) -> a vector ``(count,)`` with those entries."""
    v = torch.zeros(count)
    for item in spec.split(","):
        name, _, w = item.strip().partition(":")
        try:
            c, weight = int(name), float(w) if w else 1.0
        except ValueError:
            raise ParameterError(f"'{item}' in the direction '{spec}' is not CHANNEL or CHANNEL:WEIGHT") from None
        if not 0 <= c < count:
            raise ParameterError(f"channel {c} of the direction '{spec}' is out of range 0..{count - 1}")
        v[c] += weight
    if float(v.norm()) == 0:
        raise ParameterError(f"the direction '{spec}' is zero; give at least one channel with a non-zero weight")
    return v


def channel_objective(backbone: Backbone, layer: str, channels: tuple[int, ...], *, diversity: float = 0.0,
                      diversity_layer: str | None = None) -> Objective:
    """An atlas batch (one channel per item, :class:`ChannelPerItem`) or, with ``diversity > 0``, one channel
    for the whole batch (:class:`~mmdream.objectives.terms.ChannelTerm`) plus ``diversity`` × :class:`DiversityTerm`
    at ``diversity_layer`` (default: ``layer``)."""
    check_channels(backbone, layer, channels)
    if diversity <= 0:
        return Objective((ChannelPerItem(layer, channels),))
    if len(channels) != 1:
        raise ParameterError("the diversity objective renders one channel at a time; give one channel")
    other = diversity_layer or layer
    backbone.check_layers([other])
    return Objective((ChannelTerm(layer, channels), DiversityTerm(other, diversity)))


def class_objective(backbone: Backbone, class_: str | int) -> Objective:
    """Raise a class: log-softmax (:class:`~mmdream.objectives.terms.ClassTerm`) for image classifiers, ``log sigmoid``
    of the logit (:class:`~mmdream.dream.audio.SoundClassTerm`) for multi-label audio ones."""
    index = backbone.resolve_class(class_)
    if backbone.modality == "audio":
        from mmdream.dream.audio import SoundClassTerm

        return Objective((SoundClassTerm(index),))
    return Objective((ClassTerm(index),))
