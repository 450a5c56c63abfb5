"""Checkpoints of trained networks: weights in ``NAME.safetensors``, everything else in the sidecar ``NAME.json``.

The sidecar names the architecture (:mod:`mmdream.backbones.nets.trained`) and its config, the class names, the
preprocessing, the training config and the metrics, so a checkpoint loads as a backbone by its path alone:
``load_backbone("ckpt:runs/animals.safetensors")`` (``--backbone ckpt:PATH`` on the command line, ``backbone:
{name: ckpt:PATH}`` in a job spec). PATH may be ``s3://bucket/key.safetensors``: both files are copied into the
user cache and re-used while their sizes match. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmdream.backbones.preprocess import PREPROCESSORS
from mmdream.errors import MediaError, WeightsError

FORMAT = "mmdream-checkpoint"
VERSION = 1
PREFIX = "ckpt:"


_IMAGENET_STATS = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# preprocessing -> the RGB [0, 1] per-channel (mean, std) of the images its network expects: ImageNet's for
# pretrained bases, centred()'s own for nets trained from scratch (so that dataset normalisation is plain
# standardisation for them)
REFERENCE_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "caffe_bgr": _IMAGENET_STATS, "imagenet": _IMAGENET_STATS, "inception": _IMAGENET_STATS,
    "efficientnet": _IMAGENET_STATS, "centred": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
}


@dataclass(frozen=True)
class DatasetNormalised:
    """Per-dataset normalisation in front of a base's preprocessing: RGB ``(..., 3, H, W)`` in [0, 1] is
    standardised with the dataset's per-channel ``mean`` / ``std``, moved onto the statistics the base expects
    (:data:`REFERENCE_STATS`), then preprocessed as the base does. Picklable (Ray actors load it)."""

    base: str
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        ref_mean, ref_std = REFERENCE_STATS[self.base]

        def vec(v: tuple[float, ...]) -> torch.Tensor:
            return torch.tensor(v, dtype=x.dtype, device=x.device).view(-1, 1, 1)

        return PREPROCESSORS[self.base]((x - vec(self.mean)) / vec(self.std) * vec(ref_std) + vec(ref_mean))


def preprocess_of(meta: dict[str, Any]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The preprocessing a sidecar records: the named one, behind the dataset's statistics if it has them."""
    stats = meta.get("dataset_stats")
    if stats:
        return DatasetNormalised(meta["preprocess"], tuple(stats["mean"]), tuple(stats["std"]))
    return PREPROCESSORS[meta["preprocess"]]


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """``runs/x.safetensors`` -> ``runs/x.json``."""
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | os.PathLike[str], module: nn.Module, meta: dict[str, Any]) -> Path:
    """Write ``module``'s state dict to ``path`` (.safetensors) and ``meta`` to the sidecar, each atomically.

    ``meta`` must hold ``architecture``, ``config``, ``classes``, ``preprocess``, ``modality``, ``input_size`` and
    (audio) ``sample_rate``; the training records (``train``, ``metrics``, ``history``) are kept as given.
    """
    from safetensors.torch import save_file

    from mmdream.media.files import atomic_path

    p = Path(path)
    if p.suffix != ".safetensors":
        raise MediaError(f"checkpoint {p} must end in .safetensors (its sidecar {p.stem}.json is written beside it)")
    required = ("architecture", "config", "classes", "preprocess", "modality", "input_size")
    missing = [k for k in required if k not in meta]
    if missing:
        raise AssertionError(f"checkpoint metadata lacks {missing}")
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    record = {"format": FORMAT, "version": VERSION, **meta}
    text = json.dumps(record, indent=1)
    with atomic_path(p) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT, "architecture": str(meta["architecture"])})
    with atomic_path(sidecar_path(p)) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return p


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The sidecar of checkpoint ``path``, checked; WeightsError naming the file and what to do otherwise."""
    from mmdream.backbones.nets.trained import ARCHITECTURES

    p = Path(path)
    side = sidecar_path(p)
    if not p.is_file():
        raise WeightsError(f"checkpoint {p} does not exist; give the .safetensors file `mmdream train` wrote")
    if not side.is_file():
        raise WeightsError(f"checkpoint {p} has no sidecar {side}; keep the .json `mmdream train` wrote beside it")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"cannot read checkpoint sidecar {side} ({exc}); restore the file `mmdream train` wrote") \
            from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise WeightsError(f"{side} is not an mmdream checkpoint sidecar (format {FORMAT!r})")
    if meta.get("architecture") not in ARCHITECTURES:
        raise WeightsError(f"{side}: unknown architecture {meta.get('architecture')!r}; known: "
                           f"{', '.join(ARCHITECTURES)} (written by a newer mmdream?)")
    if meta.get("preprocess") not in PREPROCESSORS:
        raise WeightsError(f"{side}: unknown preprocessing {meta.get('preprocess')!r}")
    stats = meta.get("dataset_stats")
    if stats is not None and not (meta["preprocess"] in REFERENCE_STATS and _valid_stats(stats)):
        raise WeightsError(f"{side}: 'dataset_stats' must be {{mean: [r, g, b], std: [r, g, b]}} with positive stds "
                           f"over an image preprocessing")
    classes = meta.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
        raise WeightsError(f"{side}: 'classes' must list at least two class names")
    return meta


def local_checkpoint(path: str | os.PathLike[str]) -> Path:
    """A local path of checkpoint ``path``: itself, or for ``s3://.../NAME.safetensors`` a copy of it and its
    sidecar in the user cache (``checkpoints/<digest of the URI>/``), fetched again when a size differs."""
    from mmdream.backbones.weights import cache_dir
    from mmdream.media import storage
    from mmdream.media.files import atomic_path

    if not storage.is_s3(path):
        return Path(path)
    uri = str(path)
    if not uri.endswith(".safetensors"):
        raise WeightsError(f"checkpoint {uri} must end in .safetensors (its sidecar .json lies beside it)")
    folder = cache_dir().parent / "checkpoints" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    local = folder / uri.rsplit("/", 1)[-1]
    for remote, target in ((uri, local), (uri[:-len(".safetensors")] + ".json", sidecar_path(local))):
        remote_size = storage.size(remote)
        if remote_size is None:
            raise WeightsError(f"checkpoint file {remote} does not exist; upload the .safetensors and its .json "
                               "sidecar that `mmdream train` wrote")
        if target.is_file() and target.stat().st_size == remote_size:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            storage.download(remote, tmp)
    return local


def _valid_stats(stats: Any) -> bool:
    lists = isinstance(stats, dict) and all(isinstance(stats.get(k), list) and len(stats[k]) == 3
                                            for k in ("mean", "std"))
    return lists and all(isinstance(v, (int, float)) for v in stats["mean"] + stats["std"]) \
        and all(v > 0 for v in stats["std"])
