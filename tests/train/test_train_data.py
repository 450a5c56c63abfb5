"""Training datasets: layout checks before any training, RGBA on grey, seeded stratified splits and folds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from mmdream.errors import MediaError, ParameterError
from mmdream.train.data import (BACKGROUND, AudioAugment, AudioDataset, ImageAugment, ImageDataset, augment_clip,
                                augment_image, prepare_clip, prepare_image, stratified_folds, stratified_split)


def _image(path: Path, colour: tuple[int, ...], size: tuple[int, int] = (20, 12)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA" if len(colour) == 4 else "RGB", size, colour).save(path)


def _sound(path: Path, freq: float, seconds: float = 0.5, rate: int = 22050) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(str(path), 0.3 * np.sin(2 * np.pi * freq * t), rate)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for i in range(3):
        _image(root / "red" / f"r{i}.png", (255, 0, 0))
        _image(root / "blue" / f"b{i}.jpg", (0, 0, 255))
    return root


def test_image_folder_reads_classes_and_composites_cutouts_on_grey(images: Path) -> None:
    _image(images / "red" / "cutout.png", (255, 0, 0, 0))  # fully transparent
    ds = ImageDataset.from_folder(images)
    assert ds.classes == ("blue", "red")
    assert ds.labels.count(1) == 4 and ds.labels.count(0) == 3
    cut = ds.images[ds.names.index("red/cutout.png")]
    assert cut.shape == (3, 12, 20)
    assert torch.allclose(cut, torch.full_like(cut, 128 / 255))
    x = prepare_image(ds.images[ds.names.index("red/r0.png")], 32)  # 20x12 padded to a square on grey
    assert x.shape == (3, 32, 32)
    assert torch.allclose(x[:, 0, 16], torch.full((3,), BACKGROUND), atol=1e-6)  # top band: padding
    assert torch.allclose(x[:, 16, 16], torch.tensor([1.0, 0.0, 0.0]), atol=1e-6)  # centre: the picture


@pytest.mark.parametrize("case, fragments", [
    ("empty class", ["class folder", "green", "holds no image"]),
    ("single class", ["single class", "at least two"]),
    ("unreadable", ["broken.png", "cannot read", "replace or remove"]),
    ("not a folder", ["is not a folder"]),
    ("no class folders", ["no class folders"]),
])
def test_bad_image_dataset(images: Path, tmp_path: Path, case: str, fragments: list[str]) -> None:
    root = images
    if case == "empty class":
        (images / "green").mkdir()
    elif case == "single class":
        root = images / "only"
        _image(root / "red" / "a.png", (255, 0, 0))
    elif case == "unreadable":
        (images / "red" / "broken.png").write_text("not a picture")
    elif case == "not a folder":
        root = tmp_path / "nowhere"
    else:
        root = tmp_path / "flat"
        _image(root / "a.png", (0, 0, 0))
    with pytest.raises((MediaError, ParameterError)) as err:
        ImageDataset.from_folder(root)
    for fragment in fragments:
        assert fragment in str(err.value)


@pytest.fixture
def sounds(tmp_path: Path) -> Path:
    root = tmp_path / "sounds"
    for i in range(2):
        _sound(root / "low" / f"l{i}.wav", 220 + 10 * i)
        _sound(root / "high" / f"h{i}.wav", 2000 + 100 * i)
    return root


def test_audio_folder_and_csv_index_agree(sounds: Path) -> None:
    folder = AudioDataset.open(sounds, 16000)
    index = sounds / "index.csv"
    index.write_text("path,label\n" + "".join(f"{n},{folder.classes[lab]}\n"
                                             for n, lab in zip(folder.names, folder.labels)))
    listed = AudioDataset.open(index, 16000)
    assert folder.classes == listed.classes == ("high", "low")
    assert folder.labels == listed.labels and folder.names == listed.names
    assert all(c.shape == (8000,) for c in folder.clips)  # 0.5 s at 16 kHz, mono
    assert all(torch.equal(a, b) for a, b in zip(folder.clips, listed.clips))


@pytest.mark.parametrize("text, fragments", [
    ("path,label,speaker\nlow/l0.wav,low,x\n", ["unknown column", "'speaker'", "path,label"]),
    ("file,label\nlow/l0.wav,low\n", ["unknown column", "'file'"]),
    ("path,label\nlow/l0.wav,low\nlow/missing.wav,low\n", ["line 3", "missing.wav", "does not exist"]),
    ("path,label\nlow/l0.wav,low\nhigh/h0.wav,\n", ["line 3", "empty label"]),
    ("path,label\n", ["no rows"]),
    ("path,label\nlow/l0.wav,low\nlow/l1.wav,low\n", ["single class"]),
    ("path,label\nlow/l0.wav,low\nbad.wav,high\n", ["bad.wav", "replace or remove"]),
])
def test_bad_audio_index(sounds: Path, text: str, fragments: list[str]) -> None:
    (sounds / "bad.wav").write_text("not a sound")
    index = sounds / "index.csv"
    index.write_text(text)
    with pytest.raises((MediaError, ParameterError)) as err:
        AudioDataset.open(index, 16000)
    for fragment in fragments:
        assert fragment in str(err.value)


def test_stratified_split_keeps_every_class_and_is_seeded() -> None:
    labels = [0] * 10 + [1] * 5 + [2] * 1
    train, held = stratified_split(labels, 0.2, seed=3)
    assert sorted(train + held) == list(range(16))
    assert [labels[i] for i in held].count(0) == 2 and [labels[i] for i in held].count(1) == 1
    assert 15 in train  # a class's only item is never held out
    assert stratified_split(labels, 0.2, seed=3) == (train, held)
    assert stratified_split(labels, 0.2, seed=4) != (train, held)
    assert stratified_split(labels, 0.0, seed=0) == (list(range(16)), [])


def test_stratified_folds_partition_the_items() -> None:
    labels = [0] * 7 + [1] * 4 + [2] * 2
    folds = stratified_folds(labels, 4, seed=0)
    tests = [t for _, t in folds]
    assert sorted(sum(tests, [])) == list(range(13))
    assert max(map(len, tests)) - min(map(len, tests)) <= 1
    for train, test in folds:
        assert not set(train) & set(test)
        assert [labels[i] for i in test].count(0) in (1, 2)  # 7 items of class 0 dealt over 4 folds
    assert stratified_folds(labels, 4, seed=0) == folds
    with pytest.raises(ParameterError, match="folds=1"):
        stratified_folds(labels, 1, seed=0)


def test_augmentations_are_seeded_and_shaped() -> None:
    image = torch.rand(3, 30, 40)
    a = augment_image(image, 24, ImageAugment(), torch.Generator().manual_seed(1))
    b = augment_image(image, 24, ImageAugment(), torch.Generator().manual_seed(1))
    assert a.shape == (3, 24, 24) and torch.equal(a, b) and 0 <= float(a.min()) and float(a.max()) <= 1
    clip = torch.sin(torch.arange(5000) / 10.0)
    x = augment_clip(clip, 8000, AudioAugment(noise_db=-120, gain_db=0), torch.Generator().manual_seed(0))
    assert x.shape == (8000,) and torch.isclose(x.square().sum(), clip.square().sum())  # shifted, padded
    assert prepare_clip(clip, 3000).shape == (3000,) and torch.equal(prepare_clip(clip, 3000), clip[1000:4000])


def test_training_options_are_checked_before_any_data() -> None:
    from mmdream.train.finetune import TrainParams, check_training

    check_training("vgg16", TrainParams(freeze_to="relu4_3", unfreeze_to="relu3_3", unfreeze_after=2))
    with pytest.raises(ParameterError, match="unknown layer 'relu9' for freeze_to of vgg16; available: conv1_1"):
        check_training("vgg16", TrainParams(freeze_to="relu9"))
    with pytest.raises(ParameterError, match="must come before"):
        check_training("vgg16", TrainParams(freeze_to="relu3_3", unfreeze_to="relu4_3"))
    with pytest.raises(ParameterError, match="unknown audio base 'yamnet'"):
        check_training("yamnet", TrainParams(), "audio")
    with pytest.raises(ParameterError, match="balance="):
        check_training("small", TrainParams(balance="magic"))
