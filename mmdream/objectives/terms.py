"""Dream objectives: a weighted sum of terms over a backbone's taps, each term a scalar to maximise.

Every term is normalised per element (means, not sums), so its value does not grow with the image or tile size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from mmdream.backbones.base import Backbone
from mmdream.errors import ParameterError


@dataclass(frozen=True)
class LayerTerm:
    """Activation of a layer: ``l2`` = mean of squares (google/deepdream's objective_L2), ``mean`` = mean."""

    layer: str
    weight: float = 1.0
    reduce: str = "l2"

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        a = acts[self.layer]
        return a.square().mean() if self.reduce == "l2" else a.mean()


@dataclass(frozen=True)
class ChannelTerm:
    """Mean activation of chosen channels of a layer, each with its own weight (``gains``, default 1 each): the
    mean over the channels of gain × the channel's mean activation. A negative gain (or weight) suppresses."""

    layer: str
    channels: tuple[int, ...]
    weight: float = 1.0
    gains: tuple[float, ...] | None = None

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        a = acts[self.layer][:, list(self.channels)]  # (N, k, ...)
        if self.gains is None:
            return a.mean()
        per_channel = a.transpose(0, 1).flatten(1).mean(dim=1)  # (k,)
        return (per_channel * per_channel.new_tensor(self.gains)).mean()


@dataclass(frozen=True)
class ClassTerm:
    """Log-probability of a class (log-softmax of the logits): raises that class and lowers its rivals."""

    index: int
    weight: float = 1.0
    layer: str = "logits"

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.log_softmax(acts[self.layer], dim=-1)[:, self.index].mean()


@dataclass(frozen=True)
class ClassSetTerm:
    """Log of the summed probability of a set of classes (e.g. all dog breeds): raises the set as a whole, letting
    the dream settle on whichever members it finds."""

    indices: tuple[int, ...]
    weight: float = 1.0
    layer: str = "logits"

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.log_softmax(acts[self.layer], dim=-1)[:, list(self.indices)].logsumexp(dim=-1).mean()


@dataclass(frozen=True)
class SoundSetTerm:
    """Mean over a set of sound classes of ``log sigmoid`` of their logits (multi-label scores, e.g. YAMNet's Dog
    and Bark), averaged over patches."""

    indices: tuple[int, ...]
    weight: float = 1.0
    layer: str = "logits"

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return torch.nn.functional.logsigmoid(acts[self.layer][:, list(self.indices)]).mean()


@dataclass(frozen=True)
class ChannelGroupsTerm:
    """A layer's channels split into ``len(weights)`` contiguous groups, the mean square activation of each group
    weighted: with equal weights summing to 1 this is :class:`LayerTerm`'s L2 (for equal groups); a weight of 0
    leaves its group alone. Lets a per-frame feature (the sound's chroma) choose what the dream amplifies."""

    layer: str
    weights: tuple[float, ...]
    weight: float = 1.0

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        a = acts[self.layer]
        groups = torch.arange(a.shape[1], device=a.device) * len(self.weights) // a.shape[1]
        per_channel = a.square().mean(dim=(0, *range(2, a.dim())))  # (C,)
        w = torch.tensor(self.weights, dtype=a.dtype, device=a.device)[groups] * len(self.weights)
        return (w * per_channel).mean()


@dataclass(frozen=True)
class GuideTerm:
    """Match a guide image's features (google/deepdream's ``objective_guide``).

    ``features`` ``(C, M)``: the guide's activations at ``layer``. Each position of the dream is pulled toward the
    guide feature it already resembles most: value = mean over positions of max_j <x_i, y_j> / C.
    """

    layer: str
    features: torch.Tensor = field(repr=False)
    weight: float = 1.0

    def value(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        a = acts[self.layer]
        x = a.flatten(2)  # (N, C, P)
        y = self.features.to(x)
        sim = torch.einsum("ncp,cm->npm", x, y)
        best = sim.argmax(dim=-1)  # (N, P)
        matched = y.t()[best]  # (N, P, C)
        return (x.transpose(1, 2) * matched).sum(-1).mean() / x.shape[1]


Term = LayerTerm | ChannelTerm | ChannelGroupsTerm | ClassTerm | ClassSetTerm | SoundSetTerm | GuideTerm


@dataclass(frozen=True)
class Objective:
    """A weighted sum of terms. ``layers`` are the taps one forward pass must provide."""

    terms: tuple[Term, ...]

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.layer for t in self.terms))

    @property
    def classifies(self) -> bool:
        """Whether a term raises an image class (or a set of them): a classifier's view of the whole picture."""
        return any(isinstance(t, (ClassTerm, ClassSetTerm)) for t in self.terms)

    def __call__(self, acts: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum((t.weight * t.value(acts) for t in self.terms), start=torch.zeros(()))

    def evaluate(self, backbone: Backbone, x: torch.Tensor) -> float:
        """Objective value of RGB pixels ``x`` ``(N, 3, H, W)``, without gradients."""
        with torch.no_grad():
            return float(self(backbone.taps(x, self.layers)))


def parse_layers(spec: str | Sequence[str] | None, backbone: Backbone) -> list[tuple[str, float]]:
    """``"relu4_3:1,relu5_2:0.5"`` -> [(name, weight)]; ``None`` -> the backbone's default dream layers."""
    items = spec.split(",") if isinstance(spec, str) else list(spec or backbone.default_layers)
    out = []
    for item in items:
        name, _, w = item.strip().partition(":")
        try:
            weight = float(w) if w else 1.0
        except ValueError:
            raise ParameterError(f"layer weight in '{item}' is not a number; write NAME or NAME:WEIGHT") from None
        backbone.check_layers([name])
        out.append((name, weight))
    if not out:
        raise ParameterError("no layer given; list them with `mmdream layers NAME`")
    return out


ChannelSpec = Sequence[int | tuple[int, float]]


def parse_channels(spec: str | Sequence[int | str] | None) -> tuple[tuple[int, float], ...] | None:
    """``"12,40:-1"`` (or ``[12, "40:-1"]``) -> ((12, 1.0), (40, -1.0)): channels with optional gains, a negative
    gain suppressing the channel; ``None`` -> None."""
    if spec is None:
        return None
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        index, _, gain = text.partition(":")
        try:
            out.append((int(index), float(gain) if gain else 1.0))
        except ValueError:
            raise ParameterError(f"channel '{text}' is not CHANNEL or CHANNEL:GAIN (e.g. 12 or 40:-1)") from None
    return tuple(out)


def channel_term(backbone: Backbone, named: Sequence[tuple[str, float]], channels: ChannelSpec) -> ChannelTerm:
    """A :class:`ChannelTerm` for ``channels`` (indices, or (index, gain) pairs) of the one layer in ``named``
    (:func:`parse_layers`' (name, weight) pairs), range-checked."""
    if len(named) != 1:
        raise ParameterError("--channel needs exactly one --layer")
    (layer, weight), = named
    pairs = [(c, 1.0) if isinstance(c, int) else (int(c[0]), float(c[1])) for c in channels]
    n = channel_count(backbone, layer)
    bad = [c for c, _ in pairs if not 0 <= c < n]
    if bad or not pairs:
        raise ParameterError(f"channel(s) {bad or list(channels)} out of range for {layer}: it has channels 0..{n - 1}")
    gains = tuple(g for _, g in pairs)
    return ChannelTerm(layer, tuple(c for c, _ in pairs), weight, None if all(g == 1.0 for g in gains) else gains)


def channel_count(backbone: Backbone, layer: str) -> int:
    """Number of channels of a tap, from one small forward pass."""
    x = backbone.example_input()
    with torch.no_grad():
        return int(backbone.taps(x, [layer])[layer].shape[1])


def build_objective(
    backbone: Backbone,
    *,
    layers: str | Sequence[str] | None = None,
    channels: ChannelSpec | None = None,
    class_: str | int | None = None,
    guide: torch.Tensor | None = None,
) -> Objective:
    """Objective from user options (the CLI's and the job spec's one path).

    ``class_`` alone: class objective. ``channels``: channels of the (single) layer, indices or (index, gain) pairs
    (a negative gain suppresses the channel). ``guide`` ``(1, 3, H, W)``:
    guide term at each layer. Otherwise: L2 of the layers (default: the backbone's dream layers).
    """
    terms: list[Term] = []
    if class_ is not None:
        terms.append(ClassTerm(backbone.resolve_class(class_)))
        if layers is None and channels is None and guide is None:
            return Objective(tuple(terms))
    named = parse_layers(layers, backbone)
    if channels is not None:
        terms.append(channel_term(backbone, named, channels))
    elif guide is not None:
        with torch.no_grad():
            acts = backbone.taps(guide.to(backbone.device), [n for n, _ in named])
        terms += [GuideTerm(n, acts[n][0].flatten(1), w) for n, w in named]
    else:
        terms += [LayerTerm(n, w) for n, w in named]
    return Objective(tuple(terms))


# --- Style statistics (audio and image style transfer): features are (..., C, M), C channels at M positions ------


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``F Fᵀ / M``: ``(..., C, M) -> (..., C, C)``, the mean over positions of the channels' outer products."""
    return features @ features.transpose(-1, -2) / features.shape[-1]


def gram_loss(gram: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative squared Frobenius distance ``||G - T||² / ||T||²`` of Gram matrices ``(..., C, C)`` (0: equal)."""
    return (gram - target).square().sum() / target.square().sum().clamp_min(1e-30)


def feature_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Relative squared distance ``||F - T||² / ||T||²`` of two feature maps of one shape (a content loss)."""
    return (features - target).square().sum() / target.square().sum().clamp_min(1e-30)


def w2_loss(features: torch.Tensor, mean: torch.Tensor, cov_sqrt: torch.Tensor, cov_trace: float) -> torch.Tensor:
    """Squared 2-Wasserstein distance between the Gaussian of ``features`` ``(C, M)`` and a target Gaussian,
    relative to the target's ``trace(C_t) + |mean|²`` (0: equal mean and covariance).

    ``W2² = |μ - μ_t|² + tr C + tr C_t - 2 tr (C_t^½ C C_t^½)^½``; with ``C = X Xᵀ / M`` (``X`` the centred
    features) the last trace is the nuclear norm of ``C_t^½ X / √M``, so no ``(C, C)`` square root is taken per
    step. ``mean`` ``(C,)``, ``cov_sqrt`` ``(C, C)`` = ``C_t^½`` and ``cov_trace`` = ``tr C_t`` are the target's.
    """
    m = features.shape[-1]
    mu = features.mean(dim=-1)
    centred = features - mu[:, None]
    cross = torch.linalg.matrix_norm(cov_sqrt.to(features) @ centred, ord="nuc") / m**0.5
    w2 = (mu - mean.to(mu)).square().sum() + centred.square().sum() / m + cov_trace - 2 * cross
    return w2 / (cov_trace + float(mean.square().sum()) + 1e-30)


@dataclass(frozen=True)
class StyleStats:
    """Style statistics per layer: Gram ``(C, C)``; for W2 also mean ``(C,)``, covariance square root ``(C, C)``
    and its trace (empty otherwise)."""

    gram: dict[str, torch.Tensor]
    mean: dict[str, torch.Tensor]
    cov_sqrt: dict[str, torch.Tensor]
    cov_trace: dict[str, float]


class StyleAccumulator:
    """Weighted sums of features ``(C, M)`` per layer, accumulated chunk by chunk (memory bounded by a chunk):
    each of a chunk's ``M`` positions counts ``weight`` (1: every position alike; ``w / M``: the chunk as a whole
    counts ``w``, as blended style images do)."""

    def __init__(self) -> None:
        self.outer: dict[str, torch.Tensor] = {}
        self.sums: dict[str, torch.Tensor] = {}
        self.count: dict[str, float] = {}

    def add(self, layer: str, features: torch.Tensor, weight: float = 1.0) -> None:
        f = features.detach().double()
        self.outer[layer] = self.outer.get(layer, 0) + weight * (f @ f.t())
        self.sums[layer] = self.sums.get(layer, 0) + weight * f.sum(dim=1)
        self.count[layer] = self.count.get(layer, 0.0) + weight * f.shape[1]

    def stats(self, w2: bool, dtype: torch.dtype = torch.float32) -> StyleStats:
        """The Gram matrices (and, with ``w2``, the Gaussians) of everything added, in ``dtype``."""
        gram = {n: (self.outer[n] / self.count[n]).to(dtype) for n in self.outer}
        mean, cov_sqrt, cov_trace = {}, {}, {}
        if w2:
            for n in self.outer:
                mu = self.sums[n] / self.count[n]
                vals, vecs = torch.linalg.eigh(self.outer[n] / self.count[n] - torch.outer(mu, mu))
                cov_sqrt[n] = ((vecs * vals.clamp_min(0).sqrt()) @ vecs.t()).to(dtype)
                mean[n], cov_trace[n] = mu.to(dtype), float(vals.clamp_min(0).sum())
        return StyleStats(gram, mean, cov_sqrt, cov_trace)


def style_distance(features: Mapping[str, torch.Tensor], target: StyleStats, layers: Sequence[str]) -> torch.Tensor:
    """Mean over ``layers`` of the relative Gram (or, when ``target`` holds Gaussians, W2) loss of ``features``
    ``{layer: (C, M)}``."""
    terms = []
    for n in layers:
        if target.cov_sqrt:
            terms.append(w2_loss(features[n], target.mean[n], target.cov_sqrt[n], target.cov_trace[n]))
        else:
            terms.append(gram_loss(gram_matrix(features[n]), target.gram[n]))
    return torch.stack(terms).mean()
