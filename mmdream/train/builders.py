"""Assembling training datasets from local copies of public datasets (nothing is downloaded).

- :func:`imagenet_subset`: a category subset of an ImageNet train folder (``train/<wnid>/*.JPEG``), the categories
  chosen by name through the synset mapping file that ships with ImageNet (``LOC_synset_mapping.txt``: ``wnid
  name, synonym, ...`` per line); writes a folder per class (symbolic links, or copies).
- :func:`fsd_index`: FSDKaggle2018 clips of chosen labels, from its ``train.csv`` (``fname,label,...``) and audio
  folder; writes a CSV index ``path,label`` (:class:`mmdream.train.data.AudioDataset` reads it).
- :func:`bird_index`: the bird audio detection data (``itemid,datasetid,hasbird`` CSV and a folder of
  ``<itemid>.wav``); writes a CSV index with labels ``bird`` / ``no_bird``. :func:`save_clip_cache` stores the first
  N clips of an index as one safetensors file of samples plus a JSON sidecar (the quick-load cache; no pickle),
  :func:`load_clip_cache` reads it back as an :class:`~mmdream.train.data.AudioDataset`.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from mmdream.errors import MediaError, ParameterError
from mmdream.media.files import atomic_path
from mmdream.train.data import AudioDataset

__all__ = ["resolve_synsets", "imagenet_subset", "fsd_index", "bird_index", "save_clip_cache", "load_clip_cache"]

def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise MediaError(f"{path} does not exist")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise MediaError(f"{path} lacks column(s) {', '.join(missing)}; expected at least {', '.join(columns)}")
            return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise MediaError(f"cannot read {path} ({exc})") from exc


def _write_index(path: Path, rows: Sequence[tuple[Path, str]]) -> Path:
    """A CSV index ``path,label`` with paths relative to the index's folder where possible."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            for file, label in rows:
                w.writerow([os.path.relpath(file.resolve(), path.parent.resolve()), label])
    return path


def resolve_synsets(mapping: str | os.PathLike[str], names: Sequence[str]) -> dict[str, str]:
    """``{name: wnid}`` for category names (a synonym, case-insensitive, or a wnid itself) in a synset mapping file;
    unknown or ambiguous names raise a ParameterError listing the candidates."""
    path = Path(mapping)
    if not path.is_file():
        raise MediaError(f"synset mapping {path} does not exist; give ImageNet's LOC_synset_mapping.txt")
    synonyms: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        wnid, _, text = line.strip().partition(" ")
        if wnid:
            synonyms[wnid] = [s.strip().lower() for s in text.split(",") if s.strip()]
    out = {}
    for name in names:
        q = name.strip().lower()
        hits = [w for w, syn in synonyms.items() if q == w or q in syn]
        if not hits:
            raise ParameterError(f"no ImageNet category is called '{name}' in {path}")
        if len(hits) > 1:
            shown = "; ".join(f"{w}: {', '.join(synonyms[w])}" for w in hits)
            raise ParameterError(f"'{name}' is ambiguous in {path}: {shown}; give the wnid instead")
        out[name] = hits[0]
    return out


def imagenet_subset(train_dir: str | os.PathLike[str], mapping: str | os.PathLike[str], names: Sequence[str],
                    out_dir: str | os.PathLike[str], *, per_class: int | None = None, copy: bool = False) -> Path:
    """A folder per category ``out_dir/<name>/`` holding the (first ``per_class``, sorted) images of its wnid's
    train folder, as symbolic links (``copy``: copies). Returns ``out_dir``."""
    train, out = Path(train_dir), Path(out_dir)
    wnids = resolve_synsets(mapping, names)
    if out.exists() and any(out.iterdir()):
        raise MediaError(f"output folder {out} is not empty; choose a new one")
    plan = {}
    for name, wnid in wnids.items():
        files = sorted(p for p in (train / wnid).glob("*") if p.is_file()) if (train / wnid).is_dir() else []
        if not files:
            raise MediaError(f"{train / wnid} (ImageNet '{name}') holds no images; is {train} an ImageNet train "
                             "folder of one sub-folder per wnid?")
        plan[name] = files[:per_class]
    for name, files in plan.items():
        folder = out / name.replace("/", "_")
        folder.mkdir(parents=True)
        for f in files:
            if copy:
                shutil.copy2(f, folder / f.name)
            else:
                (folder / f.name).symlink_to(f.resolve())
    return out


def fsd_index(train_csv: str | os.PathLike[str], audio_dir: str | os.PathLike[str], labels: Sequence[str],
              out_index: str | os.PathLike[str], *, per_class: int | None = None,
              verified_only: bool = False) -> Path:
    """CSV index of the FSDKaggle2018 clips of ``labels`` (first ``per_class`` of each in file order;
    ``verified_only``: rows with ``manually_verified`` 1)."""
    rows = _read_csv(Path(train_csv), ("fname", "label"))
    known = {r["label"] for r in rows}
    unknown = [lab for lab in labels if lab not in known]
    if unknown:
        raise ParameterError(f"label(s) {', '.join(unknown)} not in {train_csv}; known: {', '.join(sorted(known))}")
    chosen: list[tuple[Path, str]] = []
    count: dict[str, int] = {}
    for r in rows:
        lab = r["label"]
        if lab not in labels or (verified_only and r.get("manually_verified") != "1"):
            continue
        if per_class is not None and count.get(lab, 0) >= per_class:
            continue
        file = Path(audio_dir) / r["fname"]
        if not file.is_file():
            raise MediaError(f"{train_csv} names {r['fname']}, which is not in {audio_dir}")
        chosen.append((file, lab))
        count[lab] = count.get(lab, 0) + 1
    return _write_index(Path(out_index), chosen)


def bird_index(labels_csv: str | os.PathLike[str], wav_dir: str | os.PathLike[str],
               out_index: str | os.PathLike[str], *, limit: int | None = None) -> Path:
    """CSV index of bird audio detection items (``itemid,datasetid,hasbird``; audio ``wav_dir/<itemid>.wav``), labels
    ``bird`` / ``no_bird``, the first ``limit`` rows in file order."""
    rows = _read_csv(Path(labels_csv), ("itemid", "hasbird"))[:limit]
    chosen = []
    for line, r in enumerate(rows, start=2):
        if r["hasbird"] not in ("0", "1"):
            raise MediaError(f"{labels_csv}, line {line}: hasbird is {r['hasbird']!r}; expected 0 or 1")
        file = Path(wav_dir) / f"{r['itemid']}.wav"
        if not file.is_file():
            raise MediaError(f"{labels_csv}, line {line}: {file} does not exist")
        chosen.append((file, "bird" if r["hasbird"] == "1" else "no_bird"))
    return _write_index(Path(out_index), chosen)


def save_clip_cache(dataset: AudioDataset, path: str | os.PathLike[str], first: int | None = None) -> Path:
    """The first ``first`` clips of ``dataset`` in one ``.safetensors`` file (``samples`` ``(N, longest)``
    zero-padded, ``lengths`` ``(N,)``, ``labels`` ``(N,)``) with a JSON sidecar (classes, names, rate)."""
    from safetensors.torch import save_file

    p = Path(path)
    if p.suffix != ".safetensors":
        raise ParameterError(f"clip cache {p} must end in .safetensors")
    n = len(dataset.clips) if first is None else min(first, len(dataset.clips))
    clips = dataset.clips[:n]
    longest = max(c.shape[-1] for c in clips)
    samples = torch.stack([torch.nn.functional.pad(c, (0, longest - c.shape[-1])) for c in clips])
    tensors = {"samples": samples.contiguous(), "lengths": torch.tensor([c.shape[-1] for c in clips]),
               "labels": torch.tensor(dataset.labels[:n])}
    with atomic_path(p) as tmp:
        save_file(tensors, str(tmp))
    with atomic_path(p.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"classes": list(dataset.classes), "names": list(dataset.names[:n]),
                                   "sample_rate": dataset.sample_rate}, indent=1))
    return p


def load_clip_cache(path: str | os.PathLike[str]) -> AudioDataset:
    """An :class:`AudioDataset` from :func:`save_clip_cache`'s files."""
    from safetensors.torch import load_file

    p = Path(path)
    side = p.with_suffix(".json")
    if not p.is_file() or not side.is_file():
        raise MediaError(f"clip cache {p} or its sidecar {side} does not exist; make it with save_clip_cache")
    t = load_file(str(p))
    meta = json.loads(side.read_text())
    clips = tuple(t["samples"][i, :int(n)].clone() for i, n in enumerate(t["lengths"]))
    return AudioDataset(clips, tuple(int(v) for v in t["labels"]), tuple(meta["classes"]), tuple(meta["names"]),
                        int(meta["sample_rate"]))
