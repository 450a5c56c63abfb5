"""Datasets for training: image and sound folders (a folder per class) or a CSV index, checked before training.

Every check runs when a dataset is opened, so a bad dataset fails before any training starts: an empty class
folder, a single class, a file that cannot be read, a CSV row naming a missing file, an unknown CSV column. Images
are kept in memory as RGB ``(3, H, W)`` in [0, 1], cut-outs with transparency composited on neutral grey;
sounds as mono ``(samples,)`` at the network's rate. The datasets this is for are small (tens to a few thousand
items).

>>> ds = ImageDataset.from_folder("animals/images")        # classes: sorted folder names
>>> x = prepare_image(ds.images[0], 224)                   # (3, 224, 224), padded to a square on grey
>>> folds = stratified_folds(ds.labels, 5, seed=0)          # [(train indices, test indices)] * 5
"""

from __future__ import annotations

import csv
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from mmdream.errors import MediaError, ParameterError
from mmdream.options import Options, option

__all__ = ["ImageDataset", "AudioDataset", "ImageAugment", "AudioAugment", "stratified_split", "stratified_folds",
           "prepare_image", "augment_image", "prepare_clip", "augment_clip", "IMAGE_SUFFIXES", "AUDIO_SUFFIXES",
           "BACKGROUND", "read_rgb", "class_counts"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus")
BACKGROUND = 0.5  # neutral grey behind transparent pixels and around images padded to a square
CSV_COLUMNS = ("path", "label")


def _class_folders(root: Path, suffixes: tuple[str, ...], kind: str) -> list[tuple[Path, str]]:
    """``[(file, class)]`` of a folder holding one sub-folder per class; checks the layout."""
    if not root.is_dir():
        raise MediaError(f"dataset {root} is not a folder; give a folder with one sub-folder of {kind}s per class")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise MediaError(f"dataset {root} has no class folders; put the {kind}s of each class in a sub-folder "
                         "named after the class")
    items: list[tuple[Path, str]] = []
    for folder in folders:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        if not files:
            raise MediaError(f"class folder {folder} holds no {kind} ({', '.join(suffixes)}); add some or remove "
                             "the folder")
        items += [(f, folder.name) for f in files]
    return items


def _check_classes(names: Sequence[str], root: Path) -> tuple[str, ...]:
    classes = tuple(sorted(set(names)))
    if len(classes) < 2:
        raise ParameterError(f"dataset {root} has a single class ({', '.join(classes)}); a classifier needs at "
                             "least two: add a folder (or CSV label) per further class")
    return classes


def read_rgb(path: str | os.PathLike[str]) -> torch.Tensor:
    """RGB ``(3, H, W)`` in [0, 1]; transparent pixels composited on :data:`BACKGROUND` grey."""
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "P", "PA") or "transparency" in im.info:
                im = im.convert("RGBA")
                grey = round(255 * BACKGROUND)
                im = Image.alpha_composite(Image.new("RGBA", im.size, (grey, grey, grey, 255)), im)
            arr = np.array(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise MediaError(f"cannot read {path} as an image ({exc}); replace or remove it from the dataset") from exc
    return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0)


@dataclass(frozen=True)
class ImageDataset:
    """Images ``(3, H_i, W_i)`` in [0, 1] (sizes may differ), their labels (indices into ``classes``) and names."""

    images: tuple[torch.Tensor, ...] = field(repr=False)
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not len(self.images) == len(self.labels) == len(self.names):
            raise ParameterError("images, labels and names must have the same length")
        if len(self.classes) < 2:
            raise ParameterError(f"a dataset needs at least two classes; got {list(self.classes)}")
        bad = [lab for lab in self.labels if not 0 <= lab < len(self.classes)]
        if bad:
            raise ParameterError(f"label {bad[0]} out of range for {len(self.classes)} classes")

    @classmethod
    def from_folder(cls, root: str | os.PathLike[str]) -> ImageDataset:
        """Read every image of ``root/<class>/*``; classes are the sorted folder names."""
        root = Path(root)
        items = _class_folders(root, IMAGE_SUFFIXES, "image")
        classes = _check_classes([c for _, c in items], root)
        return cls(tuple(read_rgb(p) for p, _ in items), tuple(classes.index(c) for _, c in items), classes,
                   tuple(str(p.relative_to(root)) for p, _ in items))

    def subset(self, indices: Sequence[int]) -> ImageDataset:
        return ImageDataset(tuple(self.images[i] for i in indices), tuple(self.labels[i] for i in indices),
                            self.classes, tuple(self.names[i] for i in indices))


@dataclass(frozen=True)
class AudioDataset:
    """Mono clips ``(samples,)`` at ``sample_rate``, their labels (indices into ``classes``) and names."""

    clips: tuple[torch.Tensor, ...] = field(repr=False)
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    names: tuple[str, ...]
    sample_rate: int

    @classmethod
    def open(cls, source: str | os.PathLike[str], sample_rate: int) -> AudioDataset:
        """A folder per class, or a CSV index with columns ``path,label`` (paths relative to the CSV's folder);
        every clip is decoded, mixed to mono and resampled to ``sample_rate``."""
        from mmdream.media.audio import load_audio

        source = Path(source)
        items = _csv_items(source) if source.suffix.lower() == ".csv" else _class_folders(source, AUDIO_SUFFIXES,
                                                                                           "sound")
        classes = _check_classes([c for _, c in items], source)
        clips = []
        for path, _ in items:
            try:
                samples, _ = load_audio(path, rate=sample_rate, mono=True)
            except MediaError as exc:
                raise MediaError(f"dataset {source}: {exc}; replace or remove {path}") from exc
            if samples.shape[-1] == 0 or not torch.isfinite(samples).all():
                raise MediaError(f"dataset {source}: {path} holds no (finite) audio samples; replace or remove it")
            clips.append(samples[0])
        base = source.parent if source.suffix.lower() == ".csv" else source
        names = tuple(str(p.relative_to(base)) if p.is_relative_to(base) else str(p) for p, _ in items)
        return cls(tuple(clips), tuple(classes.index(c) for _, c in items), classes, names, sample_rate)

    def subset(self, indices: Sequence[int]) -> AudioDataset:
        return AudioDataset(tuple(self.clips[i] for i in indices), tuple(self.labels[i] for i in indices),
                            self.classes, tuple(self.names[i] for i in indices), self.sample_rate)


def _csv_items(index: Path) -> list[tuple[Path, str]]:
    """``[(file, label)]`` of a CSV index ``path,label``; names the row of a missing file or an empty label."""
    if not index.is_file():
        raise MediaError(f"dataset index {index} does not exist")
    try:
        with open(index, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            unknown = [c for c in columns if c not in CSV_COLUMNS]
            missing = [c for c in CSV_COLUMNS if c not in columns]
            if unknown or missing:
                what = f"unknown column(s) {', '.join(map(repr, unknown))}" if unknown else \
                    f"missing column(s) {', '.join(missing)}"
                raise MediaError(f"dataset index {index}: {what}; its header must be exactly: path,label")
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MediaError(f"cannot read dataset index {index} ({exc}); give a UTF-8 CSV with columns path,label") \
            from exc
    if not rows:
        raise MediaError(f"dataset index {index} has no rows; add one line path,label per sound")
    items = []
    for line, row in enumerate(rows, start=2):
        if not row.get("label"):
            raise MediaError(f"dataset index {index}, line {line}: empty label; give every sound a class")
        path = index.parent / row.get("path", "")
        if not row.get("path") or not path.is_file():
            raise MediaError(f"dataset index {index}, line {line}: file {path} does not exist; fix the path "
                             "(relative to the index's folder) or remove the row")
        items.append((path, row["label"]))
    return items


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded ``(train, held_out)`` indices: about ``fraction`` of each class held out (rounded), but never a
    class's last item, so every class stays in training. ``fraction == 0``: nothing held out."""
    if not 0.0 <= fraction < 1.0:
        raise ParameterError(f"held-out fraction {fraction!r} must be at least 0 and below 1")
    g = torch.Generator().manual_seed(seed)
    train: list[int] = []
    held: list[int] = []
    for c in sorted(set(labels)):
        members = [i for i, lab in enumerate(labels) if lab == c]
        members = [members[j] for j in torch.randperm(len(members), generator=g).tolist()]
        k = min(math.floor(len(members) * fraction + 0.5), len(members) - 1)
        held += members[:k]
        train += members[k:]
    return sorted(train), sorted(held)


def stratified_folds(labels: Sequence[int], folds: int, seed: int) -> list[tuple[list[int], list[int]]]:
    """Seeded stratified k-fold: ``[(train, test)]`` with each class's items dealt round the folds in turn
    (continuing from where the previous class stopped, so folds differ in size by at most one)."""
    if not 2 <= folds <= len(labels):
        raise ParameterError(f"folds={folds} is invalid: it must be from 2 to the number of items ({len(labels)})")
    g = torch.Generator().manual_seed(seed)
    fold_of = [0] * len(labels)
    turn = 0
    for c in sorted(set(labels)):
        members = [i for i, lab in enumerate(labels) if lab == c]
        for j in torch.randperm(len(members), generator=g).tolist():
            fold_of[members[j]] = turn % folds
            turn += 1
    return [([i for i in range(len(labels)) if fold_of[i] != k], [i for i in range(len(labels)) if fold_of[i] == k])
            for k in range(folds)]


def class_counts(labels: Sequence[int], n_classes: int) -> torch.Tensor:
    """Items per class ``(n_classes,)``."""
    counts = Counter(labels)
    return torch.tensor([counts.get(c, 0) for c in range(n_classes)], dtype=torch.float32)


@dataclass(frozen=True)
class ImageAugment(Options):
    """Light image augmentation for training (each draw is seeded by the training run)."""

    flip: bool = option(True, "random horizontal flips")
    crop: float = option(0.75, "random square crops keep at least this share of the side (1: no crops)", ge=0.3,
                         le=1.0)
    jitter: float = option(0.2, "colour jitter: brightness, contrast and saturation vary by up to this factor (0: "
                                "none)", ge=0.0, le=0.9)


@dataclass(frozen=True)
class AudioAugment(Options):
    """Light audio augmentation: random excerpt (time shift), gain and noise, seeded by the training run."""

    clip_s: float = option(1.0, "length of the training excerpts, seconds (shorter clips are zero-padded at a "
                                "random offset)", ge=0.1, le=30.0, unit="seconds")
    gain_db: float = option(6.0, "random gain of up to +- this many dB", ge=0.0, le=24.0, unit="dB")
    noise_db: float = option(-30.0, "white noise this many dB below the clip's RMS, at a random level down to 20 dB "
                                    "less (-120: none)", ge=-120.0, le=0.0, unit="dB")


def _square(image: torch.Tensor) -> torch.Tensor:
    """``(3, H, W)`` padded with :data:`BACKGROUND` grey to a centred square ``(3, S, S)``, S = max(H, W)."""
    h, w = image.shape[-2:]
    s = max(h, w)
    top, left = (s - h) // 2, (s - w) // 2
    return F.pad(image, (left, s - w - left, top, s - h - top), value=BACKGROUND)


def _resize(image: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)[0].clamp_(0.0, 1.0)


def prepare_image(image: torch.Tensor, size: int) -> torch.Tensor:
    """Evaluation view: ``(3, H, W)`` padded to a square on grey and resized to ``(3, size, size)``."""
    return _resize(_square(image), size)


def augment_image(image: torch.Tensor, size: int, aug: ImageAugment, generator: torch.Generator) -> torch.Tensor:
    """Training view ``(3, size, size)``: square on grey, random square crop, flip, colour jitter."""
    sq = _square(image)
    s = sq.shape[-1]

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=generator))

    side = max(1, round(s * uniform(aug.crop, 1.0)))
    top, left = (int(torch.randint(0, s - side + 1, (), generator=generator)) for _ in range(2))
    x = _resize(sq[:, top:top + side, left:left + side], size)
    if aug.flip and float(torch.rand((), generator=generator)) < 0.5:
        x = x.flip(-1)
    if aug.jitter > 0:
        j = aug.jitter
        x = x * uniform(1 - j, 1 + j)  # brightness
        x = (x - x.mean()) * uniform(1 - j, 1 + j) + x.mean()  # contrast
        grey = x.mean(dim=0, keepdim=True)
        x = (x - grey) * uniform(1 - j, 1 + j) + grey  # saturation
    return x.clamp(0.0, 1.0)


def prepare_clip(clip: torch.Tensor, samples: int) -> torch.Tensor:
    """Evaluation excerpt ``(samples,)``: the centre of a longer clip, a shorter one zero-padded around it."""
    n = clip.shape[-1]
    if n >= samples:
        start = (n - samples) // 2
        return clip[start:start + samples]
    left = (samples - n) // 2
    return F.pad(clip, (left, samples - n - left))


def augment_clip(clip: torch.Tensor, samples: int, aug: AudioAugment, generator: torch.Generator) -> torch.Tensor:
    """Training excerpt ``(samples,)``: random offset (time shift), random gain, white noise below the clip's RMS."""
    n = clip.shape[-1]
    offset = int(torch.randint(0, abs(n - samples) + 1, (), generator=generator))
    x = clip[offset:offset + samples] if n >= samples else F.pad(clip, (offset, samples - n - offset))
    gain_db = aug.gain_db * (2 * float(torch.rand((), generator=generator)) - 1)
    x = x * 10 ** (gain_db / 20)
    if aug.noise_db > -120:
        rms = x.square().mean().sqrt()
        level_db = aug.noise_db - 20 * float(torch.rand((), generator=generator))
        x = x + torch.randn(samples, generator=generator) * rms * 10 ** (level_db / 20)
    return x
