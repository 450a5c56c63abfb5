"""A loaded, frozen backbone: preprocessing, named taps with early stop, and class names."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mmdream.errors import ParameterError
from mmdream.ops.pyramid import mirror_pad

Preprocess = Callable[[torch.Tensor], torch.Tensor]


class _StopForward(Exception):
    """Raised by the deepest tap's hook to end the forward pass early."""


@dataclass(frozen=True)
class Layer:
    """A tap: a friendly name (``relu4_3``) and the submodule whose output it is (``features.22``)."""

    name: str
    module: str


class Backbone:
    """A frozen network with named taps; pixels in are plain RGB in [0, 1], shape ``(N, 3, H, W)``.

    ``preprocess`` maps those pixels to the network's own convention (Caffe BGR, ImageNet mean/std, ...).
    ``layers`` lists the taps in forward order; ``classes`` is ``None`` for feature-only weights.

    Audio backbones (``modality == "audio"``) take a mono waveform in [-1, 1] at ``sample_rate`` instead,
    ``(N, samples)``, and do their own front-end (log-mel, patches) inside the module, so taps and gradients reach
    the samples; their ``input_size`` is the samples of one analysis window. Images with a side under ``min_side``
    (the smallest the whole network takes: its pooling would leave nothing) are mirrored outward to that size
    before they go in, so any image size works (a thin strip, an icon, a small octave). See the module's docstring for the
    shapes of its taps (YAMNet: one batch row per patch).
    """

    def __init__(
        self,
        name: str,
        variant: str,
        module: nn.Module,
        preprocess: Preprocess,
        layers: Sequence[Layer],
        classes: Sequence[str] | None,
        default_layers: Sequence[str],
        input_size: int,
        *,
        modality: str = "image",
        sample_rate: int | None = None,
        weights_path: Path | None = None,
        min_side: int = 1,
    ) -> None:
        if modality not in ("image", "audio") or (modality == "audio") != (sample_rate is not None):
            raise AssertionError(f"{name}: modality {modality!r} with sample_rate {sample_rate!r}")
        self.name = name
        self.variant = variant
        self.module = module.eval().requires_grad_(False)
        self.preprocess = preprocess
        self.layers = tuple(layers)
        self.classes = tuple(classes) if classes is not None else None
        self.default_layers = tuple(default_layers)
        self.input_size = input_size
        self.modality = modality
        self.sample_rate = sample_rate
        self.weights_path = weights_path  # the file the weights were loaded from (for provenance records)
        self.min_side = min_side
        self.bf16 = False  # forward pass under bfloat16 autocast (see set_compute)
        self.channels_last = False
        self._by_name = {layer.name: layer for layer in self.layers}
        self._order = {layer.name: i for i, layer in enumerate(self.layers)}
        self._modules = dict(self.module.named_modules())
        for layer in self.layers:
            if layer.module not in self._modules:
                raise AssertionError(f"{name}: tap {layer.name} names missing submodule {layer.module}")

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def to(self, device: torch.device | str) -> Backbone:
        self.module.to(device)
        return self

    @property
    def device(self) -> torch.device:
        """Where the network's weights live (the CPU for a network without any)."""
        first = next(self.module.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    def set_compute(self, *, bf16: bool, channels_last: bool) -> Backbone:
        """Run the forward pass under bfloat16 autocast (taps are handed back in the input's dtype) and/or in
        channels-last memory layout. See :func:`mmdream.backbones.compute.place`."""
        self.bf16, self.channels_last = bf16, channels_last
        self.module.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        return self

    def example_input(self, batch: int = 1) -> torch.Tensor:
        """Zeros of the smallest natural input on the network's device: ``(batch, 3, input_size, input_size)``
        pixels, or ``(batch, input_size)`` samples for audio (one analysis window), e.g. to probe a tap's channel
        count."""
        if self.modality == "audio":
            return torch.zeros(batch, self.input_size, device=self.device)
        return torch.zeros(batch, 3, self.input_size, self.input_size, device=self.device)

    def check_layers(self, names: Iterable[str]) -> None:
        """Raise a ParameterError naming the available layers if any name is unknown."""
        for n in names:
            if n not in self._by_name:
                raise ParameterError(
                    f"unknown layer '{n}' for {self.name}; available: {', '.join(self.layer_names)}"
                )

    def taps(self, x: torch.Tensor, names: Iterable[str]) -> dict[str, torch.Tensor]:
        """Activations of the named layers for RGB pixels ``x`` ``(N, 3, H, W)`` (audio: a waveform) in one pass.

        The pass stops right after the deepest requested tap. Gradients flow to ``x`` if it requires them.
        """
        wanted = list(dict.fromkeys(names))
        self.check_layers(wanted)
        if not wanted:
            raise ParameterError("no layer requested")
        deepest = max(wanted, key=self._order.__getitem__)
        out: dict[str, torch.Tensor] = {}
        handles = []
        by_module: dict[str, list[str]] = {}
        for n in wanted:
            by_module.setdefault(self._by_name[n].module, []).append(n)
        deepest_module = self._by_name[deepest].module

        for mod_name, tap_names in by_module.items():
            def hook(_m: nn.Module, _i: object, o: torch.Tensor, tap_names=tap_names, mod_name=mod_name) -> None:
                for t in tap_names:
                    out[t] = o.to(x.dtype) if self.bf16 else o
                if mod_name == deepest_module:
                    raise _StopForward

            handles.append(self._modules[mod_name].register_forward_hook(hook))
        if self.modality == "image" and min(x.shape[-2:]) < self.min_side:
            x = mirror_pad(x, self.min_side, self.min_side)
        try:
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                pixels = self.preprocess(x)
                self.module(pixels.contiguous(memory_format=torch.channels_last) if self.channels_last else pixels)
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        return out

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, num_classes)`` for RGB pixels ``x`` ``(N, 3, H, W)`` (audio: ``(N * P, classes)``)."""
        self.require_classes()
        return self.taps(x, ["logits"])["logits"]

    def require_classes(self) -> tuple[str, ...]:
        if self.classes is None:
            raise ParameterError(
                f"{self.name} ({self.variant} weights) has no classifier; "
                "class objectives and classify need a backbone with classes (see `mmdream classes NAME`)"
            )
        return self.classes

    def resolve_class(self, query: str | int) -> int:
        """Index of a class named by index or by (part of) its name; ambiguous or unknown names raise."""
        classes = self.require_classes()
        text = str(query).strip()
        if text.lstrip("-").isdigit():
            idx = int(text)
            if not 0 <= idx < len(classes):
                raise ParameterError(f"class index {idx} out of range for {self.name}: 0..{len(classes) - 1}")
            return idx
        q = text.lower()
        synonyms = [[s.strip().lower() for s in c.split(",")] for c in classes]
        exact = [i for i, syn in enumerate(synonyms) if q in syn or q == classes[i].lower()]
        if len(exact) == 1:
            return exact[0]
        partial = exact or [i for i, c in enumerate(classes) if q in c.lower()]
        if len(partial) == 1:
            return partial[0]
        if not partial:
            raise ParameterError(
                f"no class of {self.name} matches '{query}'; list them with `mmdream classes {self.name}`"
            )
        shown = "; ".join(f"{i}: {classes[i]}" for i in partial[:8])
        more = f" and {len(partial) - 8} more" if len(partial) > 8 else ""
        raise ParameterError(f"class '{query}' is ambiguous for {self.name}: {shown}{more}; give the index")
