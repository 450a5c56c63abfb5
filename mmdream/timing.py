"""Where the time goes: seconds per phase (decode, dream, encode, ...) summed over a piece of work. Cheap enough
to leave on (a ``perf_counter`` pair per phase and frame); actors return it with each result."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class PhaseTimes:
    """Seconds spent per named phase, summed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def total(self, *phases: str) -> float:
        return sum(self.seconds.get(p, 0.0) for p in phases)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Count the time of the ``with`` block under ``name``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def iterate(self, items: Iterable[T], name: str) -> Iterator[T]:
        """``items``, with the time spent producing each (e.g. decoding a frame) counted under ``name``."""
        it = iter(items)
        while True:
            with self.phase(name):
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item
