"""Safe output files: write to a temporary name beside the target, rename when complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmdream.errors import MediaError


def check_output(output: str | os.PathLike[str], *inputs: str | os.PathLike[str]) -> Path:
    """Validate an output path: its folder exists and it is none of the inputs. Returns it as a Path."""
    out = Path(output)
    if not out.parent.is_dir():
        raise MediaError(f"output folder {out.parent} does not exist; create it first or choose another path")
    if out.is_dir():
        raise MediaError(f"output {out} is a folder; give a file name")
    for i in inputs:
        if Path(i).exists() and out.exists() and out.resolve() == Path(i).resolve():
            raise MediaError(f"output {out} is the input file; choose another output name (inputs are never overwritten)")
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def scratch_file(suffix: str = "", beside: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """A temporary file (with ``suffix``, so formats are recognised), in the temp folder or hidden beside
    ``beside``; removed afterwards unless the block renamed it away."""
    near = None if beside is None else Path(beside)
    fd, tmp = tempfile.mkstemp(dir=None if near is None else near.parent,
                               prefix="mmdream-" if near is None else f".{near.stem}.", suffix=suffix)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix); rename it onto ``target`` if the block succeeds."""
    target = Path(target)
    with scratch_file(target.suffix, beside=target) as tmp:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; a finished output gets the usual mode
        os.replace(tmp, target)
