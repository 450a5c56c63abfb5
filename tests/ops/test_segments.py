"""Segments: plans cover the clip with the exact overlap, crossfades sum to one, joins are exact and inaudible."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch

from mmdream.errors import ParameterError
from mmdream.eval.metrics import join_flux_ratio
from mmdream.ops.segments import fade_in, overlap_add, overlap_add_stream, plan_segments, segment_weights


@pytest.mark.parametrize("n,segment,overlap", [
    (100, 100, 10), (101, 100, 10), (1000, 300, 50), (160_000 * 7 + 13, 160_000, 16_000), (50, 200, 20),
    (1000, 100, 0), (1000, 100, 50), (10_001, 1000, 499),
])
def test_plan_covers_the_clip_with_the_exact_overlap(n: int, segment: int, overlap: int) -> None:
    plan = plan_segments(n, segment, overlap)
    assert plan[0][0] == 0 and plan[-1][1] == n
    assert all(0 < b - a <= segment for a, b in plan)
    assert all(a2 == b1 - overlap for (_, b1), (a2, _) in zip(plan, plan[1:]))
    expected = 1 if n <= segment else math.ceil((n - overlap) / (segment - overlap))
    assert len(plan) == expected  # the fewest segments that fit
    lengths = [b - a for a, b in plan]
    assert max(lengths) - min(lengths) <= 1 or len(plan) == 1  # spread evenly


def test_fade_in_is_a_complementary_raised_cosine() -> None:
    f = fade_in(64, torch.zeros((), dtype=torch.float64))
    torch.testing.assert_close(f + f.flip(0), torch.ones(64, dtype=torch.float64), rtol=0, atol=1e-15)
    assert 0 < f[0] < 1e-3 and f[-1] > 1 - 1e-3 and bool((f[1:] > f[:-1]).all())
    torch.testing.assert_close(f[:2], torch.sin(torch.tensor([0.5, 1.5], dtype=torch.float64) * math.pi / 128) ** 2)


@pytest.mark.parametrize("n,segment,overlap", [(1000, 300, 50), (5000, 700, 300), (999, 1000, 100), (640, 64, 0)])
def test_round_trip_is_exact(n: int, segment: int, overlap: int) -> None:
    x = torch.randn(2, 3, n, generator=torch.Generator().manual_seed(0))
    pieces = [x[..., a:b] for a, b in plan_segments(n, segment, overlap)]
    assert torch.equal(overlap_add(pieces, n, overlap), x)


def test_weights_sum_to_one_and_stay_inside_their_segments() -> None:
    n, segment, overlap = 2000, 450, 120
    plan = plan_segments(n, segment, overlap)
    w = segment_weights(plan, n, overlap)
    assert w.shape == (len(plan), n) and len(plan) == 6
    torch.testing.assert_close(w.sum(dim=0), torch.ones(n, dtype=torch.float64), rtol=0, atol=1e-12)
    assert bool((w >= 0).all())
    for i, (a, b) in enumerate(plan):
        assert float(w[i, :a].abs().sum() + w[i, b:].abs().sum()) == 0.0
    a, b = plan[1]
    torch.testing.assert_close(w[1, a:a + overlap], fade_in(overlap, w))  # fades in over the shared stretch
    torch.testing.assert_close(w[0, a:a + overlap], 1 - fade_in(overlap, w))


def test_overlap_add_is_linear_in_the_pieces() -> None:
    g = torch.Generator().manual_seed(1)
    n, segment, overlap = 900, 400, 100
    plan = plan_segments(n, segment, overlap)
    p = [torch.randn(b - a, generator=g, dtype=torch.float64) for a, b in plan]
    q = [torch.randn(b - a, generator=g, dtype=torch.float64) for a, b in plan]
    both = overlap_add([2 * u - v for u, v in zip(p, q)], n, overlap)
    torch.testing.assert_close(both, 2 * overlap_add(p, n, overlap) - overlap_add(q, n, overlap))
    w = segment_weights(plan, n, overlap)
    torch.testing.assert_close(overlap_add(p, n, overlap),
                               sum(torch.nn.functional.pad(pi, (a, n - b)) * wi
                                   for pi, (a, b), wi in zip(p, plan, w)))


@pytest.mark.parametrize("n,segment,overlap", [
    (1000, 300, 50), (5000, 700, 300), (999, 1000, 100), (640, 64, 0), (700, 400, 199), (10_001, 1000, 499),
])
def test_streamed_join_equals_overlap_add_and_holds_one_piece(n: int, segment: int, overlap: int) -> None:
    g = torch.Generator().manual_seed(2)
    plan = plan_segments(n, segment, overlap)
    pieces = [torch.randn(2, b - a, generator=g) for a, b in plan]  # (700, 400, 199): three pieces overlap at once
    taken: list[int] = []

    def one_by_one() -> Iterator[torch.Tensor]:
        for i, piece in enumerate(pieces):
            taken.append(i)
            yield piece

    parts, taken_at = [], []
    for part in overlap_add_stream(one_by_one(), n, overlap):
        parts.append(part)
        taken_at.append(len(taken))
    assert torch.equal(torch.cat(parts, dim=-1), overlap_add(pieces, n, overlap))  # bit for bit
    # Each stretch leaves as soon as the next piece has come (the last one at the end): one piece held at a time.
    assert taken_at == [min(i + 2, len(plan)) for i in range(len(plan))]
    assert [p.shape[-1] for p in parts[:-1]] == [b - a for (a, _), (b, _) in zip(plan, plan[1:])]


def test_streamed_join_refuses_what_overlap_add_refuses() -> None:
    for pieces, n in (([torch.zeros(300), torch.zeros(300)], 1000), ([torch.zeros(300)] * 4, 1000),
                      ([torch.zeros(300), torch.zeros(30)], 280), ([], 0)):
        with pytest.raises(ParameterError, match="cover|at least one"):
            list(overlap_add_stream(iter(pieces), n, 50))
    with pytest.raises(ParameterError, match="leading dims"):
        list(overlap_add_stream(iter([torch.zeros(2, 300), torch.zeros(300)]), 550, 50))


def test_bad_plans_and_pieces_are_refused() -> None:
    with pytest.raises(ParameterError, match="overlap"):
        plan_segments(1000, 100, 100)
    with pytest.raises(ParameterError, match="segment"):
        plan_segments(1000, 0, 0)
    with pytest.raises(ParameterError, match="integer"):
        plan_segments(1000, 100.5, 10)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="cover"):
        overlap_add([torch.zeros(300), torch.zeros(300)], 1000, 50)
    with pytest.raises(ParameterError, match="at least one"):
        overlap_add([], 0, 0)


RATE = 16_000


def chirp(seconds: float, f0: float = 100.0, f1: float = 4000.0) -> torch.Tensor:
    """Linear sine sweep ``(n,)`` from ``f0`` to ``f1`` Hz at 16 kHz, amplitude 0.5, float64: a constant sweep
    rate gives a steady spectral flux (an exponential sweep's flux grows with the frequency)."""
    t = torch.arange(round(seconds * RATE), dtype=torch.float64) / RATE
    return 0.5 * torch.sin(2 * math.pi * (f0 * t + (f1 - f0) / (2 * seconds) * t * t))


def segment_effect(piece: torch.Tensor, index: int) -> torch.Tensor:
    """A per-segment process with its own settings and edge artefacts: a circular FFT equaliser (random smooth
    response, ±4 dB) and a gain of ±2 dB, both drawn from the segment's index."""
    g = torch.Generator().manual_seed(index)
    spectrum = torch.fft.rfft(piece)
    f = torch.linspace(0, 1, spectrum.shape[-1], dtype=torch.float64)
    a, b, gain = (torch.rand(3, generator=g, dtype=torch.float64) * 2 - 1).tolist()
    response_db = 4 * (a * torch.cos(math.pi * f) + b * torch.sin(3 * math.pi * f)) / 2 + 2 * gain
    return torch.fft.irfft(spectrum * 10 ** (response_db / 20), n=piece.shape[-1])


def test_joins_of_a_segment_wise_process_are_inaudible_on_a_long_chirp() -> None:
    x = chirp(12.0)
    n, segment, overlap = x.shape[-1], RATE, RATE // 4
    plan = plan_segments(n, segment, overlap)
    pieces = [segment_effect(x[a:b], i) for i, (a, b) in enumerate(plan)]
    joined = overlap_add(pieces, n, overlap)
    # The same pieces butted together (each owns its part up to the next start): audible steps.
    cut = torch.cat([p[:(plan[i + 1][0] - a) if i + 1 < len(plan) else None] for i, (p, (a, _)) in
                     enumerate(zip(pieces, plan))])
    assert len(plan) == 16
    # Measured: sweep alone 1.03, hard joins 8.6, crossfaded 1.09 (1.28 with 1/8 s crossfades).
    assert join_flux_ratio(x, plan, overlap) < 1.1
    assert join_flux_ratio(cut, plan, overlap) > 3.0  # the measure hears a hard join
    assert join_flux_ratio(joined, plan, overlap) <= 1.2
