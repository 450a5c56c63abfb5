"""`mmdream submit/status/logs` against a real local Ray head with token authentication on."""

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


@pytest.fixture
def ray_head(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A Ray head (GCS + dashboard/Jobs API) in its own process group, token auth on, HOME in tmp."""
    home = tmp_path / "home"
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
        head.wait(timeout=20)
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
