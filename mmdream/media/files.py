"""Safe output files: write to a temporary name beside the target, rename when complete."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mmdream.errors import MediaError


def check_output(output: str | os.PathLike[str], *inputs: str | os.PathLike[str]) -> Path:
    """Validate an output path: its folder exists and takes new files, and it is none of the inputs. Returns it as
    a Path."""
    out = Path(output)
    if not out.parent.is_dir():
        raise MediaError(f"output folder {out.parent} does not exist; create it first or choose another path")
    check_not_input(out, *inputs)
    check_writable(out)
    return out


def check_not_input(output: str | os.PathLike[str], *inputs: str | os.PathLike[str]) -> None:
    """A MediaError if ``output`` names one of the local ``inputs`` (also through links or ``..``)."""
    out = Path(output)
    for i in inputs:
        if out.resolve() == Path(i).resolve():
            raise MediaError(f"output {out} is the input file; choose another output name (inputs are never overwritten)")


def check_writable(output: str | os.PathLike[str], what: str = "output") -> None:
    """A MediaError unless ``output`` can be written: not a folder, and its nearest existing folder takes a new
    file (tried with a temporary file, removed at once; missing folders in between would be created)."""
    out = Path(output).absolute()
    if out.is_dir():
        raise MediaError(f"{what} {output} is a folder; give a file name")
    folder = out.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise MediaError(f"{what} {output} cannot be created: {folder} is a file, not a folder; choose another path")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".mmdream-probe-")
    except OSError as exc:
        raise MediaError(f"{what} {output} cannot be written: {folder} takes no new files ({exc.strerror}); "
                         "choose another path") from None
    os.close(fd)
    os.unlink(probe)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def scratch_file(suffix: str = "", beside: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """A temporary file (with ``suffix``, so formats are recognised), in the temp folder or hidden beside
    ``beside``; removed afterwards unless the block renamed it away."""
    near = None if beside is None else Path(beside)
    try:
        fd, tmp = tempfile.mkstemp(dir=None if near is None else near.parent,
                                   prefix="mmdream-" if near is None else f".{near.stem}.", suffix=suffix)
    except OSError as exc:
        where = tempfile.gettempdir() if near is None else near.parent
        raise MediaError(f"cannot write {'a temporary file' if near is None else near} in {where} "
                         f"({exc.strerror}); choose another output path") from None
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
