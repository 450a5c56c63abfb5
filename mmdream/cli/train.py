"""``mmdream train image|audio`` and ``mmdream data SOURCE``: train a classifier on a dataset (the checkpoint
loads as ``--backbone ckpt:CKPT``), assemble such a dataset from a local copy of a public one."""

from __future__ import annotations

import argparse
import json
import sys

from mmdream.cli.common import (SubParsers, add_dataclass_options, add_progress_option, params_from_args,
                                positive_int, progress)
from mmdream.errors import ParameterError
from mmdream.train.data import AudioAugment, ImageAugment
from mmdream.train.finetune import AUDIO_BASES, IMAGE_BASES, TrainParams

__all__ = ["register", "cmd_train", "cmd_data"]


def cmd_train(args: argparse.Namespace) -> int:
    """Train a classifier on a dataset and write a checkpoint that loads as ``--backbone ckpt:OUT``."""
    import tempfile
    from pathlib import Path

    from mmdream.media.files import check_output
    from mmdream.media.storage import is_s3, upload
    from mmdream.train import finetune as ft
    from mmdream.train.curves import save_learning_curves
    from mmdream.train.data import AudioDataset, ImageDataset

    params = params_from_args(TrainParams, args)
    audio = args.kind == "audio"
    augment = params_from_args(AudioAugment if audio else ImageAugment, args)
    bases = AUDIO_BASES if audio else IMAGE_BASES
    ft.check_training(args.base, params, args.kind)
    if not args.out.endswith(".safetensors"):
        raise ParameterError(f"--out {args.out} must end in .safetensors (a sidecar .json and a .curves.png go beside "
                             "it)")
    remote = is_s3(args.out)
    if not remote:
        check_output(Path(args.out), args.dataset)
    if args.folds == 1:
        raise ParameterError("--folds 1 is invalid: give 0 (no cross-validation) or at least 2")
    # The whole dataset is read and checked before any training starts.
    dataset = (AudioDataset.open(args.dataset, bases[args.base].input_size) if audio
               else ImageDataset.from_folder(args.dataset))
    print(f"{args.dataset}: {len(dataset.labels)} items, {len(dataset.classes)} classes "
          f"({', '.join(dataset.classes)})", file=sys.stderr)

    def on_epoch(record: dict) -> None:  # type: ignore[type-arg]
        if args.progress == "json":
            print(json.dumps({"event": "epoch", **record}), file=sys.stderr, flush=True)

    extra: dict = {"dataset": str(args.dataset)}  # type: ignore[type-arg]
    if args.folds:
        with progress(args.progress, "cross-validation") as on_step:
            cv = (ft.cross_validate_audio(dataset, args.base, params, augment, folds=args.folds, progress=on_step)
                  if audio else ft.cross_validate_image(dataset, args.base, params, augment, folds=args.folds,
                                                        weights_dir=args.weights, progress=on_step))
        extra["cross_validation"] = cv.record()
        print(json.dumps({"event": "cross_validation", **cv.record()}), file=sys.stderr)
    with progress(args.progress, "training", unit="epoch") as on_step:
        result = (ft.train_audio(dataset, args.base, params, augment, progress=on_step, on_epoch=on_epoch) if audio
                  else ft.train_image(dataset, args.base, params, augment, weights_dir=args.weights,
                                      progress=on_step, on_epoch=on_epoch))
    with tempfile.TemporaryDirectory(prefix="mmdream-train-") as scratch:
        out = Path(scratch) / Path(args.out).name if remote else Path(args.out)
        ft.save_trained(result, str(out), extra)
        curves = save_learning_curves(out.with_suffix(".curves.png"), result.history,
                                      f"{args.base} on {args.dataset}")
        stem = args.out[:-len(".safetensors")]
        if remote:  # weights first: the sidecar's arrival completes the checkpoint
            for local, suffix in ((out, ".safetensors"), (curves, ".curves.png"), (out.with_suffix(".json"), ".json")):
                upload(local, stem + suffix)
    print(json.dumps({"checkpoint": args.out, "backbone": f"ckpt:{args.out}", "curves": stem + ".curves.png",
                      "metrics": result.meta["metrics"], **({"cross_validation": extra["cross_validation"]}
                                                            if args.folds else {})}, indent=1))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """Assemble a training dataset from a local copy of ImageNet, FSDKaggle2018 or the bird audio detection data."""
    from mmdream.train import builders

    names = [n.strip() for n in getattr(args, "classes", "").split(",") if n.strip()]
    if args.source in ("imagenet-subset", "fsd") and not names:
        raise ParameterError(f"data {args.source} needs --classes NAME,NAME,... (at least one)")
    if args.source == "imagenet-subset":
        out = builders.imagenet_subset(args.input, args.synsets, names, args.out, per_class=args.per_class,
                                       copy=args.copy)
    elif args.source == "fsd":
        out = builders.fsd_index(args.input, args.audio, names, args.out, per_class=args.per_class,
                                 verified_only=args.verified_only)
    else:
        out = builders.bird_index(args.input, args.audio, args.out, limit=args.per_class)
        if args.cache:
            from mmdream.train.data import AudioDataset

            builders.save_clip_cache(AudioDataset.open(out, 16000), args.cache, args.cache_items)
    print(json.dumps({"dataset": str(out), "cache": getattr(args, "cache", None)}))
    return 0


def register(sub: SubParsers) -> None:
    """Add ``train`` (kinds ``image``, ``audio``) and ``data`` (sources) to ``mmdream``'s sub-commands."""
    p = sub.add_parser("train", help="train a classifier on a dataset: mmdream train image|audio DATASET --out CKPT",
                       description="Fine-tune an ImageNet backbone's top, or train an own CNN from scratch, on a "
                                   "folder per class (sounds: or a CSV index path,label). Writes CKPT.safetensors, "
                                   "its sidecar CKPT.json and learning curves CKPT.curves.png; use the result "
                                   "with --backbone ckpt:CKPT.safetensors.")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, bases, default, augment in (("image", IMAGE_BASES, "efficientnet_lite0", ImageAugment),
                                          ("audio", AUDIO_BASES, "mel-small", AudioAugment)):
        k = kinds.add_parser(kind, help=f"train on {kind}s: mmdream train {kind} DATASET --out CKPT.safetensors")
        k.add_argument("dataset", help="folder with a sub-folder per class" + (" or a CSV index path,label"
                                                                                 if kind == "audio" else ""))
        k.add_argument("--base", default=default, choices=list(bases),
                       help=f"network to start from (default: {default})")
        k.add_argument("--out", required=True, metavar="CKPT", help="checkpoint to write (.safetensors)")
        k.add_argument("--folds", type=int, default=0, metavar="K",
                       help="first estimate held-out accuracy by stratified K-fold cross-validation (0: skip)")
        k.add_argument("--weights", default=None, metavar="DIR",
                       help="folder holding the base's weights (default: $MMDREAM_WEIGHTS, then the user cache)")
        add_progress_option(k)
        add_dataclass_options(k.add_argument_group("training options"), TrainParams)
        add_dataclass_options(k.add_argument_group("augmentation"), augment)
        k.set_defaults(func=cmd_train)

    p = sub.add_parser("data", help="assemble a training dataset from a local copy of ImageNet, FSDKaggle2018 or the "
                                    "bird audio detection data (no downloads)")
    sources = p.add_subparsers(dest="source", required=True, metavar="SOURCE")
    k = sources.add_parser("imagenet-subset", help="a folder per chosen ImageNet category (symbolic links)")
    k.add_argument("input", help="ImageNet train folder (a sub-folder per wnid)")
    k.add_argument("--synsets", required=True, help="ImageNet's LOC_synset_mapping.txt (wnid name, synonyms)")
    k.add_argument("--classes", required=True, help="category names or wnids, comma list")
    k.add_argument("--copy", action="store_true", help="copy the images instead of linking them")
    k = sources.add_parser("fsd", help="a CSV index of the FSDKaggle2018 clips of chosen labels")
    k.add_argument("input", help="FSDKaggle2018 train.csv (fname,label,manually_verified,...)")
    k.add_argument("--audio", required=True, help="its audio folder (FSDKaggle2018.audio_train)")
    k.add_argument("--classes", required=True, help="labels, comma list (e.g. Bark,Cello,Flute)")
    k.add_argument("--verified-only", action="store_true", help="only manually verified clips")
    k = sources.add_parser("birds", help="a CSV index of the bird audio detection data (bird / no_bird)")
    k.add_argument("input", help="labels CSV (itemid,datasetid,hasbird)")
    k.add_argument("--audio", required=True, help="folder of <itemid>.wav")
    k.add_argument("--cache", default=None, metavar="FILE", help="also store clips in this .safetensors quick-load "
                                                                 "cache (16 kHz mono, JSON sidecar beside it)")
    k.add_argument("--cache-items", type=positive_int, default=100, metavar="N",
                   help="clips in the cache: the first N (default: 100)")
    for k in sources.choices.values():
        k.add_argument("--out", required=True, help="output folder (imagenet-subset) or CSV index (fsd, birds)")
        k.add_argument("--per-class", type=positive_int, default=None, metavar="N",
                       help="at most N items per class (birds: the first N rows)")
        k.set_defaults(func=cmd_data)
