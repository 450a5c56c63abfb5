"""``mmdream info FILE`` and ``--like FILE``: the record every output carries (:mod:`mmdream.provenance`), read
back and repeated.

:func:`register` adds ``info``; :func:`add_like_option` gives a command ``--like``; :func:`prepare` (called by
:func:`mmdream.cli.main` after parsing) fills the options not given on the command line from the like-file's record
and snapshots the options for the command's own record (:func:`record_text`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mmdream.errors import ParameterError

# Options that do not change what is made (where files go, how progress shows), never recorded nor repeated.
UNRECORDED = frozenset({"func", "like", "progress", "weights", "work_dir", "preview", "output", "out", "shown",
                        "invocation"})


@dataclass(frozen=True)
class Invocation:
    """The parsed command: its name (``image``, ``gan walk``), its inputs (positional arguments but the output) and
    its recorded options (everything else that changes the result), as they stood before the command ran."""

    command: str
    inputs: Mapping[str, Any]
    options: Mapping[str, Any]


def add_like_option(parser: argparse.ArgumentParser) -> None:
    """``--like FILE`` on a command that writes a dream."""
    parser.add_argument("--like", default=None, metavar="FILE",
                        help="repeat the settings recorded in FILE (an output of this same command; see `mmdream "
                             "info FILE`); options given on the command line override them")


def _chain(parser: argparse.ArgumentParser, args: argparse.Namespace
           ) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """The (sub-)commands the parsed ``args`` went through, outermost first: (destination, name, parser)."""
    chain: list[tuple[str, str, argparse.ArgumentParser]] = []
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or getattr(args, subs[0].dest, None) is None:
            return chain
        name = getattr(args, subs[0].dest)
        parser = subs[0].choices[name]
        chain.append((subs[0].dest, name, parser))


def _explicit(build_parser: Any, argv: Sequence[str] | None) -> set[str]:
    """Destinations of the options given on the command line (a fresh parser with every default suppressed)."""
    parser = build_parser()
    stack = [parser]
    while stack:
        p = stack.pop()
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
            elif action.option_strings:
                action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv)))


def _restore(value: Any) -> Any:
    """A recorded JSON value as argparse would have made it (lists were tuples)."""
    return tuple(_restore(v) for v in value) if isinstance(value, list) else value


def prepare(parser: argparse.ArgumentParser, build_parser: Any, argv: Sequence[str] | None,
            args: argparse.Namespace) -> None:
    """Apply ``--like`` (if the command has it and it was given) and set ``args.invocation``."""
    from mmdream.provenance import require_record

    chain = _chain(parser, args)
    command = " ".join(name for _, name, _ in chain)
    sub = chain[-1][2] if chain else parser
    positional = {a.dest for a in sub._actions if not a.option_strings} | {dest for dest, _, _ in chain}
    like = getattr(args, "like", None)
    if like is not None:
        record = require_record(like)
        if record["command"] != command:
            raise ParameterError(f"--like {like} was made by `mmdream {record['command']}`; give an output of "
                                 f"`mmdream {command}`")
        explicit = _explicit(build_parser, argv)
        known = vars(args)
        stale = sorted(k for k in record.get("options", {}) if k not in known)
        if stale:
            print(f"mmdream: note: --like {like}: options this version no longer has are ignored: "
                  f"{', '.join(stale)}", file=sys.stderr)
        for dest, value in record.get("options", {}).items():
            if dest in known and dest not in explicit and dest not in positional:
                setattr(args, dest, _restore(value))
    values = vars(args)
    args.invocation = Invocation(
        command=command,
        inputs={k: v for k, v in values.items() if k in positional and k not in UNRECORDED
                and k not in {dest for dest, _, _ in chain}},
        options={k: v for k, v in values.items() if k not in positional and k not in UNRECORDED
                 and not callable(v)})


def record_text(args: argparse.Namespace, *, params: Iterable[Any] = (), networks: Iterable[tuple[str, Any]] = (),
                seed: int | None = None, extra: Mapping[str, Any] | None = None) -> str:
    """The record text of this command's output (:func:`mmdream.provenance.make_record` of ``args.invocation``)."""
    from mmdream.provenance import dumps, make_record

    call: Invocation = args.invocation
    return dumps(make_record(call.command, params=params, options=call.options, networks=networks,
                             inputs=call.inputs, seed=seed, extra=extra))


def cmd_info(args: argparse.Namespace) -> int:
    """Print the record an output carries."""
    from mmdream.provenance import describe, require_record

    record = require_record(args.file)
    print(json.dumps(record, indent=1, sort_keys=True) if args.json else describe(record))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``info`` to the main parser's sub-commands."""
    p = sub.add_parser("info", help="how an output was made: mmdream info FILE",
                       description="Print the record an image, film or sound made by mmdream carries: the command, "
                                   "its options and params, the networks with the sha256 of their weight files, the "
                                   "seed and the mmdream version. A file without a record: exit status 2.")
    p.add_argument("file", help="an image, film or sound (a path or s3:// URI)")
    p.add_argument("--json", action="store_true", help="print the record as JSON")
    p.set_defaults(func=cmd_info)
