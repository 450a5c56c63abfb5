"""Shared themes: paired ImageNet and AudioSet class sets resolve on the real backbones and raise both."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmdream.backbones import load_backbone
from mmdream.errors import ParameterError
from mmdream.objectives.terms import ClassSetTerm, SoundSetTerm
from mmdream.objectives.themes import THEMES, image_objective, resolve_theme, sound_objective_of


@pytest.fixture(scope="module")
def yamnet(weights_dir: Path):  # type: ignore[no-untyped-def]
    return load_backbone("yamnet", weights_dir=weights_dir)


def test_every_shipped_theme_resolves_on_the_real_class_lists(effnet, yamnet) -> None:  # type: ignore[no-untyped-def]
    for theme in THEMES.values():
        (image,) = image_objective(effnet, theme).terms
        (sound,) = sound_objective_of(yamnet, theme).terms
        assert isinstance(image, ClassSetTerm) and len(image.indices) == len(theme.image)
        assert isinstance(sound, SoundSetTerm) and len(sound.indices) == len(theme.sound)
    dog = THEMES["dog"]
    assert effnet.classes[dog.image[0]].startswith("Chihuahua") and "Mexican hairless" in effnet.classes[dog.image[-1]]
    assert [yamnet.classes[i] for i in sound_objective_of(yamnet, dog).terms[0].indices] == ["Dog", "Bark"]


def test_custom_and_extended_themes() -> None:
    assert resolve_theme({"name": "cat", "sound": ["Hiss"]}).sound == ("Cat", "Meow", "Purr", "Hiss")
    custom = resolve_theme({"image": ["goldfish"], "sound": ["Water"]})
    assert (custom.name, custom.image, custom.sound) == ("custom", ("goldfish",), ("Water",))
    with pytest.raises(ParameterError, match="unknown theme 'unicorn'"):
        resolve_theme("unicorn")


def test_wrong_backbones_are_refused(effnet, yamnet) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParameterError, match="needs an image backbone"):
        image_objective(yamnet, THEMES["dog"])
    with pytest.raises(ParameterError, match="needs an audio backbone"):
        sound_objective_of(effnet, THEMES["dog"])


def test_class_set_term_is_the_log_of_the_summed_probability() -> None:
    logits = torch.tensor([[1.0, 2.0, 0.5, -1.0]])
    probs = torch.softmax(logits, dim=-1)[0]
    value = ClassSetTerm((1, 2)).value({"logits": logits})
    assert float(value) == pytest.approx(float(torch.log(probs[1] + probs[2])), abs=1e-6)
