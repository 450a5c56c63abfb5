"""How an output was made: a JSON record embedded in every image, film and sound mmdream writes.

A record holds the command (``image``, ``video``, ``gan walk``, ``render``, ...), its options as given or defaulted
(``options``, what ``--like`` repeats), the params dataclasses it ran with (``params``, by class name), the inputs
by name, the networks with the sha256 of their weight files, the seed and the mmdream version. It holds no time
stamp and no output name, so equal settings still give byte-identical files.

Typical use by a writer of outputs::

    record = make_record("zoom", params=[still, zoom_params], networks=[("backbone", backbone)],
                         inputs={"input": "photo.jpg"})
    VideoWriter(path, fps=25, provenance=dumps(record))   # or save_image / save_audio(..., provenance=...)
    read_record(path)  # -> the record (dict), or None
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmdream import __version__
from mmdream.errors import MediaError, ParameterError
from mmdream.media import storage
from mmdream.media.provenance import read_text

FORMAT = 1  # the record layout's version


@functools.lru_cache(maxsize=32)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a local file, computed once per process for an unchanged file."""
    p = Path(path).resolve()
    stat = p.stat()
    return _digest(str(p), stat.st_size, stat.st_mtime_ns)


@dataclasses.dataclass(frozen=True)
class NamedWeights:
    """A network known by name and weights file without being loaded (a job's, recorded by the driver)."""

    name: str
    variant: str | None
    weights_path: Path | None


def network_record(role: str, network: Any) -> dict[str, Any]:
    """``{"role", "name", "variant", "weights": {"file", "sha256"}}`` of a loaded backbone or generator (anything
    with ``name`` and ``weights_path``; ``variant`` if it has one)."""
    path = getattr(network, "weights_path", None)
    weights = None if path is None else {"file": Path(path).name, "sha256": file_sha256(path)}
    return {"role": role, "name": network.name, "variant": getattr(network, "variant", None), "weights": weights}


def _jsonable(value: Any) -> Any:
    """``value`` with dataclasses as dicts, tuples as lists, paths as strings (JSON-able, stable)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ParameterError(f"cannot record a setting of type {type(value).__name__} ({value!r})")


def make_record(command: str, *, params: Iterable[Any] = (), options: Mapping[str, Any] | None = None,
                networks: Iterable[tuple[str, Any]] = (), inputs: Mapping[str, Any] | None = None,
                seed: int | None = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The record of one output.

    ``params``: the params dataclasses the command ran with (recorded by class name). ``options``: the command
    line's options by destination name (what ``--like`` restores). ``networks``: ``(role, backbone or generator)``
    pairs. ``inputs``: input names by role. ``seed``: default: the first ``seed`` field among ``params``.
    ``extra``: anything else worth keeping (a job spec, a drive's digest), JSON-able."""
    params = list(params)
    if seed is None:
        seed = next((p.seed for p in params if isinstance(getattr(p, "seed", None), int)), None)
    record: dict[str, Any] = {
        "mmdream": __version__, "format": FORMAT, "command": command, "seed": seed,
        "networks": [network_record(role, net) for role, net in networks],
        "inputs": _jsonable(dict(inputs or {})),
        "params": {type(p).__name__: _jsonable(p) for p in params},
        "options": _jsonable(dict(options or {})),
    }
    if extra:
        record["extra"] = _jsonable(dict(extra))
    return record


def dumps(record: Mapping[str, Any]) -> str:
    """The record as the compact, key-sorted ASCII JSON text embedded in files."""
    return json.dumps(record, sort_keys=True, ensure_ascii=True, separators=(",", ":"))


def loads(text: str | None) -> dict[str, Any] | None:
    """A record from embedded text; ``None`` when the text is not an mmdream record (e.g. a camera's comment)."""
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "mmdream" in record and "command" in record else None


def read_record(uri: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The record of the image, film or sound at ``uri`` (a path or ``s3://`` URI), ``None`` if it carries none."""
    with storage.local_input(uri) as path:
        return loads(read_text(path))


def require_record(uri: str | os.PathLike[str]) -> dict[str, Any]:
    """:func:`read_record`, refusing a file without a record (MediaError)."""
    record = read_record(uri)
    if record is None:
        raise MediaError(f"{uri} carries no mmdream record (not made by mmdream, or its metadata was stripped)")
    return record


def _line(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def describe(record: Mapping[str, Any]) -> str:
    """The record as indented text for people (``mmdream info``)."""
    lines = [f"made by: mmdream {record.get('mmdream')} `{record.get('command')}`", f"seed: {record.get('seed')}"]
    for net in record.get("networks", []):
        weights = net.get("weights") or {}
        variant = f" ({net['variant']})" if net.get("variant") else ""
        digest = f"{weights.get('file')} sha256 {weights.get('sha256')}" if weights else "no weights file"
        lines.append(f"{net.get('role')}: {net.get('name')}{variant}, {digest}")
    params = record.get("params", {})
    in_params = {key for values in params.values() for key in values}
    options = {k: v for k, v in record.get("options", {}).items() if k not in in_params}
    sections: Sequence[tuple[str, Mapping[str, Any]]] = [
        ("inputs", record.get("inputs", {})), ("options", options),
        *((f"params {name}", values) for name, values in params.items()),
        ("extra", record.get("extra", {}))]
    for title, values in sections:
        if values:
            lines.append(f"{title}:")
            lines.extend(f"  {key}: {_line(value)}" for key, value in values.items())
    return "\n".join(lines)
