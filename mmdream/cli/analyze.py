"""``mmdream analyze``: a static HTML report of what a layer's channels respond to (:mod:`mmdream.analysis`)."""

from __future__ import annotations

import argparse
import json
import sys

from mmdream.analysis.report import DEFAULT_CHANNELS, ReportParams
from mmdream.analysis.visualize import VisParams
from mmdream.backbones import BACKBONES
from mmdream.cli.common import (SubParsers, add_dataclass_options, add_progress_option, backbone_from_args,
                                params_from_args, progress)
from mmdream.errors import ParameterError

DESCRIPTION = """Feature visualisation of a layer's channels, written as a static HTML report that a browser opens
offline (OUT_DIR/index.html, pictures beside it). Each channel gets the picture (audio backbones: the sound, shown as
a spectrogram and playable) that most raises its mean activation, optimised from noise with a Fourier
parametrisation, decorrelated colours and random pad/jitter/scale/rotation; all of them form an atlas. With
--dataset, each channel also shows the patches (snippets) of that folder's images (sounds) that excite it most.
Without --channels, the first 8 channels are shown (about 3 minutes for VGG16 relu4_3 on one CPU core). Rerunning
the same command in the same OUT_DIR resumes an interrupted report."""


def channel_selection(text: str) -> list[int] | str:
    """Channels to show: ``"all"``, or a comma list of channels and ranges, ``0,5,9-12`` -> ``[0, 5, 9, 10, 11,
    12]``."""
    if text.strip() == "all":
        return "all"
    out: list[int] = []
    try:
        for item in (t.strip() for t in text.split(",") if t.strip()):
            a, dash, b = item.partition("-")
            out += list(range(int(a), int(b) + 1)) if dash else [int(a)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not 'all' or a comma list of channels (0,5,9-12)") from None
    if not out:
        raise argparse.ArgumentTypeError("give at least one channel")
    return out


def register(sub: SubParsers) -> None:
    """Add the ``analyze`` command to ``mmdream``'s sub-commands."""
    p = sub.add_parser("analyze", help="feature visualisation of a layer's channels as an offline HTML report: "
                                       "mmdream analyze BACKBONE --layer L OUT_DIR",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("backbone", metavar="BACKBONE", help=f"network: {', '.join(BACKBONES)}, or ckpt:PATH")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder for index.html and its files (new, empty, or an "
                                                      "interrupted report of the same command)")
    p.add_argument("--layer", "-l", required=True, help="the layer whose channels to show (see `mmdream layers "
                                                        "NAME`)")
    choose = p.add_mutually_exclusive_group()
    choose.add_argument("--channels", type=channel_selection, default=None, metavar="LIST|all",
                        help=f"channels to show: 0,5,9-12 or all (default: the first {DEFAULT_CHANNELS})")
    choose.add_argument("--top-k", type=int, default=None, metavar="K",
                        help=f"with --class: the K channels that contribute most to the class (default with "
                             f"--class: {DEFAULT_CHANNELS})")
    p.add_argument("--class", dest="class_", default=None, metavar="CLASS",
                   help="choose the channels that contribute most to this class (index or part of its name), by "
                        "activation x gradient on the --dataset items or, without one, on a class visualisation")
    p.add_argument("--dataset", default=None, metavar="DIR",
                   help="folder of images (sounds for audio backbones), searched recursively: each channel's "
                        "strongest examples; images also give the colour correlation of the visualisations")
    p.add_argument("--variant", default=None, help="weights variant (see `mmdream layers NAME`)")
    p.add_argument("--weights", default=None, metavar="DIR",
                   help="folder holding weight files (default: $MMDREAM_WEIGHTS, then the user cache)")
    p.add_argument("--weights-file", default=None, metavar="FILE", help="load this weights file instead")
    add_progress_option(p)
    add_dataclass_options(p.add_argument_group("visualisation options"), VisParams)
    add_dataclass_options(p.add_argument_group("report options"), ReportParams)
    p.set_defaults(func=cmd_analyze)


def _class_inputs(backbone, class_: str, files, params):  # type: ignore[no-untyped-def]
    """Inputs on which to rank channels for a class: up to 16 dataset items, else a short class visualisation."""
    import dataclasses

    from mmdream.analysis.examples import load_item
    from mmdream.objectives.visualization import class_objective
    from mmdream.analysis.visualize import optimise_images, optimise_sound

    if files:
        return [load_item(backbone, f) for f in files[:16]]
    short = dataclasses.replace(params, steps=max(8, params.steps // 4), sound_steps=max(4, params.sound_steps // 4))
    objective = class_objective(backbone, class_)
    if backbone.modality == "audio":
        return [optimise_sound(backbone, objective, short)[None]]
    return list(optimise_images(backbone, objective, short, batch=2).split(1))


def cmd_analyze(args: argparse.Namespace) -> int:
    """Write the HTML report of a layer's channels."""
    from pathlib import Path

    from mmdream.analysis.atlas import class_channels
    from mmdream.analysis.examples import dataset_files
    from mmdream.analysis.report import build_report
    from mmdream.backbones import get_spec, layers_of
    from mmdream.errors import MediaError
    from mmdream.objectives.terms import channel_count

    params = params_from_args(VisParams, args)
    report = params_from_args(ReportParams, args)
    if args.top_k is not None and args.class_ is None:
        raise ParameterError("--top-k needs --class: the K channels that contribute most to that class")
    if args.top_k is not None and args.top_k < 1:
        raise ParameterError(f"--top-k {args.top_k} is invalid: give a positive number of channels")
    out = Path(args.out_dir)
    if not out.parent.is_dir():
        raise MediaError(f"folder {out.parent} does not exist; create it first or choose another OUT_DIR")
    # Cheap checks first: the backbone's name and layer, the dataset, before any weights load.
    spec = get_spec(args.backbone)
    names = [layer.name for layer in layers_of(args.backbone, args.variant)]
    if args.layer not in names:
        raise ParameterError(f"unknown layer '{args.layer}' for {args.backbone}; available: {', '.join(names)}")
    files = dataset_files(args.dataset, spec.modality) if args.dataset is not None else []
    backbone = backbone_from_args(args)
    count = channel_count(backbone, args.layer)
    if args.class_ is not None:
        k = args.top_k or min(DEFAULT_CHANNELS, count)
        channels = class_channels(backbone, args.layer, args.class_, k,
                                  _class_inputs(backbone, args.class_, files, params))
        name = backbone.require_classes()[backbone.resolve_class(args.class_)]
        note = f"The {k} channels that contribute most to class {name!r}."
    elif args.channels == "all":
        channels, note = list(range(count)), f"All {count} channels."
    elif args.channels is not None:
        channels, note = list(dict.fromkeys(args.channels)), "Channels chosen by hand."
    else:
        channels = list(range(min(DEFAULT_CHANNELS, count)))
        note = f"The first {len(channels)} of {count} channels (--channels all for every one)."
    with progress(args.progress, "analyze") as on_step:
        index = build_report(out, backbone, args.layer, channels, params, report, dataset=args.dataset, note=note,
                             progress=on_step)
    if args.progress == "json":
        print(json.dumps({"event": "done", "output": str(index), "channels": channels}), file=sys.stderr)
    else:
        print(str(index))
    return 0
