"""Storage URIs: the same round trips on a local folder and on a real SeaweedFS bucket; join's refusals; failures
leave nothing behind; errors never carry credentials."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from mmdream.errors import MediaError, ParameterError
from mmdream.media import storage


@pytest.fixture
def s3(s3_server, monkeypatch):  # type: ignore[no-untyped-def]
    """The test's environment pointed at the local server."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path: Path) -> str:  # type: ignore[no-untyped-def]
    """A fresh job prefix: a local folder, or a prefix in the test bucket."""
    if request.param == "local":
        return str(tmp_path / "job")
    server = request.getfixturevalue("s3")
    return f"s3://{server.bucket}/jobs/{secrets.token_hex(4)}"


def test_is_s3_and_split() -> None:
    assert storage.is_s3("s3://b/k") and not storage.is_s3("/tmp/s3://x") and not storage.is_s3(Path("s3:/b"))
    assert storage.split_s3("s3://bucket/a/b.png") == ("bucket", "a/b.png")
    assert storage.split_s3("s3://bucket") == ("bucket", "")
    with pytest.raises(ParameterError, match="names no bucket"):
        storage.split_s3("s3:///key")
    with pytest.raises(ParameterError, match="not an s3:// URI"):
        storage.split_s3("/local/path")


def test_join() -> None:
    assert storage.join("s3://b/jobs/1/", "frames", "f0001.png") == "s3://b/jobs/1/frames/f0001.png"
    assert storage.join("s3://b", "a/./b//c") == "s3://b/a/b/c"
    assert storage.join("/out/job", "frames/f.png") == "/out/job/frames/f.png"


@pytest.mark.parametrize("part", ["..", "a/../../b", "/etc/passwd", "s3://other-bucket/k", "a\\b", "C:/x"])
@pytest.mark.parametrize("prefix", ["s3://b/job", "/out/job"])
def test_join_refuses_escapes(prefix: str, part: str) -> None:
    with pytest.raises(ParameterError, match="under the prefix"):
        storage.join(prefix, "ok", part)


def test_round_trip(root: str) -> None:
    assert not storage.exists(root) and storage.listdir(root) == []
    storage.write_bytes(storage.join(root, "a.bin"), b"\x00\x01\xff")
    storage.write_text(storage.join(root, "sub", "deep", "b.txt"), "grüße\n")
    storage.write_text(storage.join(root, "c.json"), "{}")
    assert storage.read_bytes(storage.join(root, "a.bin")) == b"\x00\x01\xff"
    assert storage.read_text(storage.join(root, "sub/deep/b.txt")) == "grüße\n"
    assert storage.listdir(root) == ["a.bin", "c.json", "sub"]
    assert storage.listdir(storage.join(root, "sub")) == ["deep"]
    assert storage.exists(root) and storage.exists(storage.join(root, "sub"))
    assert storage.exists(storage.join(root, "c.json")) and not storage.exists(storage.join(root, "nope"))
    assert storage.size(storage.join(root, "a.bin")) == 3 and storage.size(storage.join(root, "nope")) is None
    storage.write_text(storage.join(root, "c.json"), "[1]")  # overwrite
    assert storage.read_text(storage.join(root, "c.json")) == "[1]"
    storage.remove_tree(storage.join(root, "sub") + "/")
    assert storage.listdir(root) == ["a.bin", "c.json"]
    storage.remove_tree(root)
    assert not storage.exists(root) and storage.listdir(root) == []
    storage.remove_tree(root)  # missing: no-op


def test_read_missing_names_the_uri(root: str) -> None:
    missing = storage.join(root, "missing.png")
    with pytest.raises(MediaError, match="missing.png does not exist"):
        storage.read_bytes(missing)
    with pytest.raises(MediaError, match="missing.png does not exist"):
        with storage.local_input(missing):
            pass


def test_local_output_leaves_nothing_on_failure(root: str) -> None:
    target = storage.join(root, "out", "frame.png")
    with pytest.raises(RuntimeError):
        with storage.local_output(target) as tmp:
            tmp.write_bytes(b"half a frame")
            raise RuntimeError("render failed")
    assert not storage.exists(target) and not tmp.exists()
    assert storage.listdir(storage.join(root, "out")) == []  # no stray temporary either
    with storage.local_output(target) as tmp:
        assert tmp.suffix == ".png"
        tmp.write_bytes(b"whole frame")
    assert storage.read_bytes(target) == b"whole frame" and not tmp.exists()


def test_local_input_and_copies(root: str, tmp_path: Path) -> None:
    uri = storage.join(root, "clip.wav")
    storage.write_bytes(uri, b"RIFF....")
    with storage.local_input(uri) as path:
        assert path.suffix == ".wav" and path.read_bytes() == b"RIFF...."
    assert path.exists() == (not storage.is_s3(uri))  # a downloaded copy is deleted afterwards
    copy = storage.download(uri, tmp_path / "here" / "clip.wav")
    assert copy.read_bytes() == b"RIFF...."
    storage.upload(copy, storage.join(root, "back.wav"))
    assert storage.read_bytes(storage.join(root, "back.wav")) == b"RIFF...."


def test_s3_refusals(s3) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ParameterError, match="names no object"):
        storage.write_bytes(f"s3://{s3.bucket}/folder/", b"x")
    with pytest.raises(ParameterError, match="whole bucket"):
        storage.remove_tree(f"s3://{s3.bucket}")
    with pytest.raises(MediaError, match="bucket 'no-such-bucket-mmdream' does not exist"):
        storage.read_bytes("s3://no-such-bucket-mmdream/k")


def test_wrong_secret_is_not_in_the_message(s3, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    wrong = "WrongSecret" + secrets.token_hex(12)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    with pytest.raises(MediaError) as info:
        storage.write_bytes(f"s3://{s3.bucket}/denied.txt", b"x")
    message = str(info.value)
    assert "access denied" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert wrong not in message and s3.secret_key not in message and s3.access_key not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__  # the boto error is not chained
    for action in ("upload", "download"):  # boto3's transfer manager wraps the error differently
        with pytest.raises(MediaError, match="access denied") as info:
            if action == "upload":
                with storage.local_output(f"s3://{s3.bucket}/denied.bin") as tmp:
                    tmp.write_bytes(b"x")
            else:
                with storage.local_input(f"s3://{s3.bucket}/denied.bin"):
                    pass
        assert wrong not in str(info.value)


def test_redact_hides_credentials(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3cr3tValue")
    text = storage._redact("bad s3cr3tValue at http://user:pw@host/x?X-Amz-Signature=abc123&a=1")
    assert "s3cr3tValue" not in text and "pw@" not in text and "abc123" not in text
