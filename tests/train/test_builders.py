"""Dataset builders on tiny fixtures in the exact formats of ImageNet, FSDKaggle2018 and bird audio detection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from PIL import Image

from mmdream.errors import MediaError, ParameterError
from mmdream.train.builders import (bird_index, fsd_index, imagenet_subset, load_clip_cache, resolve_synsets,
                                    save_clip_cache)
from mmdream.train.data import AudioDataset, ImageDataset

SYNSETS = """n01440764 tench, Tinca tinca
n01443537 goldfish, Carassius auratus
n02012849 crane
n03126707 crane
"""


@pytest.fixture
def imagenet(tmp_path: Path) -> Path:
    root = tmp_path / "ILSVRC"
    for wnid in ("n01440764", "n01443537", "n02012849", "n03126707"):
        (root / "train" / wnid).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (12, 10), (i * 40, 0, 0)).save(root / "train" / wnid / f"{wnid}_{i}.JPEG", "JPEG")
    (root / "LOC_synset_mapping.txt").write_text(SYNSETS)
    return root


def test_imagenet_subset_by_names(imagenet: Path, tmp_path: Path) -> None:
    out = imagenet_subset(imagenet / "train", imagenet / "LOC_synset_mapping.txt", ["tench", "Goldfish"],
                          tmp_path / "fish", per_class=2)
    ds = ImageDataset.from_folder(out)
    assert ds.classes == ("Goldfish", "tench") and len(ds.labels) == 4
    assert (out / "tench" / "n01440764_0.JPEG").is_symlink()
    assert resolve_synsets(imagenet / "LOC_synset_mapping.txt", ["n02012849"]) == {"n02012849": "n02012849"}
    with pytest.raises(ParameterError, match="'crane' is ambiguous.*n02012849.*n03126707"):
        resolve_synsets(imagenet / "LOC_synset_mapping.txt", ["crane"])
    with pytest.raises(ParameterError, match="no ImageNet category is called 'unicorn'"):
        resolve_synsets(imagenet / "LOC_synset_mapping.txt", ["unicorn"])
    with pytest.raises(MediaError, match="not empty"):
        imagenet_subset(imagenet / "train", imagenet / "LOC_synset_mapping.txt", ["tench"], tmp_path / "fish")


def _wav(path: Path, freq: float, rate: int = 44100) -> None:
    t = np.arange(rate // 4) / rate
    soundfile.write(str(path), 0.2 * np.sin(2 * np.pi * freq * t), rate)


def test_fsd_index_by_labels(tmp_path: Path) -> None:
    audio = tmp_path / "FSDKaggle2018.audio_train"
    audio.mkdir()
    rows = [("00044347.wav", "Hi-hat", 0), ("001ca53d.wav", "Saxophone", 1), ("002d256b.wav", "Trumpet", 0),
            ("0033e230.wav", "Glockenspiel", 1), ("00353774.wav", "Cello", 1), ("003b91e8.wav", "Cello", 0)]
    for i, (name, _, _) in enumerate(rows):
        _wav(audio / name, 200 + 50 * i)
    csv = tmp_path / "train.csv"
    csv.write_text("fname,label,manually_verified,freesound_id,license\n"
                   + "".join(f"{n},{lab},{v},{1000 + i},Attribution\n" for i, (n, lab, v) in enumerate(rows)))
    index = fsd_index(csv, audio, ["Cello", "Glockenspiel"], tmp_path / "fsd.csv")
    ds = AudioDataset.open(index, 16000)
    assert ds.classes == ("Cello", "Glockenspiel") and ds.labels == (1, 0, 0)
    verified = AudioDataset.open(fsd_index(csv, audio, ["Cello", "Glockenspiel"], tmp_path / "v.csv",
                                           verified_only=True), 16000)
    assert verified.labels == (1, 0)
    with pytest.raises(ParameterError, match="Bark"):
        fsd_index(csv, audio, ["Bark"], tmp_path / "x.csv")


def test_bird_index_and_quick_load_cache(tmp_path: Path) -> None:
    wav = tmp_path / "wav"
    wav.mkdir()
    items = [("64486d4b-2b26-4b3e-9b4e-5e4d1e8d3c2a", 1), ("3b8e1a8e-4b6e-4d3a-8a5c-2f6e0c7d9e1b", 0),
             ("a1b2c3d4-0000-4000-8000-000000000001", 1), ("a1b2c3d4-0000-4000-8000-000000000002", 0)]
    for i, (item, _) in enumerate(items):
        _wav(wav / f"{item}.wav", 300 + 100 * i)
    labels = tmp_path / "ffbird.csv"
    labels.write_text("itemid,datasetid,hasbird\n" + "".join(f"{i},ff1010bird,{h}\n" for i, h in items))
    ds = AudioDataset.open(bird_index(labels, wav, tmp_path / "birds.csv"), 16000)
    assert ds.classes == ("bird", "no_bird") and ds.labels == (0, 1, 0, 1)
    cache = save_clip_cache(ds, tmp_path / "birds100.safetensors", first=3)
    back = load_clip_cache(cache)
    assert back.labels == ds.labels[:3] and back.names == ds.names[:3] and back.sample_rate == 16000
    assert all(torch.equal(a, b) for a, b in zip(back.clips, ds.clips[:3]))
    labels.write_text("itemid,datasetid,hasbird\nnope,ff1010bird,1\n")
    with pytest.raises(MediaError, match="line 2.*nope.wav does not exist"):
        bird_index(labels, wav, tmp_path / "x.csv")


def test_data_cli_writes_the_index_and_cache(tmp_path: Path) -> None:
    wav = tmp_path / "wav"
    wav.mkdir()
    for i in range(4):
        _wav(wav / f"item{i}.wav", 300 + 100 * i)
    (tmp_path / "warblr.csv").write_text("itemid,datasetid,hasbird\n"
                                         + "".join(f"item{i},warblrb10k,{i % 2}\n" for i in range(4)))
    proc = subprocess.run([sys.executable, "-m", "mmdream.cli", "data", "birds", str(tmp_path / "warblr.csv"),
                           "--audio", str(wav), "--out", str(tmp_path / "idx.csv"), "--cache",
                           str(tmp_path / "c.safetensors"), "--cache-items", "2"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["dataset"] == str(tmp_path / "idx.csv")
    assert (tmp_path / "idx.csv").read_text().splitlines()[1] == "wav/item0.wav,no_bird"
    assert len(load_clip_cache(tmp_path / "c.safetensors").clips) == 2
