"""``mmdream submit|status|logs|stop|jobs``: job specs on a Ray cluster through the Ray Jobs API
(:mod:`mmdream_cluster.jobs_api`, imported only when a command runs, so that mmdream works without Ray)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from mmdream.cli.common import SubParsers, needs_ray
from mmdream.progress import say

DEFAULT_ADDRESS = "http://127.0.0.1:8265"


def _add_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS", DEFAULT_ADDRESS),
                        help=f"Ray Jobs API of the cluster head (default: $RAY_ADDRESS or {DEFAULT_ADDRESS})")


def cmd_submit(args: argparse.Namespace) -> int:
    """Submit a job spec to a Ray cluster through the Jobs API, once it passed the preflight here (the cluster's
    render checks again on its side)."""
    from mmdream.jobspec.plan import compile_plan
    from mmdream.jobspec.schema import load_job
    from mmdream.jobspec.preflight import check_job

    check_job(compile_plan(load_job(args.job)), local_ray=False, say=say)
    with needs_ray("submit"):
        from mmdream_cluster import jobs_api

    env = {k: os.environ[k] for k in ("MMDREAM_WEIGHTS", "MMDREAM_S3_ENDPOINT") if os.environ.get(k)}
    job_id = jobs_api.submit(args.job, args.address, env=env)
    print(json.dumps({"job_id": job_id, "address": args.address}))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with needs_ray("status"):
        from mmdream_cluster import jobs_api

    print(json.dumps(jobs_api.status(args.job_id, args.address), indent=1))
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    with needs_ray("logs"):
        from mmdream_cluster import jobs_api

    sys.stdout.write(jobs_api.logs(args.job_id, args.address))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    with needs_ray("stop"):
        from mmdream_cluster import jobs_api

    print(json.dumps(jobs_api.stop(args.job_id, args.address)))
    return 0


def _progress_text(event: dict[str, Any] | None) -> str:
    if event is None:
        return "-"
    if event.get("event") == "done":
        return "done"
    return f"{event['step']}/{event['total']} {event['stage']}"


def cmd_jobs(args: argparse.Namespace) -> int:
    with needs_ray("jobs"):
        from mmdream_cluster import jobs_api

    jobs = jobs_api.list_jobs(args.address)
    if args.json:
        print(json.dumps(jobs, indent=1))
        return 0
    rows = [("JOB_ID", "STATUS", "STARTED (UTC)", "PROGRESS", "OUTPUT")]
    rows += [(j["job_id"], j["status"], j["start_time"] or "-", _progress_text(j["progress"]), j["output"])
             for j in jobs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    return 0


def register(sub: SubParsers) -> None:
    """Add the cluster job commands to ``mmdream``'s sub-commands."""
    p = sub.add_parser("submit", help="submit a job spec to a Ray cluster (Jobs API); prints the job id")
    p.add_argument("job", help="job spec (YAML); its input/output should be s3:// on a multi-node cluster")
    p.set_defaults(func=cmd_submit)
    p = sub.add_parser("status", help="status of a submitted job")
    p.add_argument("job_id")
    p.set_defaults(func=cmd_status)
    p = sub.add_parser("logs", help="logs of a submitted job")
    p.add_argument("job_id")
    p.set_defaults(func=cmd_logs)
    p = sub.add_parser("stop", help="stop a submitted job: mmdream stop JOB_ID (one JSON line)",
                       description="Stop a submitted job and wait (up to 30 s) for it to end; prints one JSON line "
                                   "{job_id, status, stopped}. Its checkpoints stay in the work location, so "
                                   "submitting the same spec again resumes it.")
    p.add_argument("job_id")
    p.set_defaults(func=cmd_stop)
    p = sub.add_parser("jobs", help="list the jobs submitted to a Ray cluster: id, state, start, progress",
                       description="The jobs mmdream submitted to the cluster, oldest first: id, state, start time "
                                   "(UTC), progress of running jobs (their last progress event: done/total units "
                                   "and stage) and output.")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=cmd_jobs)
    for name in ("submit", "status", "logs", "stop", "jobs"):
        _add_address(sub.choices[name])
