"""``--draft`` for the commands that render films (``video``, ``zoom``, ``render``): the options, and the steps
around the draft's render (its film and work location, then the contact sheet, the draft's own work location
removed unless it was asked for)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from mmdream.cli.common import add_dataclass_options
from mmdream.media import storage
from mmdream.pipelines.draft import DraftParams, DraftPaths, contact_sheet, draft_paths

__all__ = ["add_draft_options", "draft_params", "start_draft", "finish_draft", "render_draft"]


def add_draft_options(parser: argparse.ArgumentParser) -> None:
    """``--draft``, ``--draft-every N`` and ``--draft-scale S`` (defaults from :class:`DraftParams`)."""
    group = parser.add_argument_group("a quick look first (mmdream.pipelines.draft)")
    defaults = DraftParams()
    group.add_argument("--draft", action="store_true",
                       help=f"render a draft instead: the same settings on every {defaults.draft_every}th frame "
                            f"(--draft-every) at {defaults.draft_scale:g}x the size (--draft-scale), written as "
                            "OUT.draft.mp4 and a contact sheet OUT.draft.png, with checkpoints apart from the full "
                            "render's")
    add_dataclass_options(group, DraftParams)


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


def render_draft(args: argparse.Namespace, input_uri: str, convert: Callable[[str], Any],
                 run: Callable[[argparse.Namespace, Any], int]) -> int:
    """Render a draft of the render ``args`` describe (``args.output``, ``args.work_dir``): ``convert(local path of
    input_uri)`` gives the draft's settings, ``run(args, settings)`` renders them into the draft's film and work
    location; then its contact sheet."""
    from mmdream.media.sequence import local_media_input
    from mmdream.media.video import probe

    work_given = args.work_dir is not None
    paths = start_draft(args)
    args.work_dir, args.preview = paths.work, None
    with local_media_input(input_uri) as input_path:
        settings = convert(str(input_path))
    run(args, settings)
    finish_draft(args, paths, work_given, probe(paths.film).frame_count if not storage.is_s3(paths.film) else 0)
    return 0
