"""Film measures with values known by hand."""

from __future__ import annotations

import pytest
import torch

from mmdream.eval import metrics


def test_flicker_excess_is_the_change_the_dream_adds_on_the_8_bit_scale() -> None:
    g = torch.Generator().manual_seed(0)
    still = torch.rand(3, 48, 64, generator=g) * 0.5 + 0.25
    source = [still] * 4  # a static camera: the source's own warped difference is 0
    dreams = [still + (4 / 255 if t % 2 else 0.0) for t in range(4)]  # the dream pulses by 4 grey levels a frame
    assert metrics.flicker_excess(dreams, source) == pytest.approx(4.0, abs=0.05)
    assert metrics.flicker_excess(source, source) == pytest.approx(0.0, abs=1e-9)
