"""Audio style transfer: a content clip re-textured with the statistics of a style clip (Ulyanov & Lebedev 2016).

The output's log-magnitude spectrogram ``X = log1p |STFT|`` ``(freqs, frames)`` is optimised (Adam), starting
from the content's (or from noise), to minimise

    style_weight x style loss (CNN feature statistics of X vs the style clip's)
    + content_weight x content loss (CNN features of X vs the content's)

then turned back into a waveform by fast Griffin-Lim (:func:`mmdream.ops.phase.griffin_lim`), started from the
content's phase (or random phases). The style clip is scaled to the content's RMS first, and the magnitudes are
held at the content's energy after every step: the output gets the content's loudness in the end, and a Gram
matrix of log magnitudes depends on the level. This runs in ``rounds``: each ends with the reconstruction, and the
next starts from the spectrogram of that waveform, so the optimisation keeps to spectrograms a waveform can have
(measured, 1024 random filters, no content loss: the style loss fell 81x on the spectrogram but only 23x on the
waveform after one reconstruction; three rounds gave 89x on the waveform). Two feature networks
(``params.network``):

- ``random``: Ulyanov's shallow-wide random network: one 1-D convolution over time with the frequency bins of
  ``X`` as input channels (``filters`` filters of ``kernel`` frames, random normal weights from a fixed seed) and
  a ReLU, at 22.05 kHz with 2048-point frames (hop 512). The same network for the same params, on any machine.
- ``yamnet``: YAMNet's layers on its own log-mel, computed from ``X`` (16 kHz, 512-point frames, hop 160,
  YAMNet's mel filters, ``log(mel + 0.001)``, 0.96 s patches); style from ``style_layers``, content from
  ``content_layer``.

Losses are relative, so the weights do not depend on the level or the network: the style loss is the mean over
style layers of ``||G - G_style||² / ||G_style||²`` (Gram matrices, :func:`mmdream.objectives.terms.gram_matrix`) or, with
``stats="w2"``, of the squared 2-Wasserstein distance between the Gaussians of the features over
``trace(C_style) + |mean_style|²`` (:func:`mmdream.objectives.terms.w2_loss`); the content loss is
``||F - F_content||² / ||F_content||²``.

Any length: the style statistics are accumulated over the *whole* style clip, in chunks of ``segment_s`` (sums of
``F``, ``F Fᵀ`` and frame counts), so memory is bounded by a chunk (:func:`style_target`); the content is styled
in segments of ``segment_s`` seconds (the Gram matrix of each segment is matched to the style's), each
reconstructed to a waveform (:func:`style_segment`). Mixing the clips to mono at the network's rate, the segments
(each with its own seed) and their crossfaded join, the way back to the content's rate and channels and its
loudness are the stages of :mod:`mmdream.pipelines.audio`, whose ``style_audio`` styles a whole clip.

>>> net = check_style(speech, 48000, loop, 44100, AudioStyleParams())                    # random network
>>> target = style_target(style_mono, net, "gram", segment=220500)
>>> wave, losses = style_segment(content_mono, net, target, AudioStyleParams(), generator=torch.Generator())
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mmdream.backbones.base import Backbone
from mmdream.dream.audio import AudioDreamParams, segmenting_checks
from mmdream.errors import ParameterError
from mmdream.objectives.terms import StyleAccumulator, StyleStats, feature_loss, style_distance
from mmdream.options import Options, option, option_of, seed_option
from mmdream.ops.mel import tf_mel_filters
from mmdream.ops.phase import griffin_lim, stft
from mmdream.ops.segments import plan_segments

__all__ = ["AudioStyleParams", "StyleNetwork", "RandomNetwork", "YamnetNetwork", "check_style", "style_target",
           "style_segment", "build_network", "log_magnitude", "NETWORKS"]

NETWORKS = ("random", "yamnet")
STATS = ("gram", "w2")
INITS = ("content", "noise")
PHASES = ("content", "random")
RANDOM_RATE, RANDOM_FFT, RANDOM_HOP = 22050, 2048, 512
YAMNET_FFT, YAMNET_HOP = 512, 160
_FRAMES = {"random": (RANDOM_RATE, RANDOM_FFT), "yamnet": (16000, YAMNET_FFT)}  # network -> (rate, n_fft)
_YAMNET_WINDOW = 400  # YAMNet's STFT: a 400-sample Hann window, zero-padded to 512 points
_EPS = 1e-12


@dataclass(frozen=True)
class AudioStyleParams(Options):
    """Every option of an audio style transfer; the defaults give a clearly styled, recognisable result."""

    network: str = option("random", "feature network: random (Ulyanov's shallow-wide random filters on the log "
                                    "spectrogram) or yamnet (YAMNet's layers on its log-mel)", choices=NETWORKS)
    steps: int = option(60, "optimisation steps (Adam) per segment", ge=0, le=10_000)
    learning_rate: float = option(0.1, "Adam step size on the log1p-magnitude spectrogram", gt=0.0, le=10.0)
    style_weight: float = option(1.0, "weight of the (relative) style loss", ge=0.0, le=1_000_000.0)
    content_weight: float = option(0.15, "weight of the (relative) content loss (0: style only)", ge=0.0,
                                   le=1_000_000.0)
    stats: str = option("gram", "style statistics: gram (Gram matrices) or w2 (mean and covariance, "
                                "2-Wasserstein)", choices=STATS)
    init: str = option("content", "start from the content's spectrogram or from noise", choices=INITS)
    phase: str = option("content", "Griffin-Lim starts from the content's phase or from random phases",
                        choices=PHASES)
    rounds: int = option(3, "optimise, reconstruct (Griffin-Lim) and re-analyse this many times: later rounds "
                            "start from a spectrogram a waveform has", ge=1)
    griffin_lim_iters: int = option(64, "fast Griffin-Lim iterations per round", ge=0, le=1000)
    filters: int = option(4096, "random network: number of filters", ge=1, le=16384)
    kernel: int = option(11, "random network: filter length, STFT frames (odd)", ge=1, le=255)
    style_layers: str = option("layer2,layer4,layer6", "yamnet: layers whose statistics are matched (comma list)")
    content_layer: str = option("layer10", "yamnet: layer whose features are kept")
    segment_s: float = option_of(AudioDreamParams, "segment_s", help="process long content in segments of this "
                                 "many seconds, and gather the style clip's statistics in chunks of it (bounds "
                                 "memory)")
    overlap_s: float = option_of(AudioDreamParams, "overlap_s")
    seed: int = seed_option("random seed (random network's filters, noise, phases)")

    def cross_checks(self) -> Iterable[tuple[bool, str, str]]:
        return [(self.rounds <= max(self.steps, 1), "rounds", "an integer from 1 to steps"),
                (self.kernel % 2 == 1, "kernel", "an odd integer from 1 to 255"),
                (bool(_names(self.style_layers)), "style_layers", "a comma list of layer names"),
                (bool(self.content_layer.strip()), "content_layer", "a layer name"),
                *segmenting_checks(self)]


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


class StyleNetwork(nn.Module):
    """Features of a log1p-magnitude spectrogram ``X`` ``(freqs, frames)`` at ``rate`` / ``n_fft`` / ``hop``.

    :meth:`forward` returns ``{layer: (channels, positions)}`` for the style layers and the content layer.
    """

    rate: int
    n_fft: int
    hop: int
    style_layers: tuple[str, ...]
    content_layer: str


class RandomNetwork(StyleNetwork):
    """Ulyanov's random shallow-wide network: ``relu(conv1d(X))``, ``(freqs, frames) -> (filters, frames)``.

    Weights ``N(0, 2 / ((freqs + filters) kernel))`` (Glorot-like, as in neural-style-audio), no bias, drawn from
    ``seed`` on the CPU in float64 so the network is the same everywhere; 'same' zero padding over time.
    """

    def __init__(self, filters: int = 4096, kernel: int = 11, seed: int = 0) -> None:
        super().__init__()
        self.rate, self.n_fft, self.hop = RANDOM_RATE, RANDOM_FFT, RANDOM_HOP
        self.style_layers, self.content_layer = ("relu",), "relu"
        freqs = self.n_fft // 2 + 1
        g = torch.Generator().manual_seed(seed)
        std = math.sqrt(2.0 / ((freqs + filters) * kernel))
        weight = torch.randn(filters, freqs, kernel, generator=g, dtype=torch.float64) * std
        self.register_buffer("weight", weight.float())
        self.requires_grad_(False)

    def forward(self, logmag: torch.Tensor) -> dict[str, torch.Tensor]:
        w = self.weight.to(logmag.dtype)
        out = F.relu(F.conv1d(logmag[None], w, padding=w.shape[-1] // 2))[0]
        return {"relu": out}


class _Done(Exception):
    """Ends a forward pass once every wanted layer has been seen."""


class YamnetNetwork(StyleNetwork):
    """YAMNet's layers on the log-mel of ``X`` (16 kHz, 512-point frames, hop 160).

    ``expm1(X)`` is YAMNet's ``|STFT|`` up to the window (a 512-point Hann here, 400 points there: scaled by their
    sums, 200 / 256), then YAMNet's mel filters and ``log(mel + 0.001)``; the frames are padded with silence to whole
    0.96 s patches. A layer's features ``(channels, patches x time x mel positions)``.
    """

    def __init__(self, backbone: Backbone, style_layers: Sequence[str], content_layer: str) -> None:
        super().__init__()
        module = backbone.module
        if backbone.name != "yamnet" or not hasattr(module, "classify_patches"):
            raise ParameterError(f"the yamnet style network needs the yamnet backbone; got {backbone.name}")
        backbone.check_layers([*style_layers, content_layer])
        usable = [n for n in backbone.layer_names if n not in ("logmel", "patches")]  # the input, not features
        bad = [n for n in (*style_layers, content_layer) if n not in usable]
        if bad:
            raise ParameterError(f"yamnet layer(s) {', '.join(bad)} are its input, not features; use "
                                 f"{', '.join(usable)}")
        self.backbone = backbone
        self.rate, self.n_fft, self.hop = int(backbone.sample_rate or 16000), YAMNET_FFT, YAMNET_HOP
        self.style_layers, self.content_layer = tuple(style_layers), content_layer
        from mmdream.backbones.nets.yamnet import FRONTEND, PATCH_FRAMES, PATCH_HOP_FRAMES

        self.patch_frames, self.patch_hop = PATCH_FRAMES, PATCH_HOP_FRAMES
        self.log_offset = FRONTEND.log_offset
        fb = tf_mel_filters(self.rate, self.n_fft, FRONTEND.n_mels, float(FRONTEND.fmin), FRONTEND.top_hz)
        self.register_buffer("mel", fb.float() * (_YAMNET_WINDOW / self.n_fft))
        self._modules_by_name = dict(module.named_modules())

    def forward(self, logmag: torch.Tensor) -> dict[str, torch.Tensor]:
        mag = torch.expm1(logmag.clamp_min(0.0))
        logmel = torch.log(self.mel.to(mag.dtype) @ mag + self.log_offset).t()  # (frames, 64)
        frames = logmel.shape[0]
        total = self.patch_frames + max(0, math.ceil((frames - self.patch_frames) / self.patch_hop)) * self.patch_hop
        logmel = F.pad(logmel, (0, 0, 0, total - frames), value=math.log(self.log_offset))
        module = self.backbone.module
        patches = module.patches(logmel[None])
        wanted = {*self.style_layers, self.content_layer}
        acts: dict[str, torch.Tensor] = {}
        handles = []
        for layer in self.backbone.layers:
            if layer.name in wanted:
                def hook(_m: nn.Module, _i: object, o: torch.Tensor, name: str = layer.name) -> None:
                    acts[name] = o
                    if len(acts) == len(wanted):
                        raise _Done  # the deeper layers are not needed
                handles.append(self._modules_by_name[layer.module].register_forward_hook(hook))
        try:
            module.classify_patches(patches)
        except _Done:
            pass
        finally:
            for h in handles:
                h.remove()
        return {name: a.transpose(0, 1).flatten(1) for name, a in acts.items()}


def build_network(params: AudioStyleParams, backbone: Backbone | None = None) -> StyleNetwork:
    """The feature network ``params.network`` names (``yamnet`` needs the loaded YAMNet ``backbone``)."""
    if params.network == "random":
        if backbone is not None:
            raise ParameterError(f"network='random' builds its own network; a backbone ({backbone.name}) is only "
                                 "for network='yamnet'")
        return RandomNetwork(params.filters, params.kernel, params.seed)
    if backbone is None:
        raise ParameterError("network='yamnet' needs the YAMNet backbone: pass network=load_backbone('yamnet')")
    return YamnetNetwork(backbone, _names(params.style_layers), params.content_layer.strip())


def log_magnitude(x: torch.Tensor, net: StyleNetwork) -> torch.Tensor:
    """``log1p |STFT|`` ``(freqs, frames)`` of a mono clip ``(n,)`` at the network's rate."""
    return torch.log1p(stft(x, net.n_fft, net.hop).abs())


def style_target(style: torch.Tensor, net: StyleNetwork, stats: str, segment: int) -> StyleStats:
    """Statistics of the whole mono ``style`` ``(n,)`` (network's rate), accumulated over chunks of ``segment``
    samples: memory is bounded by one chunk."""
    acc = StyleAccumulator()
    with torch.no_grad():
        for a, b in plan_segments(style.shape[-1], segment, 0):
            feats = net(log_magnitude(style[a:b], net))
            for name in net.style_layers:
                acc.add(name, feats[name])
    return acc.stats(stats == "w2", style.dtype)


def _keep_energy(x: torch.Tensor, energy: float) -> None:
    """Scale the magnitudes ``expm1(x)`` in place so that their energy is ``energy`` (the content's level)."""
    mag = torch.expm1(x.clamp_(min=0.0))
    x.copy_(torch.log1p(mag * math.sqrt(energy / max(float(mag.double().square().sum()), _EPS))))


def style_segment(content: torch.Tensor, net: StyleNetwork, target: StyleStats, params: AudioStyleParams, *,
                  generator: torch.Generator,
                  advance: Callable[[float], None] | None = None) -> tuple[torch.Tensor, list[float]]:
    """Styled waveform ``(n,)`` of one mono segment ``content`` ``(n,)`` at the network's rate.

    ``rounds`` times: ``steps / rounds`` Adam steps on ``X = log1p |S|`` (the magnitudes kept at the content's
    energy after each step), fast Griffin-Lim, and ``X`` re-analysed from that waveform, so the next round starts
    from a spectrogram a waveform really has. Returns the waveform and the style loss before each step and of the
    final waveform (``steps + 1`` values). ``advance(total loss)`` is called after every step.
    """
    spec = stft(content, net.n_fft, net.hop)
    x = torch.log1p(spec.abs())
    energy = float(spec.abs().double().square().sum())
    with torch.no_grad():
        content_feats = net(x)[net.content_layer]
    if params.init == "noise":
        x = torch.rand(x.shape, generator=generator, dtype=torch.float64).to(x) * (2 * float(x.mean()))
    phase = spec if params.phase == "content" else None
    wave = content
    history = []
    for r in range(params.rounds):
        x = x.detach().requires_grad_(True)
        optimiser = torch.optim.Adam([x], lr=params.learning_rate)
        for _ in range(params.steps * (r + 1) // params.rounds - params.steps * r // params.rounds):
            feats = net(x)
            s_loss = style_distance(feats, target, net.style_layers)
            loss = params.style_weight * s_loss
            if params.content_weight:
                loss = loss + params.content_weight * feature_loss(feats[net.content_layer], content_feats)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                _keep_energy(x, energy)
            history.append(float(s_loss.detach()))
            if advance is not None:
                advance(float(loss.detach()))
        wave = griffin_lim(torch.expm1(x.detach()), net.n_fft, net.hop, content.shape[-1],
                           iters=params.griffin_lim_iters, init=phase, generator=generator)
        phase = stft(wave, net.n_fft, net.hop)
        x = torch.log1p(phase.abs())
    with torch.no_grad():
        history.append(float(style_distance(net(x), target, net.style_layers)))
    return wave, history


def _check_clip(name: str, wave: torch.Tensor, rate: object) -> None:
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise ParameterError(f"{name} sample rate must be a positive integer; got {rate!r}")
    if wave.dim() not in (1, 2) or not wave.is_floating_point() or wave.shape[-1] == 0:
        raise ParameterError(f"{name} must be float samples (channels, n) or (n,) with n > 0; got {wave.dtype} "
                             f"{tuple(wave.shape)}")
    if not bool(torch.isfinite(wave).all()):
        raise ParameterError(f"{name} holds NaN or infinite samples")


def check_style(content: torch.Tensor, content_rate: int, style: torch.Tensor, style_rate: int,
                params: AudioStyleParams, network: Backbone | StyleNetwork | None = None) -> StyleNetwork:
    """Validate ``params`` and the clips ``(C, n)`` or ``(n,)`` (each at least one STFT frame long); return the
    feature network: ``network`` if it is a :class:`StyleNetwork`, else the one :func:`build_network` makes."""
    params.validate()
    _check_clip("content", content, content_rate)
    _check_clip("style", style, style_rate)
    rate, n_fft = ((network.rate, network.n_fft) if isinstance(network, StyleNetwork)
                   else _FRAMES[params.network])
    for name, wave, wave_rate in (("content", content, content_rate), ("style", style, style_rate)):
        if wave.shape[-1] * rate < n_fft * wave_rate:
            raise ParameterError(
                f"the {name} clip is {wave.shape[-1] / wave_rate * 1000:.0f} ms long, shorter than one STFT frame "
                f"({n_fft / rate * 1000:.0f} ms); give a longer {name} clip"
            )
    return network if isinstance(network, StyleNetwork) else build_network(params, network)
