"""``mmdream`` command line. Dream options are generated from :class:`mmdream.dream.image.DreamParams`."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import NoReturn
from contextlib import contextmanager

from mmdream.cli_draft import add_draft_options, draft_params, finish_draft, start_draft
from mmdream.cli_jobs import add_compute_options, compute_overrides
from mmdream.cli_provenance import add_like_option, prepare, record_text
from mmdream.errors import MmdreamError, ParameterError
from mmdream.options import help_text
from mmdream.progress import say

EXIT_USAGE = 2

DESCRIPTION = """mmdream: multimodal Deep Dreams.

Pixels go in and out as plain RGB; each backbone does its own preprocessing. Weights are looked up in --weights DIR
(or $MMDREAM_WEIGHTS), then ~/.cache/mmdream/weights, then downloaded from the official source
(MMDREAM_OFFLINE=1 forbids that)."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line that points to --help, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_dataclass_options(group: argparse._ArgumentGroup, cls: type, exclude: tuple[str, ...] = ()) -> None:
    """One option per field of a params dataclass (but ``exclude``), with its help, default, choices and aliases
    (bools get --no-X)."""
    for f in (f for f in dataclasses.fields(cls) if f.name not in exclude):
        flags = [f"--{f.name.replace('_', '-')}", *f.metadata.get("aliases", ())]
        if f.name == "preserve_colors":
            group.add_argument(*flags, dest=f.name, nargs="?", const="luminance", default=f.default,
                               choices=f.metadata["choices"], metavar="MODE",
                               help=f"{f.metadata['help']}: luminance (default when given) or histogram")
        elif isinstance(f.default, bool):
            group.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                               help=help_text(cls, f.name))
        else:
            group.add_argument(*flags, dest=f.name, type=type(f.default), default=f.default,
                               choices=f.metadata.get("choices"),
                               metavar=None if "choices" in f.metadata else "N", help=help_text(cls, f.name))


def _add_progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", choices=("bar", "json", "none"), default="bar",
                        help="progress display; json: one object per line on stderr (default: bar)")


def _params_from_args(cls: type, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The params dataclass ``cls`` filled from the parsed options, validated."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)}).validate()


def _add_backbone_options(parser: argparse.ArgumentParser, default: str | None = "vgg16") -> None:
    from mmdream.backbones import BACKBONES

    parser.add_argument("--backbone", "-b", default=default, required=default is None,
                        help=f"network: {', '.join(BACKBONES)}, or ckpt:PATH (a checkpoint of `mmdream train`)"
                             + (f" (default: {default})" if default else ""))
    parser.add_argument("--variant", default=None,
                        help="weights variant (vgg: caffe [default] or torchvision; see `mmdream layers NAME`)")
    parser.add_argument("--weights", default=None, metavar="DIR",
                        help="folder holding weight files (default: $MMDREAM_WEIGHTS, then the user cache)")
    parser.add_argument("--weights-file", default=None, metavar="FILE", help="load this weights file instead")


def _load_backbone(args: argparse.Namespace, modality: str | None = None):  # type: ignore[no-untyped-def]
    """The backbone the options name; ``modality``: refuse backbones of another kind (image vs audio)."""
    from mmdream.backbones import get_spec, load_backbone

    kind = get_spec(args.backbone).modality
    if modality is not None and kind != modality:
        raise ParameterError(f"{args.backbone} is an {kind} backbone; this command needs an {modality} backbone")
    return load_backbone(args.backbone, variant=args.variant, weights_dir=args.weights,
                         weights_file=args.weights_file)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def _channel_list(text: str) -> tuple[tuple[int, float], ...]:
    from mmdream.objectives.terms import parse_channels

    try:
        return parse_channels(text) or ()
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@contextmanager
def _progress(mode: str, desc: str, unit: str = "step") -> Iterator[Callable | None]:  # type: ignore[type-arg]
    from mmdream.progress import Bar, json_lines

    if mode == "json":
        yield json_lines()
    elif mode == "bar":
        with Bar(desc, unit) as bar:
            yield bar
    else:
        yield None


@contextmanager
def _local_io(input_uri: str, output_uri: str) -> Iterator[tuple[str, str]]:
    """Local paths for an input and an output that may be ``s3://`` URIs (downloaded / uploaded when complete);
    frame sequences (local only) pass as they are."""
    from mmdream.media.sequence import is_pattern, local_media_input
    from mmdream.media.storage import is_s3, local_output

    if is_s3(output_uri) and output_uri == input_uri:
        raise ParameterError(f"output {output_uri} is the input; choose another output (inputs are never overwritten)")
    with local_media_input(input_uri) as inp:
        if is_s3(output_uri) and not is_pattern(output_uri) and not output_uri.endswith("/"):
            with local_output(output_uri) as out:
                yield str(inp), str(out)
        else:
            yield str(inp), output_uri


def _objective_from_args(args: argparse.Namespace, backbone, size: int):  # type: ignore[no-untyped-def]
    """The objective the options ask for, and a JSON-able record of them (for work directories)."""
    from mmdream.jobspec.schema import BackboneSpec, ObjectiveSpec, build_job_objective, objective_record

    spec = ObjectiveSpec(layers=args.layer, channels=args.channel, class_=args.class_, guide=args.guide)
    return (build_job_objective(spec, backbone, size),
            objective_record(spec, BackboneSpec(name=backbone.name, variant=backbone.variant), size))


def cmd_image(args: argparse.Namespace) -> int:
    """Dream one image."""
    from mmdream.dream.image import DreamParams, dream_image
    from mmdream.media.files import check_output
    from mmdream.media.images import check_image_suffix, load_image, save_image

    params = _params_from_args(DreamParams, args)
    check_image_suffix(args.output)
    if args.size is not None and not 16 <= args.size <= 16384:
        raise ParameterError(f"--size {args.size} is invalid: give the longer side in pixels, 16 to 16384")
    with _local_io(args.input, args.output) as (input_path, output_path):
        output = check_output(output_path, input_path)
        image = load_image(input_path, args.size)
        backbone = _load_backbone(args, "image")
        objective, _ = _objective_from_args(args, backbone, max(image.shape[-2:]))
        with _progress(args.progress, "dream") as progress:
            result = dream_image(image, backbone, objective, params, progress=progress)
        save_image(result, output, provenance=record_text(args, params=[params], networks=[("backbone", backbone)]))
    if args.progress == "json":
        print(json.dumps({"event": "done", "output": args.output}), file=sys.stderr)
    return 0


def cmd_style(args: argparse.Namespace) -> int:
    """Neural style transfer of a still: content + one or more styles -> output."""
    from contextlib import ExitStack

    from mmdream.dream.style import StyleParams, style_image
    from mmdream.media.files import check_output
    from mmdream.media.images import check_image_suffix, load_image, save_image
    from mmdream.media.storage import local_input

    params = _params_from_args(StyleParams, args).validate()
    check_image_suffix(args.output)
    style_uris = [u for u in args.styles.split(",") if u]
    weights = None if args.style_weights is None else [float(w) for w in args.style_weights.split(",")]
    if not style_uris or (weights is not None and len(weights) != len(style_uris)):
        raise ParameterError(f"give one or more styles (comma list) and as many --style-weights; got "
                             f"{len(style_uris)} style(s) and {args.style_weights!r}")
    with _local_io(args.content, args.output) as (content_path, output_path), ExitStack() as stack:
        styles = [load_image(stack.enter_context(local_input(u))) for u in style_uris]
        output = check_output(output_path, content_path, *style_uris)
        content = load_image(content_path)
        backbone = _load_backbone(args, "image")
        with _progress(args.progress, "style") as progress:
            result = style_image(content, styles, backbone, params, style_weights=weights, progress=progress)
        save_image(result, output, provenance=record_text(args, params=[params], networks=[("backbone", backbone)]))
    if args.progress == "json":
        print(json.dumps({"event": "done", "output": args.output}), file=sys.stderr)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Dream a bundled photo (fetched from scikit-image's wheel) with the defaults."""
    from mmdream.media.samples import sample_path

    source = sample_path("chelsea.png", say=say)
    args.input, args.size = str(source), args.size or 512
    print(f"dreaming {source} -> {args.output}", file=sys.stderr)
    return cmd_image(args)


def _frame_range(text: str) -> tuple[int, int | None]:
    start, _, stop = text.partition(":")
    try:
        return int(start or 0), (int(stop) if stop else None)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not START:END (frame numbers, END excluded)") from None


def cmd_video(args: argparse.Namespace) -> int:
    """Dream a film with temporal coherence, keeping its sound (``--draft``: a draft of it)."""
    from mmdream.schedules.drive import AVParams
    from mmdream.pipelines.draft import draft_film
    from mmdream.dream.image import DreamParams
    from mmdream.dream.temporal import VideoParams
    from mmdream.pipelines.film import FilmParams, is_sequence_output
    from mmdream.media.files import check_output
    from mmdream.media.images import check_image_suffix
    from mmdream.media.video import check_video_suffix

    still = _params_from_args(DreamParams, args)
    params = _params_from_args(VideoParams, args)
    av = _params_from_args(AVParams, args).validate()
    start, stop = args.frames
    film = FilmParams(size=args.size, fps=args.fps, start=start, stop=stop, keep_audio=args.audio is not False,
                      crf=args.crf, audio_file=args.audio if isinstance(args.audio, str) else None,
                      bit_depth=args.bit_depth).validate()
    if not is_sequence_output(args.output):
        check_video_suffix(args.output)
    if args.preview:
        check_image_suffix(check_output(args.preview, args.input))
    if args.draft:
        return _draft(args, args.input, lambda path: draft_film(path, film, draft_params(args)),
                      lambda draft_args, draft_film_params: _video(draft_args, still, params, av, draft_film_params))
    return _video(args, still, params, av, film)


def _draft(args: argparse.Namespace, input_uri: str, convert: Callable, run: Callable  # type: ignore[type-arg]
           ) -> int:
    """Render a draft of the render ``args`` describe (``args.output``, ``args.work_dir``): ``convert(local path of
    input_uri)`` gives the draft's settings, ``run(args, settings)`` renders them into the draft's film and work
    location; then its contact sheet."""
    from mmdream.media.sequence import local_media_input
    from mmdream.media.storage import is_s3
    from mmdream.media.video import probe

    work_given = args.work_dir is not None
    paths = start_draft(args)
    args.work_dir, args.preview = paths.work, None
    with local_media_input(input_uri) as input_path:
        settings = convert(str(input_path))
    run(args, settings)
    finish_draft(args, paths, work_given, probe(paths.film).frame_count if not is_s3(paths.film) else 0)
    return 0


def _video(args: argparse.Namespace, still, params, av, film) -> int:  # type: ignore[no-untyped-def]
    """``mmdream video`` with its parsed settings: dream (or style) the film."""
    from mmdream.schedules.drive import ChromaObjectives, film_chroma, film_drive
    from mmdream.pipelines.film import check_film_output, dream_film, plan_film
    from mmdream.ops.flow import check_flow_size

    if args.style:
        return _style_video(args, film)
    with _local_io(args.input, args.output) as (input_path, output_path):
        check_film_output(output_path, input_path)
        plan = plan_film(input_path, film)
        check_flow_size(plan.width, plan.height, params.flow)
        drive = film_drive(input_path, plan, av)
        backbone = _load_backbone(args, "image")
        objective, spec = _objective_from_args(args, backbone, max(plan.width, plan.height))
        chroma = film_chroma(input_path, plan, av)
        if chroma is not None:
            objective = ChromaObjectives(objective, chroma)
            spec["chroma_sha256"] = hashlib.sha256(json.dumps(chroma).encode()).hexdigest()
        print(f"dreaming {plan.count} frames of {args.input} at {plan.width}x{plan.height}, {plan.fps:g} fps",
              file=sys.stderr)
        with _progress(args.progress, "frames", unit="frame") as progress:
            _, records = dream_film(input_path, output_path, backbone, objective, still, params, film,
                                    work_dir=args.work_dir, objective_spec=spec, drive=drive,
                                    preview=args.preview, progress=progress,
                                    provenance=record_text(args, params=[still, params, av, film],
                                                           networks=[("backbone", backbone)]))
    if args.progress == "json":
        cuts = [r["index"] for r in records if r["cut"]]
        print(json.dumps({"event": "done", "output": args.output, "frames": len(records), "shots_start": cuts}),
              file=sys.stderr)
    return 0


def _style_video(args: argparse.Namespace, film) -> int:  # type: ignore[no-untyped-def]
    """``mmdream video --style``: style the film's frames (temporal loss, flow-carried init) instead of dreaming."""
    from contextlib import ExitStack

    from mmdream.dream.style import StyledFilmParams, StyleParams
    from mmdream.pipelines.film import check_film_output, is_sequence_output, style_film
    from mmdream.media.files import check_output
    from mmdream.media.images import load_image
    from mmdream.media.storage import local_input

    params = StyleParams(content_weight=args.content_weight, style_weight=args.style_weight, steps=args.style_steps,
                         preserve_colors=args.preserve_colors, seed=args.seed).validate()
    video = StyledFilmParams(frame_steps=args.style_frame_steps, temporal_weight=args.temporal_loss).validate()
    uris = [u for u in args.style.split(",") if u]
    with _local_io(args.input, args.output) as (input_path, output_path), ExitStack() as stack:
        check_film_output(output_path, input_path)
        if not is_sequence_output(output_path):
            check_output(output_path, *uris)
        styles = [load_image(stack.enter_context(local_input(u))) for u in uris]
        backbone = _load_backbone(args, "image")
        with _progress(args.progress, "frames", unit="frame") as progress:
            style_film(input_path, output_path, backbone, styles, params, film, video, work_dir=args.work_dir,
                       preview=args.preview, progress=progress, provenance=record_text(args, params=[params, film],
                                                                 networks=[("backbone", backbone)]))
    if args.progress == "json":
        print(json.dumps({"event": "done", "output": args.output}), file=sys.stderr)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Render a job spec on Ray (a local single-node Ray unless --address is given; ``--draft``: a draft of it)."""
    from mmdream.jobspec.schema import load_job
    from mmdream.jobspec.preflight import check_job

    job = load_job(args.job).with_overrides(**{"input": args.input, "output": args.output,
                                                "resources.actors": args.workers, **compute_overrides(args)})
    check_job(job, local_ray=args.address is None, say=say)  # before Ray starts or anything is written
    if args.draft:
        from mmdream.pipelines.draft import DraftPaths, draft_job
        from mmdream.media.samples import resolve

        args.output, args.work_dir = job.output, job.work
        job = job.with_overrides(input=resolve(job.input))

        def convert(path: str) -> object:
            return draft_job(job, path, draft_params(args), DraftPaths(args.output, "", args.work_dir))

        return _draft(args, job.input, convert, lambda draft_args, draft: _render(draft_args, draft))
    return _render(args, job)


def _render(args: argparse.Namespace, job) -> int:  # type: ignore[no-untyped-def]
    from mmdream_cluster.driver import render_job

    print(f"rendering {job.input} -> {job.output} on {args.address or 'a local Ray'}", file=sys.stderr)
    desc, unit = ("sound segments", "segment") if job.kind == "audio" else ("frames", "frame")
    try:
        with _progress(args.progress, desc, unit=unit) as progress:
            out = render_job(job, address=args.address, shards=args.shards, progress=progress)
    except KeyboardInterrupt:  # the actors are stopped on the way out; the checkpoints stay
        resume = shlex.join(["mmdream", *sys.argv[1:]])
        print(f"mmdream: interrupted: actors stopped, checkpoints kept in {job.work_uri()}; resume with: {resume}",
              file=sys.stderr)
        return 130
    if args.progress == "json":
        print(json.dumps({"event": "done", "output": str(out)}), file=sys.stderr)
    return 0


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


def cmd_audio_style(args: argparse.Namespace) -> int:
    """Give a sound (content) the texture of another (style): mmdream audio-style CONTENT STYLE OUTPUT."""
    from mmdream.dream.audio_style import AudioStyleParams
    from mmdream.pipelines.audio import style_audio
    from mmdream.media.audio import check_audio_suffix, load_audio, save_audio
    from mmdream.media.files import check_output
    from mmdream.media.spectrogram import save_spectrogram_preview
    from mmdream.media.storage import local_input

    params = _params_from_args(AudioStyleParams, args)
    check_audio_suffix(args.output)
    if args.output == args.style:
        raise ParameterError(f"output {args.output} is the style clip; choose another output (inputs are never "
                             "overwritten)")
    _check_preview(args.preview, args.content, args.style)
    with _local_io(args.content, args.output) as (content_path, output_path), local_input(args.style) as style_path:
        check_output(output_path, content_path, style_path)
        content, content_rate = load_audio(content_path)
        style, style_rate = load_audio(style_path)
        network = None
        if params.network == "yamnet":
            from mmdream.backbones import load_backbone

            network = load_backbone("yamnet", weights_dir=args.weights, weights_file=args.weights_file)
        with _progress(args.progress, "audio style") as progress:
            result = style_audio(content, content_rate, style, style_rate, params, network=network,
                                 progress=progress)
        save_audio(output_path, result, content_rate, provenance=record_text(
            args, params=[params], networks=[] if network is None else [("network", network)]))
        if args.preview:
            save_spectrogram_preview(args.preview, [("content", content, content_rate), ("style", style, style_rate),
                                                    ("output", result, content_rate)])
    if args.progress == "json":
        print(json.dumps({"event": "done", "output": args.output}), file=sys.stderr)
    return 0


def cmd_audio(args: argparse.Namespace) -> int:
    """Dream a sound with an audio backbone (YAMNet): toward a class, or amplifying layers."""
    from mmdream.pipelines.audio_file import dream_audio_file
    from mmdream.dream.audio import AudioDreamParams, sound_objective
    from mmdream.media.audio import check_audio_suffix, load_audio, stream_audio
    from mmdream.media.files import check_output
    from mmdream.media.storage import local_input

    params = _params_from_args(AudioDreamParams, args)
    check_audio_suffix(args.output)
    _check_preview(args.preview, args.input)
    with _local_io(args.input, args.output) as (input_path, output_path):
        check_output(output_path, input_path)
        stream_audio(input_path)  # a missing or soundless input fails before the weights load
        backbone = _load_backbone(args, "audio")
        guide = None
        if args.guide is not None:
            with local_input(args.guide) as guide_path:
                guide = load_audio(guide_path, rate=backbone.sample_rate, mono=True)[0][0]
        objective = sound_objective(backbone, class_=args.class_, layers=args.layer, channels=args.channel,
                                    guide=guide)
        with _progress(args.progress, "audio dream") as progress:  # streamed: memory bounded by a segment
            dream_audio_file(input_path, output_path, backbone, objective, params, progress=progress,
                             provenance=record_text(args, params=[params], networks=[("backbone", backbone)]))
        if args.preview:
            _sound_preview(args.preview, [("input", input_path), ("output", output_path)])
    if args.progress == "json":
        print(json.dumps({"event": "done", "output": args.output}), file=sys.stderr)
    return 0


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

    backbone = _load_backbone(args)
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


def cmd_train(args: argparse.Namespace) -> int:
    """Train a classifier on a dataset and write a checkpoint that loads as ``--backbone ckpt:OUT``."""
    from pathlib import Path

    import tempfile

    from mmdream.media.files import check_output
    from mmdream.media.storage import is_s3, upload
    from mmdream.train import finetune as ft
    from mmdream.train.curves import save_learning_curves
    from mmdream.train.data import AudioAugment, AudioDataset, ImageAugment, ImageDataset

    params = _params_from_args(ft.TrainParams, args)
    audio = args.kind == "audio"
    augment = _params_from_args(AudioAugment if audio else ImageAugment, args)
    bases = ft.AUDIO_BASES if audio else ft.IMAGE_BASES
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
        with _progress(args.progress, "cross-validation") as progress:
            cv = (ft.cross_validate_audio(dataset, args.base, params, augment, folds=args.folds, progress=progress)
                  if audio else ft.cross_validate_image(dataset, args.base, params, augment, folds=args.folds,
                                                        weights_dir=args.weights, progress=progress))
        extra["cross_validation"] = cv.record()
        print(json.dumps({"event": "cross_validation", **cv.record()}), file=sys.stderr)
    with _progress(args.progress, "training", unit="epoch") as progress:
        result = (ft.train_audio(dataset, args.base, params, augment, progress=progress, on_epoch=on_epoch) if audio
                  else ft.train_image(dataset, args.base, params, augment, weights_dir=args.weights,
                                      progress=progress, on_epoch=on_epoch))
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


def _dream_command(sub: argparse._SubParsersAction, name: str, help_text: str  # type: ignore[type-arg]
                   ) -> argparse.ArgumentParser:
    """A sub-command with the backbone, objective, size, progress, --like and still-dream options of ``mmdream
    image``."""
    from mmdream.dream.image import DreamParams

    p = sub.add_parser(name, help=help_text, description=help_text)
    _add_backbone_options(p)
    obj = p.add_argument_group("objective (default: the backbone's classic dream layers)")
    obj.add_argument("--layer", "-l", default=None, metavar="LAYERS",
                     help="layers to amplify, comma list with optional weights: relu4_3:1,relu5_2:0.5 "
                          "(see `mmdream layers NAME`)")
    obj.add_argument("--channel", type=_channel_list, default=None, metavar="CHANNELS",
                     help="channels of the (single) --layer, comma list with optional gains: 12,40:2,7:-1 "
                          "(a negative gain suppresses the channel)")
    obj.add_argument("--class", dest="class_", default=None, metavar="CLASS",
                     help="dream toward a class, by index or (part of) its name (see `mmdream classes NAME`)")
    obj.add_argument("--guide", default=None, metavar="IMAGE",
                     help="match the features of this guide image at the layers")
    p.add_argument("--size", type=_positive_int, default=None, metavar="PX",
                   help="resize so that the longer side is PX pixels (default: keep the input's size)")
    _add_progress_option(p)
    add_like_option(p)
    _add_dataclass_options(p.add_argument_group("dream options (defaults give a good dream)"), DreamParams)
    return p


def build_parser() -> argparse.ArgumentParser:
    from mmdream.schedules.drive import AVParams
    from mmdream.dream.style import StyledFilmParams, StyleParams
    from mmdream.backbones import BACKBONES
    from mmdream.dream.audio import AudioDreamParams
    from mmdream.dream.audio_style import AudioStyleParams
    from mmdream.dream.temporal import VideoParams
    from mmdream.media.sequence import BIT_DEPTHS
    from mmdream.pipelines.film import FilmParams

    parser = _Parser(prog="mmdream", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _dream_command(sub, "image", "dream an image: mmdream image INPUT OUTPUT")
    p.add_argument("input", help="input image (PNG, JPEG, WebP, TIFF)")
    p.add_argument("output", help="output image; its suffix picks the format; never the input")
    p.set_defaults(func=cmd_image)

    p = sub.add_parser("style", help="neural style transfer: mmdream style CONTENT STYLE[,STYLE2...] OUTPUT",
                       description="Restyle a picture (Gatys et al.): the content's features at deep layers, the "
                                   "styles' feature statistics (Gram or W2) at several layers, optimised coarse to "
                                   "fine with iterate averaging; several styles blend, colours can be kept.")
    _add_backbone_options(p)
    p.add_argument("content", help="content image")
    p.add_argument("styles", help="style image(s), comma list: starry.jpg,scream.jpg")
    p.add_argument("output", help="output image; its suffix picks the format; never an input")
    p.add_argument("--style-weights", default=None, metavar="W1,W2",
                   help="blend weights of the styles (default: equal)")
    _add_progress_option(p)
    add_like_option(p)
    _add_dataclass_options(p.add_argument_group("style options"), StyleParams)
    p.set_defaults(func=cmd_style)

    p = _dream_command(sub, "demo", "dream a bundled photo (chelsea.png from scikit-image) with the defaults")
    p.add_argument("output", nargs="?", default="dream_demo.png", help="output image (default: dream_demo.png)")
    p.set_defaults(func=cmd_demo)

    p = _dream_command(sub, "video", "dream a film frame by frame with temporal coherence, keeping its sound: "
                               "mmdream video INPUT OUTPUT")
    p.add_argument("input", help="input video (anything ffmpeg reads: mp4, mkv, mov, webm, ...), or a frame "
                                 "sequence: a folder of numbered images or a pattern such as frames/%%05d.png "
                                 "(8- or 16-bit PNG/TIFF; --fps and --audio FILE give its rate and sound)")
    p.add_argument("output", help="output video (.mp4, .mkv or .mov; H.264), or a frame sequence (a pattern "
                                  "out/%%05d.png or a folder out/: PNGs numbered like the input); never the input")
    _add_dataclass_options(p.add_argument_group("film options (each shot's first frame is dreamed as a still with "
                                                "the dream options above)"), VideoParams)
    _add_dataclass_options(p.add_argument_group("sound drives the picture (mmdream.schedules.drive)"), AVParams)
    st = p.add_argument_group("style the film instead of dreaming it (mmdream.dream.style; --size, --seed and "
                              "--preserve-colors apply)")
    st.add_argument("--style", default=None, metavar="IMAGE[,IMAGE2]", help="style image(s): style every frame")
    st.add_argument("--style-weight", type=float, default=StyleParams.style_weight, help="weight of the style loss")
    st.add_argument("--content-weight", type=float, default=StyleParams.content_weight,
                    help="weight of the content loss")
    st.add_argument("--style-steps", type=_positive_int, default=StyleParams.steps,
                    help=f"optimiser steps per scale for each shot's first frame (default: {StyleParams.steps})")
    st.add_argument("--style-frame-steps", type=int, default=StyledFilmParams.frame_steps,
                    help=help_text(StyledFilmParams, "frame_steps"))
    st.add_argument("--temporal-loss", type=float, default=StyledFilmParams.temporal_weight,
                    help=help_text(StyledFilmParams, "temporal_weight"))
    p.add_argument("--fps", type=float, default=None,
                   help="output frame rate (default: the input's; 25 for a frame sequence)")
    p.add_argument("--frames", type=_frame_range, default=(0, None), metavar="START:END",
                   help="dream only frames START to END-1 (default: all); the sound is cut to match")
    p.add_argument("--audio", "--keep-audio", dest="audio", nargs="?", const=True, default=True, metavar="FILE",
                   help="the film's sound: the input's soundtrack (default; copied bit for bit when the whole film "
                        "is dreamed), or the sound of FILE (a frame sequence's soundtrack, or a replacement)")
    p.add_argument("--no-audio", dest="audio", action="store_false", help="drop the sound")
    p.add_argument("--bit-depth", type=int, choices=BIT_DEPTHS, default=None,
                   help="bits per channel of an output frame sequence's PNGs (default: the input's; 8 for a film)")
    p.add_argument("--crf", type=int, default=FilmParams.crf, help=help_text(FilmParams, "crf"))
    p.add_argument("--work-dir", default=None, metavar="DIR",
                   help="keep dreamed frames here; rerunning resumes after the last finished frame (default: a "
                        "hidden folder beside the output, removed when the film is written)")
    p.add_argument("--preview", default=None, metavar="PNG", help="also write a contact sheet of sample frames")
    add_draft_options(p)
    p.set_defaults(func=cmd_video)

    p = sub.add_parser("audio", help="dream a sound: mmdream audio INPUT OUTPUT --class Bark",
                       description="Dream a sound with YAMNet: gradient ascent on the waveform under random time and "
                                   "pitch shifts (so the dream survives delays, re-encoding and noise), loudness "
                                   "kept within 1 dB, never clipping; long clips in overlapping segments.")
    _add_backbone_options(p, default="yamnet")
    p.add_argument("input", help="input sound (WAV, FLAC, MP3, OGG, or a video's soundtrack)")
    p.add_argument("output", help="output sound (.wav, .flac or .ogg) at the input's rate and channels")
    p.add_argument("--class", dest="class_", default=None, metavar="CLASS",
                   help="dream toward an AudioSet class, by index or (part of) its name (see `mmdream classes yamnet`)")
    p.add_argument("--layer", "-l", default=None, metavar="LAYERS",
                   help="layers to amplify instead (default: the backbone's dream layers)")
    p.add_argument("--channel", type=_channel_list, default=None, metavar="CHANNELS",
                   help="channels of the (single) --layer, comma list with optional gains: 12,40:2,7:-1 (a negative "
                        "gain suppresses the channel)")
    p.add_argument("--guide", default=None, metavar="CLIP",
                   help="match the features of this guide sound at the layers (any audio file, at least 1 s)")
    _add_progress_option(p)
    add_like_option(p)
    _add_dataclass_options(p.add_argument_group("audio dream options"), AudioDreamParams)
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
    _add_progress_option(p)
    add_like_option(p)
    _add_dataclass_options(p.add_argument_group("audio style options"), AudioStyleParams)
    p.set_defaults(func=cmd_audio_style)

    p = sub.add_parser("render", help="render a job spec (YAML) on Ray: mmdream render JOB.yaml",
                       description="Render a job spec on Ray: shards of frames and segments of sound are dreamed "
                                   "by actors that load their backbone(s) once, then a reducer assembles the film "
                                   "and muxes its (dreamed) sound. An output with an audio suffix (.wav, .flac, "
                                   ".ogg) renders the sound alone. Without --address a local single-node Ray is "
                                   "started and stopped.")
    p.add_argument("job", help="job spec (see jobs/*.yaml)")
    p.add_argument("--address", default=None, help="a running Ray cluster (e.g. auto, or ray://HEAD:10001)")
    p.add_argument("--input", default=None, help="override the spec's input (path, s3://, sample:NAME)")
    p.add_argument("--output", default=None, help="override the spec's output")
    p.add_argument("--shards", type=_positive_int, default=None, help="split the frames into this many "
                   "shards (default: by sharding.frames_per_shard)")
    p.add_argument("--workers", type=_positive_int, default=None, help="override resources.actors")
    _add_progress_option(p)
    add_draft_options(p)
    add_compute_options(p)
    p.set_defaults(func=cmd_render)

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
    _add_backbone_options(p, default=None)
    p.add_argument("--top", type=_positive_int, default=5, help="how many classes (default: 5)")
    p.set_defaults(func=cmd_classify)

    from mmdream.train.data import AudioAugment, ImageAugment
    from mmdream.train.finetune import AUDIO_BASES, IMAGE_BASES, TrainParams

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
        _add_progress_option(k)
        _add_dataclass_options(k.add_argument_group("training options"), TrainParams)
        _add_dataclass_options(k.add_argument_group("augmentation"), augment)
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
    k.add_argument("--cache-items", type=_positive_int, default=100, metavar="N",
                   help="clips in the cache: the first N (default: 100)")
    for k in sources.choices.values():
        k.add_argument("--out", required=True, help="output folder (imagenet-subset) or CSV index (fsd, birds)")
        k.add_argument("--per-class", type=_positive_int, default=None, metavar="N",
                       help="at most N items per class (birds: the first N rows)")
        k.set_defaults(func=cmd_data)
    from mmdream import cli_analyze, cli_gan, cli_jobs, cli_provenance, cli_weights, cli_zoom

    cli_jobs.register(sub)
    cli_gan.register(sub)
    cli_analyze.register(sub)
    cli_provenance.register(sub)
    cli_zoom.register(sub)
    cli_weights.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        prepare(parser, build_parser, argv, args)
        return int(args.func(args))
    except MmdreamError as exc:
        print(f"mmdream: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mmdream: interrupted; no output was written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mmdream classes yamnet | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
