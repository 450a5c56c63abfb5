"""Fixtures of the Ray tests: one local Ray per test module (2 CPUs, no dashboard)."""

from __future__ import annotations

import pytest
import ray


@pytest.fixture(scope="module")
def local_ray():  # type: ignore[no-untyped-def]
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
