"""``mmdream gan ...``: train a DCGAN, sample it, dream through it, walk its latent space to music.

:func:`register` adds the ``gan`` command to the main parser (:func:`mmdream.cli.build_parser`). A CKPT is a
shared generator (``dcgan_faces64``, ``dcgan_eyes128``) or a ``.safetensors`` checkpoint of ``gan train``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from contextlib import ExitStack

from mmdream.cli.common import (SubParsers, add_backbone_options, add_dataclass_options, add_progress_option,
                                backbone_from_args, params_from_args, positive_int, progress, report_done,
                                weighted_channels)
from mmdream.cli.provenance import add_like_option, record_text
from mmdream.dream.gan import GanDreamParams
from mmdream.errors import ParameterError
from mmdream.options import SEED_LIMIT
from mmdream.schedules.walk import WalkParams
from mmdream.pipelines.walk import WalkFilmParams
from mmdream.train.gan import GANParams

CKPT_HELP = ("generator: dcgan_faces64 or dcgan_eyes128 (shared weights, found like backbone weights), or the "
             ".safetensors checkpoint `mmdream gan train` wrote")


def _through_local_files(command: Callable[[argparse.Namespace], int], *inputs: str
                         ) -> Callable[[argparse.Namespace], int]:
    """``command`` with ``s3://`` URIs among ``args.output`` and the ``inputs`` options: inputs downloaded to
    temporary files, the output written to one and uploaded only when the command succeeds. ``args.shown``
    keeps the output as the user named it, for messages."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        from mmdream.media.storage import is_s3, local_input, local_output

        args.shown = args.output
        named = [getattr(args, name) for name in inputs]
        if args.output in named:
            raise ParameterError(f"output {args.output} is an input; choose another output (inputs are never "
                                 "overwritten)")
        with ExitStack() as stack:
            for name, uri in zip(inputs, named):
                if uri is not None and is_s3(uri):
                    setattr(args, name, str(stack.enter_context(local_input(uri))))
            if is_s3(args.output):
                args.output = str(stack.enter_context(local_output(args.output)))
            return command(args)

    return run


def _generator(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from mmdream.backbones.generators import load_generator

    return load_generator(args.ckpt, weights_dir=args.weights)


def _check_seed(seed: int) -> None:
    if not 0 <= seed < SEED_LIMIT:
        raise ParameterError(f"--seed {seed} is invalid: give a non-negative integer")


def _gen_class(generator, query: str | None) -> int | None:  # type: ignore[no-untyped-def]
    """The generator class the options fix, or None; a class for an unconditional generator is an error."""
    return None if query is None else generator.resolve_class(query)


def cmd_gan_train(args: argparse.Namespace) -> int:
    """Train a DCGAN on an image folder; resumable."""
    from pathlib import Path

    from mmdream.media.files import check_output
    from mmdream.train.gan import load_gan_images, output_paths, resume_state, train_gan

    params = params_from_args(GANParams, args)
    out = Path(args.out)
    if out.suffix != ".safetensors":
        raise ParameterError(f"--out {out} must end in .safetensors (sidecar, resume state, grids and curves go "
                             "beside it)")
    check_output(out, args.dataset)
    if args.resume:
        resume_state(out)  # before the dataset is read
    data = load_gan_images(args.dataset, params.size, params.conditional)
    print(f"{args.dataset}: {len(data)} images" + (f", classes {', '.join(data.classes)}" if data.classes else ""),
          file=sys.stderr)

    def on_epoch(record: dict) -> None:  # type: ignore[type-arg]
        if args.progress == "json":
            print(json.dumps({"event": "epoch", **record}), file=sys.stderr, flush=True)

    with progress(args.progress, "training", unit="step") as on_step:
        meta = train_gan(data, params, out, resume=args.resume, progress=on_step, on_epoch=on_epoch)
    paths = {k: str(v) for k, v in output_paths(out).items()}
    print(json.dumps({**paths, "epoch": meta["epoch"], "last": meta["history"][-1] if meta["history"] else None},
                     indent=1))
    return 0


def cmd_gan_sample(args: argparse.Namespace) -> int:
    """A grid of seeded samples."""
    import torch

    from mmdream.backbones.generators import sample_latents
    from mmdream.ops.grid import image_grid
    from mmdream.media.files import check_output
    from mmdream.media.images import check_image_suffix, save_image
    from mmdream.ops.pyramid import resize

    check_image_suffix(args.output)
    out = check_output(args.output)
    _check_seed(args.seed)
    if not 0 <= args.size <= 4096:
        raise ParameterError(f"--size {args.size} is invalid: give 0 (the generator's) or up to 4096 pixels")
    if not 0.0 <= args.truncation <= 10.0:
        raise ParameterError(f"--truncation {args.truncation} is invalid: give 0 (off) or a bound up to 10")
    g = _generator(args)
    z, y = sample_latents(g, args.count, args.seed, _gen_class(g, args.gen_class), args.truncation)
    with torch.no_grad():
        images = torch.cat([g.generate(z[i:i + 32], None if y is None else y[i:i + 32])
                            for i in range(0, args.count, 32)])
    if args.size and args.size != g.size:
        images = resize(images, (args.size, args.size)).clamp(0, 1)
    save_image(image_grid(images, args.columns) if args.count > 1 else images, out,
               provenance=record_text(args, networks=[("generator", g)], seed=args.seed))
    return 0


def cmd_gan_dream(args: argparse.Namespace) -> int:
    """Dream through a generator: optimise its latent so that a backbone's objective rises."""
    from mmdream.dream.gan import dream_latent, dream_photo, range_check
    from mmdream.media.files import check_output
    from mmdream.media.images import check_image_suffix, load_image, save_image
    from mmdream.objectives.terms import build_objective
    from mmdream.ops.pyramid import resize

    params = params_from_args(GanDreamParams, args)
    check_image_suffix(args.output)
    out = check_output(args.output, *([args.photo] if args.photo else []))
    photo = load_image(args.photo) if args.photo else None
    g = _generator(args)
    fixed = _gen_class(g, args.gen_class)
    backbone = backbone_from_args(args, "image")
    objective = build_objective(backbone, layers=args.layer, channels=args.channel, class_=args.class_)
    with progress(args.progress, "dream") as on_step:
        if photo is None:
            result = dream_latent(g, backbone, objective, params, class_index=fixed, progress=on_step)
            image = resize(result.image, (args.size, args.size)).clamp(0, 1) if args.size != g.size else result.image
        else:
            result, image = dream_photo(g, backbone, objective, photo, params, size=args.size, class_index=fixed,
                                        progress=on_step)
    save_image(image, out, provenance=record_text(args, params=[params],
                                                  networks=[("generator", g), ("backbone", backbone)]))
    record = {"output": args.shown, "objective": round(max(result.values), 5), "restarts": result.values}
    if args.check:
        record["range_check"] = range_check(g, result.image, params, class_index=fixed).record()
    print(json.dumps(record, indent=1))
    report_done(args, output=args.shown)
    return 0


def cmd_gan_walk(args: argparse.Namespace) -> int:
    """A latent walk following the music, rendered as a film with that music."""
    from mmdream.media.audio import load_audio
    from mmdream.media.files import check_output
    from mmdream.media.video import check_video_suffix
    from mmdream.schedules.walk import latent_walk
    from mmdream.pipelines.walk import render_walk

    params = params_from_args(WalkParams, args)
    film = params_from_args(WalkFilmParams, args)
    check_video_suffix(args.output)
    out = check_output(args.output, args.audio)
    samples, rate = load_audio(args.audio, mono=True)
    g = _generator(args)
    walk = latent_walk(samples[0].numpy(), rate, film.fps, params, film.seed, latent_dim=g.latent_dim,
                       num_classes=g.num_classes, class_index=_gen_class(g, args.gen_class))
    print(f"walking {len(walk.latents)} frames at {film.fps:g} fps, {film.size}² -> {args.shown}", file=sys.stderr)
    with progress(args.progress, "frames", unit="frame") as on_step:
        render_walk(g, walk, out, args.audio, film, progress=on_step,
                    provenance=record_text(args, params=[params], networks=[("generator", g)], seed=args.seed))
    report_done(args, output=args.shown, frames=len(walk.latents))
    return 0


def register(sub: SubParsers) -> None:
    """Add ``gan`` with its sub-commands ``train``, ``sample``, ``dream`` and ``walk`` to ``sub``."""
    p = sub.add_parser("gan", help="GAN dreams: mmdream gan train|sample|dream|walk ...",
                       description="Train a DCGAN on an image folder, sample it, dream through it (its latent is "
                                   "optimised so that a backbone's class, layer or channel rises: the generator "
                                   "keeps the dream natural), or walk its latent space in time with music. "
                                   + CKPT_HELP)
    cmds = p.add_subparsers(dest="gan_command", required=True, metavar="COMMAND")

    def with_generator(k: argparse.ArgumentParser) -> None:
        k.add_argument("ckpt", metavar="CKPT", help=CKPT_HELP)

    def common(k: argparse.ArgumentParser, weights: bool = True) -> None:
        if weights:
            k.add_argument("--weights", default=None, metavar="DIR",
                           help="folder holding weight files (default: $MMDREAM_WEIGHTS, then the user cache)")
        k.add_argument("--gen-class", default=None, metavar="CLASS",
                       help="class-conditional generators: generate this class (index or name, e.g. blue for "
                            "dcgan_eyes128; default: sample: the classes in turn, walk: seeded key classes "
                            "blended along the path, dream: the class mix is optimised)")

    k = cmds.add_parser("train", help="train a DCGAN: mmdream gan train DATASET --out CKPT.safetensors",
                        description="Train a DCGAN (spectral-norm discriminator, hinge loss, Adam) on a folder of "
                                    "images (any sub-folders), or with --conditional on a folder per class. Images "
                                    "are centre-cropped to a square and resized. After every epoch it writes "
                                    "CKPT.safetensors + CKPT.json (the generator), CKPT.resume.safetensors (what "
                                    "--resume continues from), CKPT.samples-eNNN.png (fixed-noise grid), "
                                    "CKPT.curves.png and CKPT.history.jsonl.")
    k.add_argument("dataset", help="folder of images (--conditional: a sub-folder of images per class)")
    k.add_argument("--out", required=True, metavar="CKPT", help="checkpoint to write (.safetensors)")
    k.add_argument("--resume", action="store_true", help="continue the run CKPT.resume.safetensors holds, up to "
                                                         "--epochs (same options and dataset)")
    add_progress_option(k)
    add_dataclass_options(k.add_argument_group("training options"), GANParams)
    k.set_defaults(func=cmd_gan_train)

    k = cmds.add_parser("sample", help="a grid of samples: mmdream gan sample CKPT OUT.png --count 16",
                        description="Draw seeded latents z ~ N(0, 1) and write the generated images as a grid "
                                    "(--count 1: one image). Same seed, same output.")
    with_generator(k)
    k.add_argument("output", help="output image (.png, .jpg, .webp, .tif; a path or s3:// URI)")
    k.add_argument("--count", type=positive_int, default=16, help="number of samples (default: 16)")
    k.add_argument("--columns", type=positive_int, default=None, help="grid columns (default: a square grid)")
    k.add_argument("--size", type=int, default=0, help="resize each sample to this side in pixels (default: the "
                                                        "generator's)")
    k.add_argument("--truncation", type=float, default=0.0,
                   help="redraw latent values beyond this bound (truncation trick; 0: off)")
    k.add_argument("--seed", type=int, default=0, help="random seed: same seed, same samples (default: 0)")
    add_like_option(k)
    common(k)
    k.set_defaults(func=_through_local_files(cmd_gan_sample))

    k = cmds.add_parser("dream", help="dream through a generator: mmdream gan dream CKPT OUT.png -b NAME --class C",
                        description="Optimise the generator's latent (and its class mix, when conditional and no "
                                    "--gen-class is given) so that the backbone's objective of G(z) rises, under "
                                    "random jitter and scaling, with a prior that keeps |z| near its typical "
                                    "sqrt(dim); several restarts, the best kept. --photo: project the photo into "
                                    "the latent first, dream from there, and add back the photo's detail the "
                                    "generator cannot draw (--blend).")
    with_generator(k)
    k.add_argument("output", help="output image (.png, .jpg, .webp, .tif; a path or s3:// URI)")
    add_backbone_options(k, default="efficientnet_lite0")
    k.add_argument("--class", dest="class_", default=None, metavar="CLASS",
                   help="dream toward a class of the backbone, by index or (part of) its name")
    k.add_argument("--layer", "-l", default=None, metavar="LAYERS",
                   help="layers to amplify instead (default: the backbone's dream layers)")
    k.add_argument("--channel", type=weighted_channels, default=None, metavar="CHANNELS",
                   help="channels of the (single) --layer, comma list with optional gains: 12,40:2,7:-1")
    k.add_argument("--photo", default=None, metavar="IMAGE", help="dream this photo through the generator")
    k.add_argument("--size", type=positive_int, default=256, help="output side in pixels (default: 256)")
    k.add_argument("--check", action="store_true", help="also report the reconstruction check (is the dream in "
                                                        "the generator's range?)")
    add_progress_option(k)
    add_like_option(k)
    add_dataclass_options(k.add_argument_group("GAN dream options"), GanDreamParams)
    common(k, weights=False)
    k.set_defaults(func=_through_local_files(cmd_gan_dream, "photo"))

    k = cmds.add_parser("walk", help="walk the latent space to music: mmdream gan walk CKPT OUT.mp4 --audio AUDIO",
                        description="A smooth walk through the generator's latent space (slerp between seeded key "
                                    "latents) whose speed follows the music's onset strength (or loudness) and whose "
                                    "drift direction follows its chroma, rendered as a film at --fps with the music "
                                    "muxed in. Same seed and audio, same latents: frames can be rendered in shards.")
    with_generator(k)
    k.add_argument("output", help="output film (.mp4, .mkv, .mov; a path or s3:// URI)")
    k.add_argument("--audio", required=True, help="the music (any audio or video file with sound)")
    add_dataclass_options(k.add_argument_group("walk film options"), WalkFilmParams)
    add_progress_option(k)
    add_like_option(k)
    add_dataclass_options(k.add_argument_group("walk options"), WalkParams)
    common(k)
    k.set_defaults(func=_through_local_files(cmd_gan_walk, "audio"))
