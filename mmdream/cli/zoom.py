"""``mmdream zoom``: a zoom film dreamed from a still (or a film's last frame), optionally driven by a sound."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from contextlib import ExitStack

from mmdream.cli.common import (SubParsers, add_dataclass_options, add_dream_command, backbone_from_args, local_io,
                                objective_from_args, params_from_args, progress, report_done)
from mmdream.cli.draft import add_draft_options, draft_params, finish_draft, start_draft
from mmdream.cli.provenance import record_text
from mmdream.dream.zoom import ZoomParams
from mmdream.errors import ParameterError
from mmdream.pipelines.zoom import ZoomFilmParams
from mmdream.schedules.drive import AVParams

__all__ = ["register", "cmd_zoom"]


def cmd_zoom(args: argparse.Namespace) -> int:
    """Render a zoom film (or its draft)."""
    from mmdream.dream.audio import AudioDreamParams, sound_objective
    from mmdream.dream.image import DreamParams
    from mmdream.media.files import check_output
    from mmdream.media.storage import local_input
    from mmdream.media.video import check_video_suffix
    from mmdream.pipelines.zoom import SoundDream, check_sound, plan_zoom, render_zoom

    still = params_from_args(DreamParams, args)
    params = params_from_args(ZoomParams, args)
    film = params_from_args(ZoomFilmParams, args)
    av = AVParams(**{f.name: getattr(args, f.name) for f in dataclasses.fields(AVParams) if hasattr(args, f.name)})
    draft = draft_params(args)
    check_video_suffix(args.output)
    if args.dream_audio is False and (args.audio_class or args.audio_layer):
        raise ParameterError("--audio-class / --audio-layer say how to dream the sound; add --dream-audio")
    work_given = args.work_dir is not None
    paths = start_draft(args) if args.draft else None
    with local_io(args.input, args.output) as (input_path, output_path), ExitStack() as stack:
        audio = None if args.audio is None else str(stack.enter_context(local_input(args.audio)))
        check_output(output_path, input_path, *([audio] if audio else []))
        plan = plan_zoom(input_path, film, args.size, audio)
        if paths is not None:  # the same seconds, every Nth frame, smaller
            plan = plan_zoom(input_path, dataclasses.replace(film, seconds=plan.frames / film.fps,
                                                             fps=draft.fps(film.fps)),
                             draft.size(max(plan.width, plan.height)), audio)
        check_sound(plan, av, dream=args.dream_audio)
        backbone = backbone_from_args(args, "image")
        objective, spec = objective_from_args(args, backbone, max(plan.width, plan.height))
        sound, networks = None, [("backbone", backbone)]
        if args.dream_audio and paths is None:  # a draft previews the picture: its sound is carried, not dreamed
            from mmdream.backbones import load_backbone

            sound_backbone = load_backbone("yamnet", weights_dir=args.weights)
            record = {"backbone": "yamnet", "class": args.audio_class, "layers": args.audio_layer}
            sound = SoundDream(sound_backbone, sound_objective(sound_backbone, class_=args.audio_class,
                                                               layers=args.audio_layer), AudioDreamParams(), record)
            networks.append(("sound backbone", sound_backbone))
        print(f"zooming {plan.frames} frames at {plan.width}x{plan.height}, {plan.fps:g} fps"
              + (f", to the sound of {plan.sound_path}" if plan.sound_path else "") + f" -> {args.output}",
              file=sys.stderr)
        work_dir = paths.work if paths is not None else args.work_dir
        with progress(args.progress, "zoom", unit="frame") as on_frame:
            records = render_zoom(plan, output_path, backbone, objective, still, params, av, objective_spec=spec,
                                  sound=sound, work_dir=work_dir, progress=on_frame,
                                  provenance=record_text(args, params=[still, params, av, film, draft],
                                                         networks=networks))
    if paths is not None:
        finish_draft(args, paths, work_given, len(records))
    report_done(args, output=args.output, frames=len(records))
    return 0


def register(sub: SubParsers) -> None:
    """Add ``zoom`` to ``mmdream``'s sub-commands."""
    p = add_dream_command(sub, "zoom", "an infinite-zoom dream film: each frame a dream of the previous one zoomed, "
                                    "rotated and shifted a little: mmdream zoom INPUT OUTPUT.mp4")
    p.add_argument("input", help="start picture (PNG, JPEG, WebP, TIFF) or a film (the zoom starts from its last "
                                 "frame and carries its soundtrack unless --audio is given)")
    p.add_argument("output", help="output film (.mp4, .mkv or .mov; H.264); never the input")
    add_dataclass_options(p.add_argument_group("film"), ZoomFilmParams)
    add_dataclass_options(p.add_argument_group("motion, per-frame dream and colour anchor (mmdream.dream.zoom; "
                                                "the first frame is dreamed as a still with the dream options "
                                                "above)"), ZoomParams)
    snd = p.add_argument_group("sound (mmdream.schedules.drive): the drive multiplies each frame's motion and dream "
                               "strength")
    snd.add_argument("--audio", default=None, metavar="FILE",
                     help="a sound (any audio or video file) that drives the zoom and that the film carries")
    add_dataclass_options(snd, AVParams, exclude=("sound_follows",))
    snd.add_argument("--dream-audio", action="store_true",
                     help="dream the sound too (YAMNet; segments checkpointed like the frames)")
    snd.add_argument("--audio-class", default=None, metavar="CLASS",
                     help="with --dream-audio: toward an AudioSet class (default: amplify YAMNet's dream layers)")
    snd.add_argument("--audio-layer", default=None, metavar="LAYERS", help="with --dream-audio: layers to amplify")
    p.add_argument("--work-dir", default=None, metavar="DIR",
                   help="keep finished frames here; rerunning resumes after the last finished frame (default: a "
                        "hidden folder beside the output, removed when the film is written)")
    add_draft_options(p)
    p.set_defaults(func=cmd_zoom)
