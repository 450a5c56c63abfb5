"""Starting or joining Ray fails as one line saying what to do, not as Ray's traceback (a local Ray that times out
on a loaded machine, an address where no cluster answers)."""

from __future__ import annotations

import pytest
import ray

from mmdream.errors import MmdreamError
from mmdream_cluster.session import ray_session


@pytest.mark.parametrize("address, raised, said", [
    (None, Exception("The current node timed out during startup.\nThis could happen because some of the raylet "
                     "failed to startup or the GCS has become overloaded."),
     r"could not start a local Ray: The current node timed out during startup; .*rerun the same command"),
    ("10.0.0.9:6379", ConnectionError("Could not find any running Ray instance. Please specify the one to connect."),
     r"could not join the Ray cluster at 10\.0\.0\.9:6379: Could not find any running Ray.*ray status"),
])
def test_ray_failing_to_start_is_one_line(monkeypatch: pytest.MonkeyPatch, address: str | None,
                                          raised: Exception, said: str) -> None:
    def init(**kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process, whatever ran before
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(MmdreamError, match=said) as err:
        with ray_session(address, 1):
            pytest.fail("the session started")
    assert "\n" not in str(err.value)
