"""Storage URIs: a local path and an ``s3://bucket/key`` URI are interchangeable wherever a file is named.

Local writes go through :func:`mmdream.media.files.atomic_path` (temporary name, renamed when complete); S3 writes
are single ``put_object``/``upload_file`` calls, so a failed write leaves nothing at the target either way.

S3 settings come from the environment: the endpoint from ``MMDREAM_S3_ENDPOINT`` or ``AWS_ENDPOINT_URL`` (none: AWS),
region and credentials as boto3 reads them (``AWS_DEFAULT_REGION``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, profiles, ...). Error messages never carry credentials.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, NoReturn

from mmdream.errors import MediaError, ParameterError
from mmdream.media.files import atomic_path, scratch_file

Location = str | os.PathLike[str]

_CREDENTIAL_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                   "AWS_DEFAULT_REGION", "AWS_REGION")
_clients: dict[tuple[str | None, tuple[str | None, ...]], tuple[Any, Any]] = {}
_clients_lock = threading.Lock()


def is_s3(uri: Location) -> bool:
    """Whether ``uri`` is an ``s3://`` URI (a ``Path`` never is)."""
    return isinstance(uri, str) and uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> ``("bucket", "some/key")``; the key may be empty (``s3://bucket``)."""
    if not is_s3(uri):
        raise ParameterError(f"{uri!r} is not an s3:// URI; write s3://BUCKET/KEY")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ParameterError(f"s3 URI {uri!r} names no bucket; write s3://BUCKET/KEY")
    return bucket, key


def _object(uri: str) -> tuple[str, str]:
    bucket, key = split_s3(uri)
    if not key or key.endswith("/"):
        raise ParameterError(f"s3 URI {uri!r} names no object (a bucket or folder); write s3://BUCKET/KEY")
    return bucket, key


def _endpoint(endpoint: str | None) -> str | None:
    return endpoint or os.environ.get("MMDREAM_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_client(endpoint: str | None = None) -> Any:
    """A boto3 S3 client (path-style addressing, for local servers too), cached per endpoint in this process.

    The endpoint is ``endpoint``, else ``MMDREAM_S3_ENDPOINT``, else ``AWS_ENDPOINT_URL``, else AWS. A change of
    the AWS credential/region variables gives a new client rather than silently reusing the old credentials.
    """
    return _client_and_session(endpoint)[0]


def _client_and_session(endpoint: str | None = None) -> tuple[Any, Any]:
    url = _endpoint(endpoint)
    key = (url, tuple(os.environ.get(v) for v in _CREDENTIAL_ENV))
    with _clients_lock:
        if key not in _clients:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session()
            config = Config(s3={"addressing_style": "path"}, connect_timeout=10, read_timeout=60,
                            retries={"max_attempts": 3, "mode": "standard"})
            _clients[key] = (session.client("s3", endpoint_url=url, config=config), session)
        return _clients[key]


def _redact(text: str) -> str:
    """``text`` with any credential in force (and URL user info, signatures) replaced by ``***``."""
    values = [os.environ.get(v) for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
    with _clients_lock:
        sessions = [s for _c, s in _clients.values()]
    for session in sessions:
        try:
            creds = session.get_credentials()
        except Exception:  # a broken profile must not hide the original error
            creds = None
        if creds is not None:
            values += [creds.access_key, creds.secret_key, creds.token]
    for value in sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, "***")
    text = re.sub(r"(://)[^/@\s]+@", r"\1***@", text)
    return re.sub(r"(?i)(signature|credential|x-amz-security-token|secret[_-]?(access)?[_-]?key)([=:]\s*)[^\s&,;\"']+",
                  r"\1\3***", text)


def _fail(uri: str, action: str, exc: Exception) -> NoReturn:
    """Raise the MediaError for a failed S3 call, with advice and without credentials."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    bucket = split_s3(uri)[0]
    endpoint = _redact(_endpoint(None) or "AWS")
    if isinstance(exc, Boto3Error) and isinstance(exc.__context__, (ClientError, NoCredentialsError)):
        exc = exc.__context__  # upload_file/download_file wrap the error of the failed request
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchKey", "404", "NotFound"):
            raise MediaError(f"{uri} does not exist; check the bucket and key") from None
        if code == "NoSuchBucket":
            raise MediaError(f"cannot {action} {uri}: bucket {bucket!r} does not exist; create it or fix the URI") \
                from None
        if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "403", "Forbidden") \
                or status == 403:
            raise MediaError(
                f"cannot {action} {uri}: access denied ({code or status}); check AWS_ACCESS_KEY_ID / "
                f"AWS_SECRET_ACCESS_KEY and the endpoint ({endpoint})") from None
        detail = f"{code}: {error.get('Message', '')}".strip(": ")
    elif isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        raise MediaError(f"cannot {action} {uri}: no S3 credentials; set AWS_ACCESS_KEY_ID and "
                         "AWS_SECRET_ACCESS_KEY (or an AWS profile)") from None
    else:
        detail = str(exc)
    raise MediaError(f"cannot {action} {uri}: {_redact(detail)}; check the endpoint ({endpoint}), the bucket "
                     "and your network") from None


def _s3_call(uri: str, action: str, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, its boto errors turned into MediaError about ``uri``."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(*args, **kwargs)
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        _fail(uri, action, exc)


def join(prefix: Location, *parts: str) -> str:
    """``prefix`` (a local folder or an s3 prefix) joined with relative ``parts``; the result stays under it.

    Parts holding ``..``, an absolute path, a scheme (``s3://...``) or a backslash are refused (ParameterError).
    """
    segments: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise ParameterError(f"path part {part!r} is not a string")
        if "\\" in part or "://" in part or part.startswith("/") or re.match(r"^[A-Za-z]:", part):
            raise ParameterError(f"path part {part!r} must be relative, with / separators and no scheme; "
                                 "give a name under the prefix")
        pieces = [p for p in part.split("/") if p not in ("", ".")]
        if ".." in pieces:
            raise ParameterError(f"path part {part!r} contains '..'; give a name under the prefix")
        segments += pieces
    if is_s3(prefix):
        bucket, key = split_s3(str(prefix))
        return "s3://" + "/".join([bucket, *[k for k in key.split("/") if k], *segments])
    return str(Path(prefix).joinpath(*segments))


def size(uri: Location) -> int | None:
    """Size in bytes of a file / object, or None when there is none."""
    if not is_s3(uri):
        path = Path(uri)
        return path.stat().st_size if path.is_file() else None
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = _object(str(uri))
    try:
        head = s3_client().head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            return None
        _fail(str(uri), "look up", exc)
    except BotoCoreError as exc:
        _fail(str(uri), "look up", exc)
    return int(head["ContentLength"])


def exists(uri: Location) -> bool:
    """Whether a file or folder exists (for S3: an object, or a prefix holding objects)."""
    if not is_s3(uri):
        return Path(uri).exists()
    bucket, key = split_s3(str(uri))
    if key and not key.endswith("/") and size(uri) is not None:
        return True
    folder = key.rstrip("/") + "/" if key else ""
    found = _s3_call(str(uri), "list", s3_client().list_objects_v2, Bucket=bucket, Prefix=folder, MaxKeys=1)
    return bool(found.get("Contents") or found.get("CommonPrefixes"))


def read_bytes(uri: Location) -> bytes:
    """Contents of a file / object."""
    if not is_s3(uri):
        try:
            return Path(uri).read_bytes()
        except FileNotFoundError:
            raise MediaError(f"input {uri} does not exist; check the path") from None
        except OSError as exc:
            raise MediaError(f"cannot read {uri}: {exc.strerror}") from None
    bucket, key = _object(str(uri))
    body = _s3_call(str(uri), "read", s3_client().get_object, Bucket=bucket, Key=key)["Body"]
    try:
        return bytes(body.read())
    except Exception as exc:  # a connection dropped mid-body
        _fail(str(uri), "read", exc)


def write_bytes(uri: Location, data: bytes) -> None:
    """Write ``data`` to a file (atomically, parent folders created) or an object."""
    if is_s3(uri):
        bucket, key = _object(str(uri))
        _s3_call(str(uri), "write", s3_client().put_object, Bucket=bucket, Key=key, Body=data)
        return
    with local_output(uri) as tmp:
        tmp.write_bytes(data)


def read_text(uri: Location, encoding: str = "utf-8") -> str:
    """Text of a file / object."""
    try:
        return read_bytes(uri).decode(encoding)
    except UnicodeDecodeError as exc:
        raise MediaError(f"{uri} is not {encoding} text ({exc.reason} at byte {exc.start})") from None


def write_text(uri: Location, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to a file / object (see :func:`write_bytes`)."""
    write_bytes(uri, text.encode(encoding))


def listdir(prefix: Location) -> list[str]:
    """Sorted names directly under a folder / s3 prefix (files and sub-folders); [] when there is none."""
    if not is_s3(prefix):
        path = Path(prefix)
        if path.exists() and not path.is_dir():
            raise MediaError(f"{prefix} is a file, not a folder; give the folder to list")
        return sorted(os.listdir(path)) if path.is_dir() else []
    bucket, key = split_s3(str(prefix))
    folder = key.rstrip("/") + "/" if key.strip("/") else ""
    client = s3_client()
    names: set[str] = set()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder, Delimiter="/")
    for page in _s3_call(str(prefix), "list", list, pages):
        names.update(o["Key"][len(folder):] for o in page.get("Contents", []))
        for p in page.get("CommonPrefixes", []):
            # some servers (SeaweedFS) keep listing an emptied "folder" for a while; S3 and local folders do not
            held = _s3_call(str(prefix), "list", client.list_objects_v2, Bucket=bucket, Prefix=p["Prefix"], MaxKeys=1)
            if held.get("KeyCount", len(held.get("Contents", []))):
                names.add(p["Prefix"][len(folder):].rstrip("/"))
    names.discard("")
    return sorted(names)


def remove_tree(prefix: Location) -> None:
    """Delete a folder (or file) and everything under it; for S3 every object under the prefix. Missing: no-op."""
    if not is_s3(prefix):
        path = Path(prefix)
        if path.resolve() == Path(path.resolve().anchor):
            raise ParameterError(f"refusing to remove the root folder {prefix}; give a job folder")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        return
    bucket, key = split_s3(str(prefix))
    key = key.rstrip("/")
    if not key:
        raise ParameterError(f"refusing to remove the whole bucket {prefix}; give a prefix inside it")
    client = s3_client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key + "/")
    keys = [o["Key"] for page in _s3_call(str(prefix), "list", list, pages) for o in page.get("Contents", [])]
    if size(f"s3://{bucket}/{key}") is not None:
        keys.append(key)
    for start in range(0, len(keys), 1000):
        batch = {"Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True}
        result = _s3_call(str(prefix), "delete", client.delete_objects, Bucket=bucket, Delete=batch)
        if result.get("Errors"):
            first = result["Errors"][0]
            raise MediaError(f"cannot delete s3://{bucket}/{first.get('Key')}: {first.get('Code')} "
                             f"({len(result['Errors'])} objects not deleted); check your permissions")


@contextmanager
def local_input(uri: Location) -> Iterator[Path]:
    """A local path to read ``uri`` from: a local path as is; an S3 object downloaded to a temporary file
    (same suffix), deleted afterwards."""
    if not is_s3(uri):
        path = Path(uri)
        if not path.exists():
            raise MediaError(f"input {uri} does not exist; check the path")
        yield path
        return
    _bucket, key = _object(str(uri))
    with scratch_file(PurePosixPath(key).suffix) as tmp:
        _fetch(str(uri), tmp)
        yield tmp


@contextmanager
def local_output(uri: Location) -> Iterator[Path]:
    """A local path to write ``uri`` through: it lands at ``uri`` only if the block succeeds.

    Local: a temporary file beside the target (parent folders created), renamed onto it. S3: a temporary file
    uploaded to the key, then deleted.
    """
    if not is_s3(uri):
        target = Path(uri)
        if target.is_dir():
            raise MediaError(f"output {uri} is a folder; give a file name")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MediaError(f"cannot create the folder of {uri}: {exc.strerror}; choose another output") from None
        with atomic_path(target) as tmp:
            yield tmp
        return
    bucket, key = _object(str(uri))
    with scratch_file(PurePosixPath(key).suffix) as tmp:
        yield tmp
        _s3_call(str(uri), "upload to", s3_client().upload_file, Filename=str(tmp), Bucket=bucket, Key=key)


def _fetch(uri: str, path: Path) -> None:
    """Download an object into ``path`` (no atomicity: ``path`` is a temporary name)."""
    bucket, key = _object(uri)
    _s3_call(uri, "download", s3_client().download_file, Bucket=bucket, Key=key, Filename=str(path))


def download(uri: Location, path: Location) -> Path:
    """Copy a file / object to the local ``path`` atomically (parent folders created). Returns the path."""
    target = Path(path)
    if is_s3(uri):
        _object(str(uri))
        with local_output(target) as tmp:
            _fetch(str(uri), tmp)
    else:
        with local_input(uri) as src, local_output(target) as tmp:
            shutil.copyfile(src, tmp)
    return target


def upload(path: Location, uri: Location) -> None:
    """Copy the local file ``path`` to a file / object ``uri`` (atomically for local targets)."""
    src = Path(path)
    if not src.is_file():
        raise MediaError(f"input {path} does not exist or is not a file; check the path")
    if is_s3(uri):
        bucket, key = _object(str(uri))
        _s3_call(str(uri), "upload to", s3_client().upload_file, Filename=str(src), Bucket=bucket, Key=key)
        return
    with local_output(uri) as tmp:
        shutil.copyfile(src, tmp)
