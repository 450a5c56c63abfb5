"""Submitting job specs to a Ray cluster through the Ray Jobs API, following, stopping and listing them.

Ray's token authentication is on by default: the token is read from Ray's usual places (``RAY_AUTH_TOKEN``, the
file named by ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``) and sent as a bearer header; it is never printed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ray.job_submission import JobSubmissionClient

from mmdream.errors import MmdreamError, ParameterError
from mmdream.jobspec.schema import load_job


def ray_token() -> str | None:
    """The Ray auth token from the environment or Ray's token file, if any."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    return path.read_text().strip() if path.is_file() else None


def client(address: str) -> JobSubmissionClient:
    token = ray_token()
    headers = {"Authorization": f"Bearer {token}"} if token else None
    try:
        return JobSubmissionClient(address, headers=headers)
    except Exception as exc:  # ray raises ConnectionError/RuntimeError/ValueError variously
        raise ParameterError(f"cannot reach the Ray Jobs API at {address} ({type(exc).__name__}); is the head "
                             "running with its dashboard, and is the address http://HEAD:8265?") from None


def _call(address: str, what: str, fn, *args: Any, **kwargs: Any) -> Any:  # type: ignore[no-untyped-def]
    """Call the Jobs API; its failures (refused token, unknown job, ...) become one-line errors."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # the Jobs client raises RuntimeError/ValueError with the server's reply
        reason = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise MmdreamError(f"Ray Jobs API at {address}: {what} failed: {reason}") from None


def submit(job_path: str | os.PathLike[str], address: str, *, env: dict[str, str] | None = None,
           retry_s: float = 60.0) -> str:
    """Submit ``mmdream render`` of a job spec; the spec travels in the job's working directory. Returns the id.

    While a freshly started head has no job agent yet, the submission is retried for up to ``retry_s`` seconds.
    """
    job = load_job(job_path)  # validate before sending anything
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(job_path, Path(d) / "job.yaml")
        jobs = client(address)
        deadline = time.monotonic() + retry_s
        while True:  # a head that has just started answers "no available agent ... try again later" for a while
            try:
                return _call(address, "submit", jobs.submit_job,
                             entrypoint="mmdream render job.yaml --address auto --progress json",
                             runtime_env={"working_dir": d, "env_vars": dict(env or {})},
                             metadata={"mmdream_output": job.output})
            except MmdreamError as exc:
                if "try again later" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(2)


ENDED = ("SUCCEEDED", "FAILED", "STOPPED")  # the Jobs API's terminal states


def _info(jobs: JobSubmissionClient, job_id: str, address: str) -> Any:
    """The Jobs API's record of ``job_id``; an unknown id is a one-line error that says how to list them."""
    try:
        return _call(address, f"status of {job_id}", jobs.get_job_info, job_id)
    except MmdreamError as exc:
        if "does not exist" in str(exc):
            raise ParameterError(f"no job {job_id} on the cluster at {address}; list them with `mmdream jobs`") \
                from None
        raise


def status(job_id: str, address: str) -> dict[str, Any]:
    info = _info(client(address), job_id, address)
    return {"job_id": job_id, "status": str(info.status.value), "message": info.message,
            "entrypoint": info.entrypoint, "start_time": info.start_time, "end_time": info.end_time}


def logs(job_id: str, address: str) -> str:
    return _call(address, f"logs of {job_id}", client(address).get_job_logs, job_id)


def stop(job_id: str, address: str, *, wait_s: float = 30.0) -> dict[str, Any]:
    """Stop a submitted job (its driver is signalled; its actors go with it; the checkpoints stay, so submitting
    the same spec again resumes) and wait up to ``wait_s`` for it to end. Returns its id, state and whether this
    call stopped it (False: it had already ended)."""
    jobs = client(address)
    before = str(_info(jobs, job_id, address).status.value)
    stopped = before not in ENDED and bool(_call(address, f"stop of {job_id}", jobs.stop_job, job_id))
    state, deadline = before, time.monotonic() + wait_s
    while stopped and time.monotonic() < deadline:
        state = str(_info(jobs, job_id, address).status.value)
        if state in ENDED:
            break
        time.sleep(0.5)
    return {"job_id": job_id, "status": state, "stopped": stopped}


def last_progress(log: str) -> dict[str, Any] | None:
    """The last progress or done event (``--progress json`` lines) in a job's log, if any."""
    for line in reversed(log.splitlines()):
        if line.startswith('{"event": "progress"') or line.startswith('{"event": "done"'):
            try:
                return dict(json.loads(line))
            except ValueError:
                continue
    return None


def list_jobs(address: str) -> list[dict[str, Any]]:
    """The jobs mmdream submitted to the cluster, oldest first: id, state, start time (UTC, ISO 8601), output and,
    for running jobs, their last progress event."""
    jobs = client(address)
    out = []
    for info in sorted(_call(address, "list", jobs.list_jobs), key=lambda i: i.start_time or 0):
        output = (info.metadata or {}).get("mmdream_output")
        if output is None or info.submission_id is None:
            continue  # not submitted by mmdream
        state = str(info.status.value)
        started = None if not info.start_time else datetime.fromtimestamp(
            info.start_time / 1000, timezone.utc).isoformat(timespec="seconds")
        progress = None
        if state == "RUNNING":
            progress = last_progress(_call(address, f"logs of {info.submission_id}", jobs.get_job_logs,
                                           info.submission_id))
        out.append({"job_id": info.submission_id, "status": state, "start_time": started, "output": output,
                    "progress": progress})
    return out
