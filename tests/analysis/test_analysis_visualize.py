"""Feature visualisation on the shared weights: channels, diversity, classes and sounds (thresholds measured, with
margin; bench/analysis.py measures the same at full size)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmdream.analysis.atlas import atlas_batches, atlas_image, class_channels
from mmdream.objectives.visualization import channel_objective, class_objective
from mmdream.analysis.param import DEFAULT_COLOR_CORRELATION, measure_color_correlation
from mmdream.analysis.visualize import VisParams, channel_means, texture_distance, visualize, visualize_sound
from mmdream.errors import ParameterError
from mmdream.media.audio import load_audio
from mmdream.media.images import load_image

pytestmark = pytest.mark.usefixtures("one_thread")


def test_default_color_correlation_is_the_shared_photos(media_dir: Path) -> None:
    photos = [media_dir / "images" / n for n in ("astronaut.png", "chelsea.png", "coffee.png", "dog.jpg")]
    assert torch.allclose(measure_color_correlation(photos), DEFAULT_COLOR_CORRELATION, atol=1e-4)


def test_channel_visualisation_beats_a_photo_tenfold(vgg16, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    # Measured at 64 px, 16 steps: 970x (channel 0) and 81x (channel 3, dead at the start: redirected ReLU).
    photo = channel_means(vgg16, "relu4_3", load_image(media_dir / "images" / "chelsea.png", 224))[0]
    pics = visualize(vgg16, channel_objective(vgg16, "relu4_3", (0, 3)), VisParams(size=64, steps=16), batch=2)
    assert pics.shape == (2, 3, 64, 64) and 0 <= float(pics.min()) and float(pics.max()) <= 1
    on_vis = channel_means(vgg16, "relu4_3", pics)
    assert float(on_vis[0, 0]) >= 10 * float(photo[0])
    assert float(on_vis[1, 3]) >= 10 * float(photo[3])
    # each item its own channel: item 0 excites channel 0 far more than item 1 does
    assert float(on_vis[0, 0]) > 3 * float(on_vis[1, 0])


def test_same_seed_same_pictures_and_batches_are_resumable(vgg16) -> None:  # type: ignore[no-untyped-def]
    params = VisParams(size=32, steps=2, seed=3)
    whole = dict(atlas_batches(vgg16, "relu3_3", [0, 1, 2], params, batch=2))
    rest = dict(atlas_batches(vgg16, "relu3_3", [0, 1, 2], params, batch=2, skip=lambda chunk: 0 in chunk))
    assert list(whole) == [(0, 1), (2,)] and list(rest) == [(2,)]
    assert torch.equal(whole[(2,)], rest[(2,)])
    sheet = atlas_image(torch.cat(list(whole.values())), ["0", "1", "2"], columns=2)
    assert sheet.size == (2 * 36 + 4, 2 * (32 + 14 + 4) + 4)


def test_diversity_gives_different_pictures(vgg16) -> None:  # type: ignore[no-untyped-def]
    params = VisParams(size=64, steps=24)
    plain = visualize(vgg16, channel_objective(vgg16, "relu4_3", (3,)), params, batch=3)
    varied = visualize(vgg16, channel_objective(vgg16, "relu4_3", (3,), diversity=300.0), params, batch=3)
    d_plain, d_varied = texture_distance(vgg16, "relu4_3", plain), texture_distance(vgg16, "relu4_3", varied)
    print(f"texture distance without diversity {d_plain:.3f}, with {d_varied:.3f}")
    assert d_varied > 3 * d_plain
    with pytest.raises(ParameterError, match="one channel"):
        channel_objective(vgg16, "relu4_3", (1, 2), diversity=1.0)


def test_class_visualisation_and_class_channels(effnet) -> None:  # type: ignore[no-untyped-def]
    index = effnet.resolve_class("goldfish")
    pic = visualize(effnet, class_objective(effnet, "goldfish"), VisParams(size=128, steps=24))
    prob = float(torch.softmax(effnet.logits(pic), dim=-1)[0, index])
    print(f"goldfish probability {prob:.3f}")
    assert prob > 0.3
    top = class_channels(effnet, "block6", "goldfish", 5, [pic])
    assert len(set(top)) == 5
    with pytest.raises(ParameterError, match="top-k"):
        class_channels(effnet, "block6", "goldfish", 10_000, [pic])


def test_sound_visualisation_raises_its_channel(yamnet, vgg16, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    # Measured (8 steps, 1 s): 1.37 on the sound, 0.39 on its noise start, 0.26 on a dog's bark.
    sound = visualize_sound(yamnet, channel_objective(yamnet, "layer8", (0,)), VisParams(sound_steps=8, seconds=1.0))
    assert sound.shape == (16000,) and float(sound.abs().max()) < 1
    noise = torch.randn(16000, generator=torch.Generator().manual_seed(0)) * 0.003
    bark = load_audio(media_dir / "audio" / "dog_bark.wav", rate=16000, mono=True)[0]
    on_sound = float(channel_means(yamnet, "layer8", sound[None])[0, 0])
    assert on_sound > 2 * float(channel_means(yamnet, "layer8", noise[None])[0, 0])
    assert on_sound > 2 * float(channel_means(yamnet, "layer8", bark)[0, 0])
    with pytest.raises(ParameterError, match="audio backbone"):
        visualize(yamnet, channel_objective(yamnet, "layer8", (0,)), VisParams(steps=1))
    with pytest.raises(ParameterError, match="image backbone"):
        visualize_sound(vgg16, channel_objective(vgg16, "relu1_1", (0,)), VisParams(sound_steps=1))
