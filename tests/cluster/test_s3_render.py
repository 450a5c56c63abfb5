"""A job (frames and sound) with its input, output and checkpoints on a real S3 server (SeaweedFS); a killed driver
resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import yaml

from mmdream.media.video import probe


def test_s3_job_resumes_after_the_driver_is_killed(s3_server, media_dir: Path, weights_dir: Path,  # type: ignore[no-untyped-def]
                                                   tmp_path: Path) -> None:
    s3, bucket = s3_server.client(), s3_server.bucket
    root = f"s3-render-{uuid.uuid4().hex[:8]}"  # the server and bucket are shared by the session's S3 tests
    s3.upload_file(str(media_dir / "video" / "bbb_320x180.mp4"), bucket, f"{root}/in/bbb.mp4")
    spec = {"input": f"s3://{bucket}/{root}/in/bbb.mp4", "output": f"s3://{bucket}/{root}/out/film.mp4",
            "work": f"s3://{bucket}/{root}/work/film", "weights": str(weights_dir),
            "dream": {"steps": 2, "octaves": 2}, "video": {"frame_steps": 1}, "objective": {"layers": "relu4_3"},
            "film": {"size": 64, "stop": 24}, "sharding": {"frames_per_shard": 8, "warmup": 4, "crossfade": 2},
            "resources": {"actors": 2}, "audio": {"objective": {"class": "Bark"}, "dream": {"steps": 1, "warps": 1}}}
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(spec))
    env = {**os.environ, **s3_server.env}
    command = [sys.executable, "-m", "mmdream.cli", "render", str(job), "--progress", "json"]

    def checkpoints() -> int:
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{root}/work/film/")
        return sum(o["Key"].endswith(".png") for o in listing.get("Contents", []))

    first = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while checkpoints() < 6 and time.time() < deadline and first.poll() is None:
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)  # the driver and the local Ray it started
    first.wait()
    done_before = checkpoints()
    assert 6 <= done_before < 32 and "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix=f"{root}/out/")

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    events = [json.loads(line) for line in rerun.stderr.splitlines() if line.startswith("{")]
    assert events[0]["step"] >= done_before  # resumed from the checkpoints, not from scratch
    s3.download_file(bucket, f"{root}/out/film.mp4", str(tmp_path / "film.mp4"))
    info = probe(tmp_path / "film.mp4")
    assert info.frame_count == 24 and info.audio is not None
    sound = s3.list_objects_v2(Bucket=bucket, Prefix=f"{root}/work/film/sound/")["Contents"]
    assert {o["Key"].rsplit("/", 1)[1] for o in sound} == {"settings.json", "00000.npy"}  # the dreamed sound's segment
    assert s3_server.secret_key not in rerun.stderr
