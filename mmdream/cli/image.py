"""``mmdream image|style|demo``: dream a still, restyle a still, dream the bundled photo."""

from __future__ import annotations

import argparse
import sys

from mmdream.cli.common import (SubParsers, add_backbone_options, add_dataclass_options, add_dream_command,
                                add_progress_option, backbone_from_args, local_io, objective_from_args,
                                params_from_args, progress, report_done)
from mmdream.cli.provenance import add_like_option, record_text
from mmdream.dream.style import StyleParams
from mmdream.errors import ParameterError
from mmdream.progress import say

__all__ = ["register", "cmd_image", "cmd_style", "cmd_demo"]


def cmd_image(args: argparse.Namespace) -> int:
    """Dream one image."""
    from mmdream.dream.image import DreamParams, dream_image
    from mmdream.media.files import check_output
    from mmdream.media.images import check_image_suffix, load_image, save_image

    params = params_from_args(DreamParams, args)
    check_image_suffix(args.output)
    if args.size is not None and not 16 <= args.size <= 16384:
        raise ParameterError(f"--size {args.size} is invalid: give the longer side in pixels, 16 to 16384")
    with local_io(args.input, args.output) as (input_path, output_path):
        output = check_output(output_path, input_path)
        image = load_image(input_path, args.size)
        backbone = backbone_from_args(args, "image")
        objective, _ = objective_from_args(args, backbone, max(image.shape[-2:]))
        with progress(args.progress, "dream") as on_step:
            result = dream_image(image, backbone, objective, params, progress=on_step)
        save_image(result, output, provenance=record_text(args, params=[params], networks=[("backbone", backbone)]))
    report_done(args, output=args.output)
    return 0


def cmd_style(args: argparse.Namespace) -> int:
    """Neural style transfer of a still: content + one or more styles -> output."""
    from contextlib import ExitStack

    from mmdream.dream.style import style_image
    from mmdream.media.files import check_output
    from mmdream.media.images import check_image_suffix, load_image, save_image
    from mmdream.media.storage import local_input

    params = params_from_args(StyleParams, args)
    check_image_suffix(args.output)
    style_uris = [u for u in args.styles.split(",") if u]
    weights = None if args.style_weights is None else [float(w) for w in args.style_weights.split(",")]
    if not style_uris or (weights is not None and len(weights) != len(style_uris)):
        raise ParameterError(f"give one or more styles (comma list) and as many --style-weights; got "
                             f"{len(style_uris)} style(s) and {args.style_weights!r}")
    with local_io(args.content, args.output) as (content_path, output_path), ExitStack() as stack:
        styles = [load_image(stack.enter_context(local_input(u))) for u in style_uris]
        output = check_output(output_path, content_path, *style_uris)
        content = load_image(content_path)
        backbone = backbone_from_args(args, "image")
        with progress(args.progress, "style") as on_step:
            result = style_image(content, styles, backbone, params, style_weights=weights, progress=on_step)
        save_image(result, output, provenance=record_text(args, params=[params], networks=[("backbone", backbone)]))
    report_done(args, output=args.output)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Dream a bundled photo (fetched from scikit-image's wheel) with the defaults."""
    from mmdream.media.samples import sample_path

    source = sample_path("chelsea.png", say=say)
    args.input, args.size = str(source), args.size or 512
    print(f"dreaming {source} -> {args.output}", file=sys.stderr)
    return cmd_image(args)


def register(sub: SubParsers) -> None:
    """Add ``image``, ``style`` and ``demo`` to ``mmdream``'s sub-commands."""
    p = add_dream_command(sub, "image", "dream an image: mmdream image INPUT OUTPUT")
    p.add_argument("input", help="input image (PNG, JPEG, WebP, TIFF)")
    p.add_argument("output", help="output image; its suffix picks the format; never the input")
    p.set_defaults(func=cmd_image)

    p = sub.add_parser("style", help="neural style transfer: mmdream style CONTENT STYLE[,STYLE2...] OUTPUT",
                       description="Restyle a picture (Gatys et al.): the content's features at deep layers, the "
                                   "styles' feature statistics (Gram or W2) at several layers, optimised coarse to "
                                   "fine with iterate averaging; several styles blend, colours can be kept.")
    add_backbone_options(p)
    p.add_argument("content", help="content image")
    p.add_argument("styles", help="style image(s), comma list: starry.jpg,scream.jpg")
    p.add_argument("output", help="output image; its suffix picks the format; never an input")
    p.add_argument("--style-weights", default=None, metavar="W1,W2",
                   help="blend weights of the styles (default: equal)")
    add_progress_option(p)
    add_like_option(p)
    add_dataclass_options(p.add_argument_group("style options"), StyleParams)
    p.set_defaults(func=cmd_style)

    p = add_dream_command(sub, "demo", "dream a bundled photo (chelsea.png from scikit-image) with the defaults")
    p.add_argument("output", nargs="?", default="dream_demo.png", help="output image (default: dream_demo.png)")
    p.set_defaults(func=cmd_demo)
