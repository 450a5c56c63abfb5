"""Joining or starting Ray for one render."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import ray


@contextmanager
def ray_session(address: str | None, num_cpus: int) -> Iterator[bool]:
    """Use the Ray this process already joined; else join ``address``, or start a local single-node Ray with
    ``num_cpus`` CPUs (``"local"``: never a stray cluster) and stop it at the end. Yields whether it started that
    local Ray (whose workers are this machine's, with this process's environment)."""
    if ray.is_initialized():
        yield False
        return
    if address:
        ray.init(address=address)
    else:
        ray.init(address="local", num_cpus=max(1, num_cpus), include_dashboard=False, log_to_driver=False)
    try:
        yield not address
    finally:
        ray.shutdown()
