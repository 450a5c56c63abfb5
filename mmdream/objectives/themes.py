"""Picture and sound share a theme: paired image classes (ImageNet-1k) and sound classes (AudioSet, YAMNet).

``theme: dog`` dreams a film's frames toward all dog breeds (their summed probability, :class:`ClassSetTerm`) and
its soundtrack toward Dog and Bark (:class:`SoundSetTerm`). A job spec may extend a shipped theme or define its
own, with class names or indices of whatever backbones it uses (a retrained net's classes too)::

    theme: dog
    theme: {name: dog, sound: [Howl]}                       # the shipped dog theme, plus howls
    theme: {image: [goldfish, "tench, Tinca tinca"], sound: [Water, "Stream"]}

>>> theme = resolve_theme("dog")
>>> objective = image_objective(effnet, theme); sound = sound_objective_of(yamnet, theme)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mmdream.backbones.base import Backbone
from mmdream.errors import ParameterError
from mmdream.objectives.terms import ClassSetTerm, Objective, SoundSetTerm

__all__ = ["Theme", "THEMES", "resolve_theme", "image_objective", "sound_objective_of"]

Classes = tuple[int | str, ...]


@dataclass(frozen=True)
class Theme:
    """A named pair of class sets: ``image`` (indices into ImageNet-1k, or names) and ``sound`` (AudioSet names
    or indices)."""

    name: str
    image: Classes
    sound: Classes


def _span(first: int, last: int) -> tuple[int, ...]:
    return tuple(range(first, last + 1))


# ImageNet-1k indices (the order every shipped image backbone uses) and YAMNet's AudioSet names.
THEMES: dict[str, Theme] = {t.name: t for t in (
    Theme("dog", _span(151, 268), ("Dog", "Bark")),  # the 118 dog breeds
    Theme("cat", _span(281, 285), ("Cat", "Meow", "Purr")),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    Theme("bird", _span(7, 24) + _span(80, 100) + _span(127, 146),
          ("Bird", "Bird vocalization, bird call, bird song", "Chirp, tweet")),
    Theme("vehicle", (407, 436, 468, 511, 555, 569, 609, 627, 654, 656, 661, 675, 717, 734, 751, 779, 817, 864,
                      867, 874), ("Vehicle", "Car", "Motor vehicle (road)", "Truck", "Bus")),
    Theme("train", (466, 547, 565, 820), ("Train", "Rail transport", "Train whistle")),
    Theme("music", (401, 402, 420, 432, 486, 494, 513, 541, 546, 558, 566, 579, 593, 594, 641, 642, 683, 687, 699,
                    776, 822, 875, 881, 889),
          ("Music", "Musical instrument", "Guitar", "Piano", "Drum", "Violin, fiddle", "Flute", "Saxophone")),
)}


def resolve_theme(spec: str | Theme | Mapping[str, Any]) -> Theme:
    """A theme from its name (one of :data:`THEMES`), or a mapping ``{name?, image?, sound?}`` that extends a shipped
    theme (with ``name``) or defines a new one (classes of both kinds then required)."""
    if isinstance(spec, Theme):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    name = spec.get("name")
    image, sound = tuple(spec.get("image") or ()), tuple(spec.get("sound") or ())
    if name is not None:
        if name not in THEMES:
            raise ParameterError(f"unknown theme {name!r}; shipped themes: {', '.join(THEMES)} (or give image: and "
                                 "sound: class lists)")
        base = THEMES[name]
        return Theme(name, base.image + image, base.sound + sound)
    if not image or not sound:
        raise ParameterError("a theme without a name needs both image: and sound: class lists")
    return Theme("custom", image, sound)


def _indices(backbone: Backbone, classes: Classes) -> tuple[int, ...]:
    return tuple(dict.fromkeys(backbone.resolve_class(c) for c in classes))


def image_objective(backbone: Backbone, theme: Theme) -> Objective:
    """Raise the summed probability of the theme's image classes on an image classifier."""
    if backbone.modality != "image":
        raise ParameterError(f"{backbone.name} hears sounds; the theme's picture needs an image backbone")
    if any(isinstance(c, int) for c in theme.image) and len(backbone.require_classes()) != 1000:
        raise ParameterError(f"theme {theme.name!r} names ImageNet-1k classes by index; {backbone.name} has "
                             f"{len(backbone.require_classes())} classes: name its classes in the theme's image: list")
    return Objective((ClassSetTerm(_indices(backbone, theme.image)),))


def sound_objective_of(backbone: Backbone, theme: Theme) -> Objective:
    """Raise the mean score of the theme's sound classes on an audio classifier (YAMNet)."""
    if backbone.modality != "audio":
        raise ParameterError(f"{backbone.name} sees images; the theme's sound needs an audio backbone (yamnet)")
    return Objective((SoundSetTerm(_indices(backbone, theme.sound)),))
