"""Errors met on the nodes of a multi-node cluster end the job in seconds with one line naming the node and the
cause, exit 2, no traceback: nodes without the S3 credentials the driver has, a corrupt weights file on the
actors' side (the probe finds both before any dreaming); local paths on a multi-node cluster are refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

CORRUPT = "vgg16_caffe_features.safetensors"


@pytest.fixture(scope="module")
def bare_cluster(weights_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator:  # type: ignore[type-arg]
    """Two 1-CPU nodes (and a head without CPUs) whose processes have no S3 credentials and whose weights folder
    (``MMDREAM_WEIGHTS``) holds a truncated copy of VGG16's file."""
    from ray.cluster_utils import Cluster

    corrupt = tmp_path_factory.mktemp("corrupt-weights")
    for f in weights_dir.iterdir():
        if f.name != CORRUPT:
            (corrupt / f.name).symlink_to(f)
    with open(weights_dir / CORRUPT, "rb") as f:
        (corrupt / CORRUPT).write_bytes(f.read(1 << 20))
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[key]
    os.environ["MMDREAM_WEIGHTS"] = str(corrupt)
    try:  # the nodes' processes inherit this environment
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        for _ in range(2):
            c.add_node(num_cpus=1)
        c.wait_for_nodes()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    yield c
    c.shutdown()
    shutil.rmtree(corrupt, ignore_errors=True)


def spec(media_dir: Path, **locations: object) -> dict:
    return {"dream": {"steps": 2, "octaves": 2}, "video": {"frame_steps": 1}, "objective": {"layers": "relu4_3"},
            "film": {"size": 64, "stop": 6}, "sharding": {"frames_per_shard": 3, "warmup": 2, "crossfade": 1},
            "resources": {"actors": 2}, **locations}


def render(cluster, job: dict, tmp_path: Path, env: dict[str, str]) -> tuple[int, list[str], float]:  # type: ignore[no-untyped-def]
    """`mmdream render` on the cluster as a separate driver with the good weights; (exit, stderr lines, seconds)."""
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "mmdream.cli", "render", str(tmp_path / "job.yaml"), "--address",
                          cluster.address], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **env, "MMDREAM_WEIGHTS": os.environ["MMDREAM_WEIGHTS"]})
    return run.returncode, run.stderr.splitlines(), time.monotonic() - start


def one_error_line(lines: list[str]) -> str:
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    errors = [line for line in lines if line.startswith("mmdream: error:")]
    assert len(errors) == 1, "\n".join(lines)
    return errors[0]


def test_nodes_without_s3_credentials_fail_in_seconds_with_one_line(bare_cluster, s3_server,  # type: ignore[no-untyped-def]
                                                                     media_dir: Path, tmp_path: Path) -> None:
    s3, bucket = s3_server.client(), s3_server.bucket
    s3.upload_file(str(media_dir / "video" / "bbb_320x180.mp4"), bucket, "nocreds/in.mp4")
    job = spec(media_dir, input=f"s3://{bucket}/nocreds/in.mp4", output=f"s3://{bucket}/nocreds/out.mp4",
               work=f"s3://{bucket}/nocreds/work")
    code, lines, seconds = render(bare_cluster, job, tmp_path, s3_server.env)
    error = one_error_line(lines)
    assert code == 2 and "on node" in error and "no S3 credentials" in error and "nocreds/in.mp4" in error, error
    print(f"\nno credentials on the nodes: exit {code} after {seconds:.1f} s: {error}")
    assert seconds < 120
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="nocreds/")
    assert [o["Key"] for o in listing.get("Contents", [])] == ["nocreds/in.mp4"]  # nothing written


def test_a_corrupt_weights_file_on_the_nodes_fails_in_seconds_naming_it(bare_cluster, media_dir: Path,  # type: ignore[no-untyped-def]
                                                                       tmp_path: Path) -> None:
    job = spec(media_dir, input=str(media_dir / "video" / "bbb_320x180.mp4"), output=str(tmp_path / "out.mp4"),
               work=str(tmp_path / "work"), shared_filesystem=True)
    code, lines, seconds = render(bare_cluster, job, tmp_path, {})
    error = one_error_line(lines)
    assert code == 2 and "on node" in error and CORRUPT in error, error
    print(f"\ncorrupt weights on the nodes: exit {code} after {seconds:.1f} s: {error}")
    assert seconds < 120
    assert not (tmp_path / "out.mp4").exists() and not list((tmp_path / "work").glob("frames-*"))


def test_local_paths_are_refused_on_a_multi_node_cluster(bare_cluster, media_dir: Path,  # type: ignore[no-untyped-def]
                                                        tmp_path: Path) -> None:
    job = spec(media_dir, input=str(media_dir / "video" / "bbb_320x180.mp4"), output=str(tmp_path / "out.mp4"))
    code, lines, _ = render(bare_cluster, job, tmp_path, {})
    error = one_error_line(lines)
    assert code == 2 and "is a local path" in error and "s3://" in error and "shared_filesystem: true" in error
    assert not list(tmp_path.glob(".out.mp4.work*")) and not (tmp_path / "out.mp4").exists()
