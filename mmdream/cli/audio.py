"""``mmdream audio|audio-style``: dream a sound with an audio backbone, give a sound the texture of another."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from mmdream.cli.common import (SubParsers, add_backbone_options, add_dataclass_options, add_progress_option,
                                backbone_from_args, local_io, params_from_args, progress, report_done,
                                weighted_channels)
from mmdream.cli.provenance import add_like_option, record_text
from mmdream.dream.audio import AudioDreamParams
from mmdream.dream.audio_style import AudioStyleParams
from mmdream.errors import ParameterError

__all__ = ["register", "cmd_audio", "cmd_audio_style"]


def _check_preview(preview: str | None, *inputs: str) -> None:
    """Refuse a bad ``--preview`` before any work: not a .png, a missing local folder, one of the inputs."""
    from mmdream.media.files import check_output
    from mmdream.media.storage import is_s3

    if preview is None:
        return
    if not preview.lower().endswith(".png"):
        raise ParameterError(f"--preview {preview} must name a .png file")
    if preview in inputs:
        raise ParameterError(f"--preview {preview} is an input; choose another name (inputs are never overwritten)")
    if not is_s3(preview):
        check_output(preview, *(i for i in inputs if not is_s3(i)))


def _sound_preview(preview: str, files: Sequence[tuple[str, str]]) -> None:
    """Spectrograms of sound files ``[(label, path)]`` into the PNG ``preview``, the files streamed (memory does
    not grow with their length)."""
    from mmdream.media.audio import stream_audio
    from mmdream.media.spectrogram import save_spectrogram_preview

    clips = []
    for label, path in files:
        rate, _, blocks = stream_audio(path)
        clips.append((label, blocks, rate))
    save_spectrogram_preview(preview, clips)


def cmd_audio(args: argparse.Namespace) -> int:
    """Dream a sound with an audio backbone (YAMNet): toward a class, or amplifying layers."""
    from mmdream.dream.audio import sound_objective
    from mmdream.media.audio import check_audio_suffix, load_audio, stream_audio
    from mmdream.media.files import check_output
    from mmdream.media.storage import local_input
    from mmdream.pipelines.audio_file import dream_audio_file

    params = params_from_args(AudioDreamParams, args)
    check_audio_suffix(args.output)
    _check_preview(args.preview, args.input)
    with local_io(args.input, args.output) as (input_path, output_path):
        check_output(output_path, input_path)
        stream_audio(input_path)  # a missing or soundless input fails before the weights load
        backbone = backbone_from_args(args, "audio")
        guide = None
        if args.guide is not None:
            with local_input(args.guide) as guide_path:
                guide = load_audio(guide_path, rate=backbone.sample_rate, mono=True)[0][0]
        objective = sound_objective(backbone, class_=args.class_, layers=args.layer, channels=args.channel,
                                    guide=guide)
        with progress(args.progress, "audio dream") as on_step:  # streamed: memory bounded by a segment
            dream_audio_file(input_path, output_path, backbone, objective, params, progress=on_step,
                             provenance=record_text(args, params=[params], networks=[("backbone", backbone)]))
        if args.preview:
            _sound_preview(args.preview, [("input", input_path), ("output", output_path)])
    report_done(args, output=args.output)
    return 0


def cmd_audio_style(args: argparse.Namespace) -> int:
    """Give a sound (content) the texture of another (style): mmdream audio-style CONTENT STYLE OUTPUT."""
    from mmdream.media.audio import check_audio_suffix, load_audio, save_audio
    from mmdream.media.files import check_output
    from mmdream.media.spectrogram import save_spectrogram_preview
    from mmdream.media.storage import local_input
    from mmdream.pipelines.audio import style_audio

    params = params_from_args(AudioStyleParams, args)
    check_audio_suffix(args.output)
    if args.output == args.style:
        raise ParameterError(f"output {args.output} is the style clip; choose another output (inputs are never "
                             "overwritten)")
    _check_preview(args.preview, args.content, args.style)
    with local_io(args.content, args.output) as (content_path, output_path), local_input(args.style) as style_path:
        check_output(output_path, content_path, style_path)
        content, content_rate = load_audio(content_path)
        style, style_rate = load_audio(style_path)
        network = None
        if params.network == "yamnet":
            from mmdream.backbones import load_backbone

            network = load_backbone("yamnet", weights_dir=args.weights, weights_file=args.weights_file)
        with progress(args.progress, "audio style") as on_step:
            result = style_audio(content, content_rate, style, style_rate, params, network=network,
                                 progress=on_step)
        save_audio(output_path, result, content_rate, provenance=record_text(
            args, params=[params], networks=[] if network is None else [("network", network)]))
        if args.preview:
            save_spectrogram_preview(args.preview, [("content", content, content_rate), ("style", style, style_rate),
                                                    ("output", result, content_rate)])
    report_done(args, output=args.output)
    return 0


def register(sub: SubParsers) -> None:
    """Add ``audio`` and ``audio-style`` to ``mmdream``'s sub-commands."""
    p = sub.add_parser("audio", help="dream a sound: mmdream audio INPUT OUTPUT --class Bark",
                       description="Dream a sound with YAMNet: gradient ascent on the waveform under random time and "
                                   "pitch shifts (so the dream survives delays, re-encoding and noise), loudness "
                                   "kept within 1 dB, never clipping; long clips in overlapping segments.")
    add_backbone_options(p, default="yamnet")
    p.add_argument("input", help="input sound (WAV, FLAC, MP3, OGG, or a video's soundtrack)")
    p.add_argument("output", help="output sound (.wav, .flac or .ogg) at the input's rate and channels")
    p.add_argument("--class", dest="class_", default=None, metavar="CLASS",
                   help="dream toward an AudioSet class, by index or (part of) its name (see `mmdream classes yamnet`)")
    p.add_argument("--layer", "-l", default=None, metavar="LAYERS",
                   help="layers to amplify instead (default: the backbone's dream layers)")
    p.add_argument("--channel", type=weighted_channels, default=None, metavar="CHANNELS",
                   help="channels of the (single) --layer, comma list with optional gains: 12,40:2,7:-1 (a negative "
                        "gain suppresses the channel)")
    p.add_argument("--guide", default=None, metavar="CLIP",
                   help="match the features of this guide sound at the layers (any audio file, at least 1 s)")
    add_progress_option(p)
    add_like_option(p)
    add_dataclass_options(p.add_argument_group("audio dream options"), AudioDreamParams)
    p.add_argument("--preview", default=None, metavar="PNG",
                   help="also write the input's and the output's spectrograms, stacked, to this PNG")
    p.set_defaults(func=cmd_audio)

    p = sub.add_parser("audio-style", help="style transfer for sounds: mmdream audio-style CONTENT STYLE OUTPUT",
                       description="Give a sound the texture of another: its log spectrogram is optimised to match "
                                   "the style clip's CNN feature statistics (Gram matrices or W2) while keeping the "
                                   "content's features, then turned back into sound by Griffin-Lim; loudness of "
                                   "the content, never clipping; long clips in overlapping segments.")
    p.add_argument("content", help="content sound (WAV, FLAC, MP3, OGG, or a video's soundtrack)")
    p.add_argument("style", help="style sound: its texture is given to the content")
    p.add_argument("output", help="output sound (.wav, .flac or .ogg) at the content's length, rate and channels")
    p.add_argument("--weights", default=None, metavar="DIR",
                   help="--network yamnet: folder holding yamnet.safetensors (default: $MMDREAM_WEIGHTS, then the "
                        "user cache)")
    p.add_argument("--weights-file", default=None, metavar="FILE", help="--network yamnet: load this weights file")
    p.add_argument("--preview", default=None, metavar="PNG",
                   help="also write the content's, the style's and the output's spectrograms, stacked, to this PNG")
    add_progress_option(p)
    add_like_option(p)
    add_dataclass_options(p.add_argument_group("audio style options"), AudioStyleParams)
    p.set_defaults(func=cmd_audio_style)
