"""Joining or starting Ray for one render."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import ray

from mmdream.errors import MmdreamError


@contextmanager
def ray_session(address: str | None, num_cpus: int) -> Iterator[bool]:
    """Use the Ray this process already joined; else join ``address``, or start a local single-node Ray with
    ``num_cpus`` CPUs (``"local"``: never a stray cluster) and stop it at the end. Yields whether it started that
    local Ray (whose workers are this machine's, with this process's environment)."""
    if ray.is_initialized():
        yield False
        return
    try:
        # Ray's INFO lines ("Started a local Ray instance", where it saved a token) are not the user's business;
        # its warnings still show.
        if address:
            ray.init(address=address, logging_level=logging.WARNING)
        else:
            ray.init(address="local", num_cpus=max(1, num_cpus), include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
    except Exception as exc:  # Ray raises plain Exception/ConnectionError here: one line for the user
        first = next((line.strip().rstrip(".") for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        where = f"join the Ray cluster at {address}" if address else "start a local Ray"
        hint = "check the address (`ray status` on the head node)" if address else \
            "the machine may be short of memory or overloaded; rerun the same command (finished work is kept)"
        raise MmdreamError(f"could not {where}: {first}; {hint}") from None
    try:
        yield not address
    finally:
        ray.shutdown()
