"""`mmdream submit/status/logs/jobs/stop` against a real local Ray head with token authentication on (one head for
the module)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A Ray head (GCS + dashboard/Jobs API) in its own process group, token auth on, HOME in tmp."""
    home = tmp_path_factory.mktemp("head") / "home"
    (home / ".ray").mkdir(parents=True)
    token = secrets.token_hex(16)
    (home / ".ray" / "auth_token").write_text(token)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "token", "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    env.pop("RAY_ADDRESS", None)
    dashboard = free_port()
    ports = [f"--{name}={free_port()}" for name in (
        "port", "dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port",
        "runtime-env-agent-port", "node-manager-port", "object-manager-port")]  # never the defaults: no clashes
    head = subprocess.Popen([f"{bin_dir}/ray", "start", "--head", "--block", *ports, "--node-ip-address=127.0.0.1",
                             "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", "--num-cpus=2",
                             "--include-dashboard=true", "--disable-usage-stats"],
                            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"http://127.0.0.1:{dashboard}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", dashboard), timeout=1):
                break
        except OSError:
            time.sleep(1)
    yield address, env, token
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=3)  # `ray start --block` may outlive SIGTERM for good
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()


def mmdream(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mmdream.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_submit_status_logs(ray_head, tmp_path: Path, media_dir: Path, weights_dir: Path) -> None:  # type: ignore[no-untyped-def]
    address, env, token = ray_head
    out = tmp_path / "film.mp4"
    spec = {"input": str(media_dir / "video" / "bbb_320x180.mp4"), "output": str(out), "weights": str(weights_dir),
            "dream": {"steps": 1, "octaves": 1}, "video": {"frame_steps": 1}, "objective": {"layers": "relu3_3"},
            "film": {"size": 32, "stop": 4}, "resources": {"actors": 1}}
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    sub = mmdream("submit", str(tmp_path / "job.yaml"), "--address", address, env=env)
    assert sub.returncode == 0, sub.stderr
    job_id = json.loads(sub.stdout)["job_id"]
    state = ""
    deadline = time.time() + 240
    while time.time() < deadline and state not in ("SUCCEEDED", "FAILED", "STOPPED"):
        time.sleep(2)
        st = mmdream("status", job_id, "--address", address, env=env)
        assert st.returncode == 0, st.stderr
        state = json.loads(st.stdout)["status"]
    logs = mmdream("logs", job_id, "--address", address, env=env)
    assert state == "SUCCEEDED", logs.stdout[-3000:]
    assert '"event": "done"' in logs.stdout and out.is_file()
    for text in (sub.stdout + sub.stderr, logs.stdout):
        assert token not in text  # the token is never printed
    # Without the token the head refuses, and the error is one clean line without a traceback.
    bare = {**env, "HOME": str(tmp_path), "RAY_AUTH_TOKEN": ""}
    refused = mmdream("status", job_id, "--address", address, env=bare)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr and token not in refused.stderr


def test_jobs_lists_and_stop_stops(ray_head, tmp_path: Path, media_dir: Path, weights_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """A long job shows in `mmdream jobs` with its progress; `mmdream stop` ends it (one JSON line) and writes no
    film; stopping it again says it had ended; an unknown id is one line, exit 2."""
    address, env, _ = ray_head
    out = tmp_path / "long.mp4"
    spec = {"input": str(media_dir / "video" / "bbb_320x180.mp4"), "output": str(out), "weights": str(weights_dir),
            "dream": {"steps": 2, "octaves": 1}, "video": {"frame_steps": 2}, "objective": {"layers": "relu3_3"},
            "film": {"size": 64, "fps": 100}, "resources": {"actors": 1}}  # 528 frames: minutes of work
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(spec))
    sub = mmdream("submit", str(tmp_path / "job.yaml"), "--address", address, env=env)
    assert sub.returncode == 0, sub.stderr
    job_id = json.loads(sub.stdout)["job_id"]
    mine: dict = {}
    deadline = time.time() + 240
    while time.time() < deadline and mine.get("progress") is None:  # the driver's first event (0 frames done)
        time.sleep(2)
        listed = mmdream("jobs", "--json", "--address", address, env=env)
        assert listed.returncode == 0, listed.stderr
        mine = next(j for j in json.loads(listed.stdout) if j["job_id"] == job_id)
    assert mine["status"] == "RUNNING" and mine["output"] == str(out), \
        (mine, mmdream("logs", job_id, "--address", address, env=env).stdout[-3000:])
    assert mine["progress"]["event"] == "progress" and mine["progress"]["total"] >= 528  # with warm-up frames
    table = mmdream("jobs", "--address", address, env=env).stdout.splitlines()
    assert table[0].split()[:2] == ["JOB_ID", "STATUS"]
    row = next(line for line in table if line.startswith(job_id)).split()
    assert row[1] in ("RUNNING", "SUCCEEDED") and row[-1] == str(out)

    stop = mmdream("stop", job_id, "--address", address, env=env)
    assert stop.returncode == 0, stop.stderr
    assert len(stop.stdout.splitlines()) == 1 and json.loads(stop.stdout) == {"job_id": job_id, "status": "STOPPED",
                                                                               "stopped": True}
    again = mmdream("stop", job_id, "--address", address, env=env)
    assert json.loads(again.stdout) == {"job_id": job_id, "status": "STOPPED", "stopped": False}
    assert not out.exists()

    unknown = mmdream("stop", "raysubmit_nosuchjob", "--address", address, env=env)
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.count("\n") == 1 and "no job raysubmit_nosuchjob" in unknown.stderr
