"""What the command families share: the usage-error parser and exit codes, options generated from params
dataclasses, the backbone / objective / progress options of the dream commands, and their run-time helpers
(backbone, objective, progress display, local paths for ``s3://`` URIs)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

from mmdream.cli.provenance import add_like_option
from mmdream.errors import MmdreamError, ParameterError
from mmdream.options import help_text

EXIT_USAGE = 2  # bad options or input (MmdreamError), as argparse does
EXIT_FAILED = 1  # a check the command ran failed (``weights verify``)
EXIT_INTERRUPTED = 130  # Ctrl-C

Params = TypeVar("Params")
Group = argparse.ArgumentParser | argparse._ArgumentGroup
SubParsers = argparse._SubParsersAction  # type: ignore[type-arg]


class UsageErrorParser(argparse.ArgumentParser):
    """Usage errors as one line that points to --help, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _value_type(hint: Any) -> type:
    """The type an option's text converts to: the field's annotation without ``None``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    return hint  # type: ignore[no-any-return]


def _either(words: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return " or ".join(filter(None, [", ".join(words[:-1]), words[-1]]))


def add_dataclass_options(group: Group, cls: type, *, exclude: Collection[str] = (),
                          only: Collection[str] | None = None) -> None:
    """One option ``--field-name`` per field of the params dataclass ``cls`` (those in ``only`` if given, but not
    those in ``exclude``), in field order, with the field's default. Field metadata: ``help`` (required; `` (default:
    X)`` is added unless the default is None, where the help says what None means), ``choices``, ``aliases`` (more
    flags), ``metavar`` (default: N, or the choices), ``type`` (default: the annotation without None), ``const``
    (the value when the option is given without one; the help then lists the other choices). A bool gets
    ``--X/--no-X``. The help with default and range is :func:`mmdream.options.help_text`'s; the bounds themselves
    are checked by the dataclass's ``validate()``."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in exclude or (only is not None and f.name not in only):
            continue
        meta = f.metadata
        flags = [f"--{f.name.replace('_', '-')}", *meta.get("aliases", ())]
        if isinstance(f.default, bool):
            group.add_argument(*flags, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                               help=help_text(cls, f.name))
            continue
        choices = meta.get("choices")
        option: dict[str, Any] = {"type": meta.get("type", _value_type(hints[f.name])), "choices": choices,
                                  "metavar": meta.get("metavar", None if choices else "N")}
        if "const" in meta:
            others = [f"{c} (default when given)" if c == meta["const"] else str(c) for c in choices
                      if c != f.default]
            option.update(nargs="?", const=meta["const"], help=f"{meta['help']}: {_either(others)}")
        else:
            option["help"] = meta["help"] if f.default is None else help_text(cls, f.name)
        group.add_argument(*flags, dest=f.name, default=f.default, **option)


def params_from_args(cls: Callable[..., Params], args: argparse.Namespace, **given: Any) -> Params:
    """The params dataclass ``cls`` filled from the parsed options (fields in ``given`` from there: those whose
    option has another shape), validated."""
    values = {f.name: given[f.name] if f.name in given else getattr(args, f.name)
              for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**values).validate()  # type: ignore[attr-defined, no-any-return]


def positive_int(text: str) -> int:
    """An option value that must be a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be positive")
    return value


def weighted_channels(text: str) -> tuple[tuple[int, float], ...]:
    """A channel list with optional gains, ``12,40:2,7:-1`` -> ``((12, 1.0), (40, 2.0), (7, -1.0))``."""
    from mmdream.objectives.terms import parse_channels

    try:
        return parse_channels(text) or ()
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_progress_option(parser: Group) -> None:
    parser.add_argument("--progress", choices=("bar", "json", "none"), default="bar",
                        help="progress display; json: one object per line on stderr (default: bar)")


def add_backbone_options(parser: Group, default: str | None = "vgg16") -> None:
    """``--backbone`` (required when ``default`` is None), ``--variant``, ``--weights``, ``--weights-file``."""
    from mmdream.backbones import BACKBONES

    parser.add_argument("--backbone", "-b", default=default, required=default is None,
                        help=f"network: {', '.join(BACKBONES)}, or ckpt:PATH (a checkpoint of `mmdream train`)"
                             + (f" (default: {default})" if default else ""))
    parser.add_argument("--variant", default=None,
                        help="weights variant (vgg: caffe [default] or torchvision; see `mmdream layers NAME`)")
    parser.add_argument("--weights", default=None, metavar="DIR",
                        help="folder holding weight files (default: $MMDREAM_WEIGHTS, then the user cache)")
    parser.add_argument("--weights-file", default=None, metavar="FILE", help="load this weights file instead")


def backbone_from_args(args: argparse.Namespace, modality: str | None = None):  # type: ignore[no-untyped-def]
    """The backbone :func:`add_backbone_options`' options name; ``modality``: refuse backbones of another kind
    (image vs audio)."""
    from mmdream.backbones import get_spec, load_backbone

    kind = get_spec(args.backbone).modality
    if modality is not None and kind != modality:
        raise ParameterError(f"{args.backbone} is an {kind} backbone; this command needs an {modality} backbone")
    return load_backbone(args.backbone, variant=args.variant, weights_dir=args.weights,
                         weights_file=args.weights_file)


def add_dream_command(sub: SubParsers, name: str, help_text: str) -> argparse.ArgumentParser:
    """A sub-command with the backbone, objective, size, progress, --like and still-dream options of ``mmdream
    image`` (its positional arguments and ``func`` are the caller's)."""
    from mmdream.dream.image import DreamParams

    p = sub.add_parser(name, help=help_text, description=help_text)
    add_backbone_options(p)
    obj = p.add_argument_group("objective (default: the backbone's classic dream layers)")
    obj.add_argument("--layer", "-l", default=None, metavar="LAYERS",
                     help="layers to amplify, comma list with optional weights: relu4_3:1,relu5_2:0.5 "
                          "(see `mmdream layers NAME`)")
    obj.add_argument("--channel", type=weighted_channels, default=None, metavar="CHANNELS",
                     help="channels of the (single) --layer, comma list with optional gains: 12,40:2,7:-1 "
                          "(a negative gain suppresses the channel)")
    obj.add_argument("--class", dest="class_", default=None, metavar="CLASS",
                     help="dream toward a class, by index or (part of) its name (see `mmdream classes NAME`)")
    obj.add_argument("--guide", default=None, metavar="IMAGE",
                     help="match the features of this guide image at the layers")
    p.add_argument("--size", type=positive_int, default=None, metavar="PX",
                   help="resize so that the longer side is PX pixels (default: keep the input's size)")
    add_progress_option(p)
    add_like_option(p)
    add_dataclass_options(p.add_argument_group("dream options (defaults give a good dream)"), DreamParams)
    return p


def objective_from_args(args: argparse.Namespace, backbone, size: int):  # type: ignore[no-untyped-def]
    """The objective :func:`add_dream_command`'s options ask for, and a JSON-able record of them (for work
    directories)."""
    from mmdream.jobspec.build import build_job_objective, objective_record
    from mmdream.jobspec.plan import NetRef, ObjectiveRef

    spec = ObjectiveRef(layers=args.layer, channels=args.channel, class_=args.class_, guide=args.guide)
    return (build_job_objective(spec, backbone, size),
            objective_record(spec, NetRef(name=backbone.name, variant=backbone.variant), size))


@contextmanager
def progress(mode: str, desc: str, unit: str = "step") -> Iterator[Callable | None]:  # type: ignore[type-arg]
    """The progress callback of ``--progress MODE``: a bar on stderr, JSON lines on stderr, or None."""
    from mmdream.progress import Bar, json_lines

    if mode == "json":
        yield json_lines()
    elif mode == "bar":
        with Bar(desc, unit) as bar:
            yield bar
    else:
        yield None


def report_done(args: argparse.Namespace, **record: Any) -> None:
    """With ``--progress json``: the last line on stderr, ``{"event": "done", **record}``."""
    if args.progress == "json":
        print(json.dumps({"event": "done", **record}), file=sys.stderr)


@contextmanager
def local_io(input_uri: str, output_uri: str) -> Iterator[tuple[str, str]]:
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


@contextmanager
def needs_ray(command: str) -> Iterator[None]:
    """Around a cluster command's import of :mod:`mmdream_cluster`: where Ray is not installed, one line saying so
    (exit status 2) instead of a traceback."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "ray":
            raise
        raise MmdreamError(f"`mmdream {command}` needs Ray, which is not installed here: pip install "
                           "'mmdream[cluster]' (every other command works without it)") from None
