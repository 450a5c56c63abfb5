"""Progress reporting: algorithms call a callback with a small dataclass; front-ends render it."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TextIO


@dataclass(frozen=True)
class Progress:
    """One progress event: ``step`` of ``total`` done in ``stage``; ``value`` is the objective (if any); ``note``
    a one-line remark on something that happened (e.g. a lost node's task re-queued)."""

    stage: str
    step: int
    total: int
    value: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    note: str | None = None


ProgressFn = Callable[[Progress], None]


class Tracker:
    """Counts steps against a known total and emits :class:`Progress` with elapsed time and ETA."""

    def __init__(self, total: int, callback: ProgressFn | None, stage: str = "dream", done: int = 0) -> None:
        self.total = total
        self.callback = callback
        self.stage = stage
        self.step = self.done = done  # steps finished before this run (a resumed job): not timed
        self.start = time.perf_counter()

    def advance(self, value: float | None = None, stage: str | None = None) -> None:
        self.step += 1
        if self.callback is None:
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / (self.step - self.done) * max(self.total - self.step, 0)
        self.callback(Progress(stage or self.stage, self.step, self.total, value, round(elapsed, 3),
                               round(eta, 3)))


def json_lines(stream: TextIO = sys.stderr) -> ProgressFn:
    """A callback writing one JSON object per event (``{"event": "progress", ...}``) to ``stream``."""

    def emit(p: Progress) -> None:
        stream.write(json.dumps({"event": "progress", **asdict(p)}) + "\n")
        stream.flush()

    return emit


class Bar:
    """A tqdm progress bar on stderr, fed by :class:`Progress` events; use as a context manager. It shows from the
    first event on, so work that fails before it (a bad input found on reading) leaves only the error."""

    def __init__(self, desc: str = "dream", unit: str = "step") -> None:
        self._desc, self._unit = desc, unit
        self._bar: Any = None

    def __call__(self, p: Progress) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(desc=self._desc, total=0, unit=self._unit, file=sys.stderr, dynamic_ncols=True)
        if self._bar.total != p.total:
            self._bar.total = p.total
        if p.note:
            self._bar.write(p.note, file=sys.stderr)
        self._bar.set_description(p.stage, refresh=False)
        if p.value is not None:
            self._bar.set_postfix(objective=f"{p.value:.4g}", refresh=False)
        self._bar.update(p.step - self._bar.n)

    def __enter__(self) -> Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()


def say(line: str) -> None:
    """One line on stderr about work done before a command's own (a download, a fetched sample: what and why)."""
    print(f"mmdream: {line}", file=sys.stderr, flush=True)
