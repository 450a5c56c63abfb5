"""``mmdream render JOB.yaml``: a job spec rendered on Ray (:mod:`mmdream_cluster.driver`, imported only when the
command runs, so that mmdream works without Ray), with the compute options it passes on to its actors."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mmdream.backbones.compute import ComputeParams
from mmdream.cli.common import (EXIT_INTERRUPTED, SubParsers, add_progress_option, needs_ray, positive_int,
                                progress, report_done)
from mmdream.cli.draft import add_draft_options, draft_params, render_draft
from mmdream.progress import say

if TYPE_CHECKING:
    from mmdream.jobspec.plan import RenderPlan

__all__ = ["register", "cmd_render", "add_compute_options", "compute_overrides"]


def add_compute_options(parser: argparse.ArgumentParser) -> None:
    """``--precision`` and ``--channels-last``, overriding the job spec's ``compute`` section when given."""
    group = parser.add_argument_group("compute (override the job spec's compute section)")
    for f in dataclasses.fields(ComputeParams):
        flag = f"--{f.name.replace('_', '-')}"
        shown = f.default if not isinstance(f.default, bool) else ("on" if f.default else "off")
        text = f"{f.metadata['help']} (default: the job spec's, else {shown})"
        if isinstance(f.default, bool):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            group.add_argument(flag, dest=f.name, choices=f.metadata.get("choices"), default=None, help=text)


def compute_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The job spec overrides (``compute.precision``, ...) of :func:`add_compute_options`' options; None: unset."""
    return {f"compute.{f.name}": getattr(args, f.name) for f in dataclasses.fields(ComputeParams)}


def cmd_render(args: argparse.Namespace) -> int:
    """Render a job spec on Ray (a local single-node Ray unless --address is given; ``--draft``: a draft of it)."""
    from mmdream.jobspec.plan import compile_plan
    from mmdream.jobspec.preflight import check_job
    from mmdream.jobspec.schema import load_job

    job = load_job(args.job).with_overrides(**{"input": args.input, "output": args.output,
                                                "resources.actors": args.workers, **compute_overrides(args)})
    plan = compile_plan(job)
    check_job(plan, local_ray=args.address is None, say=say)  # before Ray is imported or anything is written
    with needs_ray("render"):
        from mmdream_cluster.driver import render_job
    if args.draft:
        from mmdream.media.samples import resolve
        from mmdream.pipelines.draft import DraftPaths, draft_job

        args.output, args.work_dir = job.output, job.work
        job = job.with_overrides(input=resolve(job.input))

        def convert(path: str) -> object:
            draft = draft_job(job, path, draft_params(args), DraftPaths(args.output, "", args.work_dir))
            return compile_plan(draft)

        return render_draft(args, job.input, convert,
                            lambda draft_args, draft: _render(draft_args, draft, render_job))
    return _render(args, plan, render_job)


def _render(args: argparse.Namespace, plan: RenderPlan, render_job: Callable[..., Any]) -> int:
    """Render the (checked) job's ``plan`` on Ray with ``render_job`` (:func:`mmdream_cluster.driver.render_job`);
    Ctrl-C stops the actors and keeps the checkpoints."""
    uris = plan.uris
    print(f"rendering {uris.input} -> {uris.output} on {args.address or 'a local Ray'}", file=sys.stderr)
    desc, unit = ("sound segments", "segment") if plan.kind == "audio" else ("frames", "frame")
    try:
        with progress(args.progress, desc, unit=unit) as on_unit:
            out = render_job(plan, address=args.address, shards=args.shards, progress=on_unit)
    except KeyboardInterrupt:  # the actors are stopped on the way out; the checkpoints stay
        resume = shlex.join(["mmdream", *sys.argv[1:]])
        print(f"mmdream: interrupted: actors stopped, checkpoints kept in {uris.work}; resume with: {resume}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    report_done(args, output=str(out))
    return 0


def register(sub: SubParsers) -> None:
    """Add ``render`` to ``mmdream``'s sub-commands."""
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
    p.add_argument("--shards", type=positive_int, default=None, help="split the frames into this many "
                   "shards (default: by sharding.frames_per_shard)")
    p.add_argument("--workers", type=positive_int, default=None, help="override resources.actors")
    add_progress_option(p)
    add_draft_options(p)
    add_compute_options(p)
    p.set_defaults(func=cmd_render)
