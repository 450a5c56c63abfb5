"""``mmdream video``: dream a film with temporal coherence (or style it, ``--style``), keeping its sound;
``--draft``: a quick draft of it."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

from mmdream.cli.common import (SubParsers, add_dataclass_options, add_dream_command, backbone_from_args, local_io,
                                objective_from_args, params_from_args, positive_int, progress, report_done)
from mmdream.cli.draft import add_draft_options, draft_params, render_draft
from mmdream.cli.provenance import record_text
from mmdream.dream.style import StyledFilmParams, StyleParams
from mmdream.dream.temporal import VideoParams
from mmdream.options import help_text
from mmdream.pipelines.film import FilmParams
from mmdream.schedules.drive import AVParams

__all__ = ["register", "cmd_video"]


def _frame_range(text: str) -> tuple[int, int | None]:
    """``START:END`` (either may be left out) -> ``(start, end or None)``."""
    start, _, stop = text.partition(":")
    try:
        return int(start or 0), (int(stop) if stop else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not START:END (frame numbers, END excluded)") from None


def cmd_video(args: argparse.Namespace) -> int:
    """Dream a film with temporal coherence, keeping its sound (``--draft``: a draft of it)."""
    from mmdream.dream.image import DreamParams
    from mmdream.media.files import check_output
    from mmdream.media.images import check_image_suffix
    from mmdream.media.video import check_video_suffix
    from mmdream.pipelines.draft import draft_film
    from mmdream.pipelines.film import is_sequence_output

    still = params_from_args(DreamParams, args)
    params = params_from_args(VideoParams, args)
    av = params_from_args(AVParams, args)
    start, stop = args.frames
    film = params_from_args(FilmParams, args, start=start, stop=stop, keep_audio=args.audio is not False,
                            audio_file=args.audio if isinstance(args.audio, str) else None)
    if not is_sequence_output(args.output):
        check_video_suffix(args.output)
    if args.preview:
        check_image_suffix(check_output(args.preview, args.input))
    if args.draft:
        return render_draft(args, args.input, lambda path: draft_film(path, film, draft_params(args)),
                            lambda draft_args, draft_film_params: _video(draft_args, still, params, av,
                                                                         draft_film_params))
    return _video(args, still, params, av, film)


def _video(args: argparse.Namespace, still, params, av, film) -> int:  # type: ignore[no-untyped-def]
    """``mmdream video`` with its parsed settings: dream (or style) the film."""
    from mmdream.ops.flow import check_flow_size
    from mmdream.pipelines.film import check_film_output, dream_film, plan_film
    from mmdream.schedules.drive import ChromaObjectives, film_chroma, film_drive

    if args.style:
        return _style_video(args, film)
    with local_io(args.input, args.output) as (input_path, output_path):
        check_film_output(output_path, input_path)
        plan = plan_film(input_path, film)
        check_flow_size(plan.width, plan.height, params.flow)
        drive = film_drive(input_path, plan, av)
        backbone = backbone_from_args(args, "image")
        objective, spec = objective_from_args(args, backbone, max(plan.width, plan.height))
        chroma = film_chroma(input_path, plan, av)
        if chroma is not None:
            objective = ChromaObjectives(objective, chroma)
            spec["chroma_sha256"] = hashlib.sha256(json.dumps(chroma).encode()).hexdigest()
        print(f"dreaming {plan.count} frames of {args.input} at {plan.width}x{plan.height}, {plan.fps:g} fps",
              file=sys.stderr)
        with progress(args.progress, "frames", unit="frame") as on_frame:
            _, records = dream_film(input_path, output_path, backbone, objective, still, params, film,
                                    work_dir=args.work_dir, objective_spec=spec, drive=drive,
                                    preview=args.preview, progress=on_frame,
                                    provenance=record_text(args, params=[still, params, av, film],
                                                           networks=[("backbone", backbone)]))
    report_done(args, output=args.output, frames=len(records), shots_start=[r["index"] for r in records if r["cut"]])
    return 0


def _style_video(args: argparse.Namespace, film: FilmParams) -> int:
    """``mmdream video --style``: style the film's frames (temporal loss, flow-carried init) instead of dreaming."""
    from contextlib import ExitStack

    from mmdream.media.files import check_output
    from mmdream.media.images import load_image
    from mmdream.media.storage import local_input
    from mmdream.pipelines.film import check_film_output, is_sequence_output, style_film

    params = StyleParams(content_weight=args.content_weight, style_weight=args.style_weight, steps=args.style_steps,
                         preserve_colors=args.preserve_colors, seed=args.seed).validate()
    video = StyledFilmParams(frame_steps=args.style_frame_steps, temporal_weight=args.temporal_loss).validate()
    uris = [u for u in args.style.split(",") if u]
    with local_io(args.input, args.output) as (input_path, output_path), ExitStack() as stack:
        check_film_output(output_path, input_path)
        if not is_sequence_output(output_path):
            check_output(output_path, *uris)
        styles = [load_image(stack.enter_context(local_input(u))) for u in uris]
        backbone = backbone_from_args(args, "image")
        with progress(args.progress, "frames", unit="frame") as on_frame:
            style_film(input_path, output_path, backbone, styles, params, film, video, work_dir=args.work_dir,
                       preview=args.preview, progress=on_frame, provenance=record_text(args, params=[params, film],
                                                                                       networks=[("backbone",
                                                                                                  backbone)]))
    report_done(args, output=args.output)
    return 0


def register(sub: SubParsers) -> None:
    """Add ``video`` to ``mmdream``'s sub-commands."""
    p = add_dream_command(sub, "video", "dream a film frame by frame with temporal coherence, keeping its sound: "
                                        "mmdream video INPUT OUTPUT")
    p.add_argument("input", help="input video (anything ffmpeg reads: mp4, mkv, mov, webm, ...), or a frame "
                                 "sequence: a folder of numbered images or a pattern such as frames/%%05d.png "
                                 "(8- or 16-bit PNG/TIFF; --fps and --audio FILE give its rate and sound)")
    p.add_argument("output", help="output video (.mp4, .mkv or .mov; H.264), or a frame sequence (a pattern "
                                  "out/%%05d.png or a folder out/: PNGs numbered like the input); never the input")
    add_dataclass_options(p.add_argument_group("film options (each shot's first frame is dreamed as a still with "
                                               "the dream options above)"), VideoParams)
    add_dataclass_options(p.add_argument_group("sound drives the picture (mmdream.schedules.drive)"), AVParams)
    st = p.add_argument_group("style the film instead of dreaming it (mmdream.dream.style; --size, --seed and "
                              "--preserve-colors apply)")
    st.add_argument("--style", default=None, metavar="IMAGE[,IMAGE2]", help="style image(s): style every frame")
    st.add_argument("--style-weight", type=float, default=StyleParams.style_weight, help="weight of the style loss")
    st.add_argument("--content-weight", type=float, default=StyleParams.content_weight,
                    help="weight of the content loss")
    st.add_argument("--style-steps", type=positive_int, default=StyleParams.steps,
                    help=f"optimiser steps per scale for each shot's first frame (default: {StyleParams.steps})")
    # StyledFilmParams' fields under the names the styled film has always had (recorded in its outputs)
    st.add_argument("--style-frame-steps", type=int, default=StyledFilmParams.frame_steps,
                    help=help_text(StyledFilmParams, "frame_steps"))
    st.add_argument("--temporal-loss", type=float, default=StyledFilmParams.temporal_weight,
                    help=help_text(StyledFilmParams, "temporal_weight"))
    # --size is the dream commands'; the frame range and the sound are one option each.
    add_dataclass_options(p, FilmParams, exclude=("size", "start", "stop", "keep_audio", "audio_file"))
    p.add_argument("--frames", type=_frame_range, default=(0, None), metavar="START:END",
                   help="dream only frames START to END-1 (default: all); the sound is cut to match")
    p.add_argument("--audio", "--keep-audio", dest="audio", nargs="?", const=True, default=True, metavar="FILE",
                   help="the film's sound: the input's soundtrack (default; copied bit for bit when the whole film "
                        "is dreamed), or the sound of FILE (a frame sequence's soundtrack, or a replacement)")
    p.add_argument("--no-audio", dest="audio", action="store_false", help="drop the sound")
    p.add_argument("--work-dir", default=None, metavar="DIR",
                   help="keep dreamed frames here; rerunning resumes after the last finished frame (default: a "
                        "hidden folder beside the output, removed when the film is written)")
    p.add_argument("--preview", default=None, metavar="PNG", help="also write a contact sheet of sample frames")
    add_draft_options(p)
    p.set_defaults(func=cmd_video)
