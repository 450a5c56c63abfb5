"""Joining or starting Ray for one render."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import ray


@contextmanager
def ray_session(address: str | None, num_cpus: int) -> Iterator[None]:
    """Use the Ray this process already joined; else join ``address``, or start a local single-node Ray with
    ``num_cpus`` CPUs (``"local"``: never a stray cluster) and stop it at the end."""
    if ray.is_initialized():
        yield
        return
    if address:
        ray.init(address=address)
    else:
        ray.init(address="local", num_cpus=max(1, num_cpus), include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
