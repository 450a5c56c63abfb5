"""Checkpoints of trained networks: weights in ``NAME.safetensors``, everything else in the sidecar ``NAME.json``.

The sidecar names the architecture (:mod:`mmdream.backbones.trained`) and its config, the class names, the
preprocessing, the training config and the metrics, so a checkpoint loads as a backbone by its path alone:
``load_backbone("ckpt:runs/animals.safetensors")`` (``--backbone ckpt:PATH`` on the command line, ``backbone:
{name: ckpt:PATH}`` in a job spec). No pickle anywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mmdream.errors import MediaError, WeightsError

FORMAT = "mmdream-checkpoint"
VERSION = 1
PREFIX = "ckpt:"


def centred(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> (x - 0.5) / 0.25: the own image CNNs' input."""
    return (x - 0.5) / 0.25


def preprocessors() -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Preprocessing by the name a sidecar records."""
    from mmdream.backbones import caffe_bgr, efficientnet_norm, imagenet_norm, waveform_as_is

    return {"caffe_bgr": caffe_bgr, "efficientnet": efficientnet_norm, "imagenet": imagenet_norm,
            "centred": centred, "waveform": waveform_as_is}


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
    from mmdream.backbones.trained import ARCHITECTURES

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
    if meta.get("preprocess") not in preprocessors():
        raise WeightsError(f"{side}: unknown preprocessing {meta.get('preprocess')!r}")
    classes = meta.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
        raise WeightsError(f"{side}: 'classes' must list at least two class names")
    return meta


def checkpoint_spec(path: str | os.PathLike[str]):  # type: ignore[no-untyped-def]
    """A :class:`mmdream.backbones.BackboneSpec` for checkpoint ``path`` (one variant, ``trained``)."""
    from mmdream.backbones import BackboneSpec, Variant
    from mmdream.backbones import trained
    from mmdream.backbones.weights import WeightFile

    p = Path(path)
    meta = read_meta(p)
    arch, classes = meta["architecture"], tuple(meta["classes"])
    audio = meta["modality"] == "audio"
    return BackboneSpec(
        build=lambda _c: trained.build(arch, len(classes), meta["config"]),
        layers=lambda _c: trained.layers(arch),
        default_layers=trained.ARCHITECTURES[arch][0],
        input_size=int(meta["input_size"]),
        variants={"trained": Variant(WeightFile((p.name,)), preprocessors()[meta["preprocess"]])},
        classes=lambda _weights_dir: classes,
        modality=meta["modality"],
        sample_rate=int(meta["sample_rate"]) if audio else None,
        file=p,
    )
