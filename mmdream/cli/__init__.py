"""``mmdream`` command line: one module per command family, each with ``register(sub)`` adding its sub-commands
and the ``cmd_*`` functions they run; :mod:`mmdream.cli.common` holds what they share (options generated from
the params dataclasses, backbone, objective and progress options). The cluster commands (``render``, ``submit``,
...) import :mod:`mmdream_cluster` only when they run: every other command works without Ray."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mmdream.cli import analyze, audio, gan, image, jobs, networks, provenance, render, train, video, weights, zoom
from mmdream.cli.common import EXIT_INTERRUPTED, EXIT_USAGE, UsageErrorParser
from mmdream.errors import MmdreamError

__all__ = ["build_parser", "main"]

DESCRIPTION = """mmdream: multimodal Deep Dreams.

Pixels go in and out as plain RGB; each backbone does its own preprocessing. Weights are looked up in --weights DIR
(or $MMDREAM_WEIGHTS), then ~/.cache/mmdream/weights, then downloaded from the official source
(MMDREAM_OFFLINE=1 forbids that)."""

# In the order `mmdream --help` lists their commands.
FAMILIES = (image, video, audio, render, networks, train, jobs, gan, analyze, provenance, zoom, weights)


def build_parser() -> argparse.ArgumentParser:
    """The ``mmdream`` parser: every family's sub-commands."""
    parser = UsageErrorParser(prog="mmdream", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in FAMILIES:
        family.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mmdream ARGV``; returns the exit status (errors: one line on stderr, status 2)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        provenance.prepare(parser, build_parser, argv, args)
        return int(args.func(args))
    except MmdreamError as exc:
        print(f"mmdream: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("mmdream: interrupted; no output was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `mmdream classes yamnet | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
