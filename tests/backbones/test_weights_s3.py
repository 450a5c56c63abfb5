"""Weights from an ``s3://`` weights directory (a real SeaweedFS bucket): copied into the cache once, re-used
while the sizes match, the official file checked against its sha256, fall-through when the bucket has none."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import pytest

from mmdream.backbones import load_backbone
from mmdream.backbones.weights import Download, WeightFile, cache_dir, resolve
from mmdream.errors import WeightsError
from mmdream.media import storage


@pytest.fixture
def s3(s3_server, monkeypatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Environment pointed at the local server, an empty user cache, and a fresh weights prefix."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MMDREAM_WEIGHTS", raising=False)
    return s3_server


@pytest.fixture
def prefix(s3) -> str:  # type: ignore[no-untyped-def]
    return f"s3://{s3.bucket}/weights-{secrets.token_hex(4)}"


@pytest.fixture
def downloads(monkeypatch) -> list[str]:  # type: ignore[no-untyped-def]
    """URIs passed to storage.download, in order."""
    calls: list[str] = []
    real = storage.download

    def counting(uri, path):  # type: ignore[no-untyped-def]
        calls.append(str(uri))
        return real(uri, path)

    monkeypatch.setattr(storage, "download", counting)
    return calls


def test_backbone_from_s3_downloads_once(weights_dir: Path, prefix: str, downloads: list[str]) -> None:
    source = weights_dir / "efficientnet_lite0.safetensors"
    storage.upload(source, storage.join(prefix, "efficientnet_lite0.safetensors"))
    backbone = load_backbone("efficientnet_lite0", weights_dir=prefix)  # strict load: every tensor fits
    cached = cache_dir() / "efficientnet_lite0.safetensors"
    assert downloads == [f"{prefix}/efficientnet_lite0.safetensors"]
    assert hashlib.sha256(cached.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    assert backbone.module.training is False
    inode = cached.stat().st_ino
    spec = WeightFile(("efficientnet_lite0.safetensors", "efficientnet-lite0-57934424.pth"))
    assert resolve(spec, weights_dir=prefix) == cached
    assert len(downloads) == 1 and cached.stat().st_ino == inode  # re-used, not fetched again


def test_changed_size_is_fetched_again(prefix: str, downloads: list[str]) -> None:
    spec = WeightFile(("tiny.safetensors",))
    storage.write_bytes(f"{prefix}/tiny.safetensors", b"abc")
    assert resolve(spec, weights_dir=prefix).read_bytes() == b"abc"
    storage.write_bytes(f"{prefix}/tiny.safetensors", b"abcd")
    assert resolve(spec, weights_dir=prefix).read_bytes() == b"abcd"
    assert resolve(spec, weights_dir=prefix).read_bytes() == b"abcd"
    assert len(downloads) == 2


def test_official_file_is_checked_against_its_sha256(prefix: str) -> None:
    data = b"official weights"
    good = hashlib.sha256(data).hexdigest()[:8]
    spec = WeightFile(("m.safetensors", f"m-{good}.pth"),
                      (Download(url=f"https://example.invalid/m-{good}.pth", sha256=good, convert="pth"),))
    storage.write_bytes(f"{prefix}/m-{good}.pth", data)
    assert resolve(spec, weights_dir=prefix).read_bytes() == data
    bad = WeightFile(("b.safetensors", "b-deadbeef.pth"),
                     (Download(url="https://example.invalid/b-deadbeef.pth", sha256="deadbeef", convert="pth"),))
    storage.write_bytes(f"{prefix}/b-deadbeef.pth", data)
    with pytest.raises(WeightsError, match="expected deadbeef"):
        resolve(bad, weights_dir=prefix)
    assert sorted(p.name for p in cache_dir().iterdir()) == [f"m-{good}.pth"]  # nothing left of the bad one


def test_none_in_bucket_falls_through_to_the_cache(prefix: str) -> None:
    spec = WeightFile(("absent.safetensors",), (Download(url="https://example.invalid/absent.pth", sha256="00"),))
    with pytest.raises(WeightsError, match=f"MMDREAM_OFFLINE=1 forbids.*in {prefix} or "):
        resolve(spec, weights_dir=prefix)
    cache_dir().mkdir(parents=True)
    (cache_dir() / "absent.safetensors").write_bytes(b"cached")
    assert resolve(spec, weights_dir=prefix) == cache_dir() / "absent.safetensors"


def test_missing_bucket_is_an_error(s3) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WeightsError, match="bucket 'no-such-bucket-mmdream' does not exist"):
        resolve(WeightFile(("x.safetensors",)), weights_dir="s3://no-such-bucket-mmdream/weights")


def test_denied_access_is_a_weights_error_without_the_secret(prefix: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    wrong = "WrongSecret" + secrets.token_hex(12)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    with pytest.raises(WeightsError, match="access denied") as info:
        resolve(WeightFile(("x.safetensors",)), weights_dir=prefix)
    assert wrong not in str(info.value)
