"""``--draft`` for the commands that render films (``video``, ``zoom``, ``render``): the options, and the last step
(the contact sheet, the draft's own work location removed unless it was asked for)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from mmdream.pipelines.draft import DraftParams, DraftPaths, contact_sheet, draft_paths
from mmdream.media import storage
from mmdream.options import help_text

__all__ = ["add_draft_options", "draft_params", "start_draft", "finish_draft"]


def add_draft_options(parser: argparse.ArgumentParser) -> None:
    """``--draft``, ``--draft-every N`` and ``--draft-scale S`` (defaults from :class:`DraftParams`)."""
    group = parser.add_argument_group("a quick look first (mmdream.pipelines.draft)")
    defaults = DraftParams()
    group.add_argument("--draft", action="store_true",
                       help=f"render a draft instead: the same settings on every {defaults.draft_every}th frame "
                            f"(--draft-every) at {defaults.draft_scale:g}x the size (--draft-scale), written as "
                            "OUT.draft.mp4 and a contact sheet OUT.draft.png, with checkpoints apart from the full "
                            "render's")
    for f in dataclasses.fields(DraftParams):
        group.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=f.default, metavar="N",
                           help=help_text(DraftParams, f.name))


def draft_params(args: argparse.Namespace) -> DraftParams:
    return DraftParams(draft_every=args.draft_every, draft_scale=args.draft_scale).validate()


def start_draft(args: argparse.Namespace) -> DraftPaths:
    """Point ``args.output`` and ``args.work_dir`` at the draft's film and work location; return the paths."""
    paths = draft_paths(args.output, args.work_dir)
    args.output = paths.film
    return paths


def finish_draft(args: argparse.Namespace, paths: DraftPaths, work_given: bool, frames: int) -> None:
    """Write the contact sheet from the draft film, drop the draft's work location unless ``work_given``, report."""
    contact_sheet(paths.film, paths.sheet)
    if not work_given:
        storage.remove_tree(paths.work)
    print(json.dumps({"event": "draft", "film": paths.film, "sheet": paths.sheet, "frames": frames}),
          file=sys.stderr)
