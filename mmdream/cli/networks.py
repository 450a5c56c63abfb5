"""``mmdream layers|classes|classify``: what a network offers (its taps, its classes) and what it sees in an
input."""

from __future__ import annotations

import argparse
import json

from mmdream.backbones import BACKBONES
from mmdream.cli.common import SubParsers, add_backbone_options, backbone_from_args, positive_int

__all__ = ["register", "cmd_layers", "cmd_classes", "cmd_classify"]


def cmd_layers(args: argparse.Namespace) -> int:
    from mmdream.backbones import get_spec, layers_of

    spec = get_spec(args.name)
    for layer in layers_of(args.name, args.variant):
        mark = "  (default dream layer)" if layer.name in spec.default_layers else ""
        print(f"{layer.name}\t{layer.module}{mark}")
    return 0


def cmd_classes(args: argparse.Namespace) -> int:
    from mmdream.backbones import class_names

    for i, name in enumerate(class_names(args.name, args.variant, weights_dir=args.weights)):
        print(f"{i}\t{name}")
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    """Top classes of an image (softmax probabilities) or of a sound (YAMNet: mean sigmoid scores)."""
    import torch

    backbone = backbone_from_args(args)
    backbone.require_classes()
    if backbone.modality == "audio":
        from mmdream.pipelines.audio_classify import classify_audio

        top = classify_audio(args.input, backbone, top=args.top)
        result = [{"index": i, "name": name, "score": round(float(score), 6)} for i, name, score in top]
        print(json.dumps({"audio": args.input, "backbone": args.backbone, "top": result}, indent=1))
        return 0
    from mmdream.media.images import load_for_classification

    if args.backbone.startswith("ckpt:"):  # a trained net sees what it was trained on: padded square on grey
        from mmdream.train.data import prepare_image, read_rgb

        x = prepare_image(read_rgb(args.input), backbone.input_size)[None]
    else:
        x = load_for_classification(args.input, backbone.input_size)
    with torch.no_grad():
        probs = torch.softmax(backbone.logits(x), dim=-1)[0]
    best = probs.topk(min(args.top, probs.numel()))
    result = [{"index": int(i), "name": backbone.classes[int(i)], "prob": round(float(p), 6)}  # type: ignore[index]
              for p, i in zip(best.values, best.indices)]
    print(json.dumps({"image": args.input, "backbone": args.backbone, "top": result}, indent=1))
    return 0


def register(sub: SubParsers) -> None:
    """Add ``layers``, ``classes`` and ``classify`` to ``mmdream``'s sub-commands."""
    p = sub.add_parser("layers", help="list the taps of a backbone")
    p.add_argument("name", metavar="NAME", help=", ".join(BACKBONES) + ", or ckpt:PATH")
    p.add_argument("--variant", default=None, help="weights variant")
    p.set_defaults(func=cmd_layers)

    p = sub.add_parser("classes", help="list the classes of a classifier backbone (ImageNet, AudioSet)")
    p.add_argument("name", metavar="NAME", help=", ".join(BACKBONES) + ", or ckpt:PATH")
    p.add_argument("--variant", default=None, help="weights variant")
    p.add_argument("--weights", default=None, metavar="DIR", help="weights folder (yamnet's class map lives there)")
    p.set_defaults(func=cmd_classes)

    p = sub.add_parser("classify", help="top classes of an image or a sound as JSON",
                       description="Top classes of an image (image backbones: softmax probabilities) or of a sound "
                                   "file (-b yamnet: AudioSet scores, mean of sigmoids over 0.96 s patches).")
    p.add_argument("input", help="input image, or sound (any audio/video file) with -b yamnet")
    add_backbone_options(p, default=None)
    p.add_argument("--top", type=positive_int, default=5, help="how many classes (default: 5)")
    p.set_defaults(func=cmd_classify)
