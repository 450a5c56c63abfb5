"""The audio pipeline's stages: mono at the network's rate, segments with their own seeds dreamed in any order and
joined equal the in-memory dream, the way back cuts or pads to the source's length, the level stage keeps loudness."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmdream.backbones.base import Backbone
from mmdream.dream.audio import AudioDreamParams, check_dream
from mmdream.errors import ParameterError
from mmdream.ops.loudness import PEAK, rms, rms_db
from mmdream.ops.resample import resample
from mmdream.pipelines.audio import (
    dream_audio, dream_segment, dream_segments, fit_to_source, from_network_rate, join_segments, plan_dream_segments,
    segment_bounds, segment_generator, to_network_rate,
)

THREE_SEGMENTS = AudioDreamParams(steps=1, warps=1, step_size=0.3, segment_s=1.0, overlap_s=0.25, seed=4)


def test_to_network_rate_mixes_to_mono_then_resamples() -> None:
    stereo = torch.stack([torch.linspace(-1, 1, 4410), torch.zeros(4410)]).float()
    x = to_network_rate(stereo, 44100, 16000)
    assert x.shape == (1600,) and x.dtype == torch.float32
    assert np.array_equal(x.numpy(), resample((stereo[0].double() / 2).numpy(), 44100, 16000).astype(np.float32))
    assert torch.equal(to_network_rate(stereo[None], 16000, 16000, dtype=torch.float64), stereo.double().mean(0))


def test_segments_and_their_seeds() -> None:
    segments, overlap = segment_bounds(40_000, 16000, 1.0, 0.25)
    assert overlap == 4000 and segments[0][0] == 0 and segments[-1][1] == 40_000 and len(segments) == 3
    plan = plan_dream_segments(40_000, 0.2, 16000, THREE_SEGMENTS)
    assert plan.segments == tuple(segments) and plan.step == pytest.approx(0.3 * 0.2) and plan.samples == 40_000
    assert plan_dream_segments(40_000, 0.0, 16000, THREE_SEGMENTS).step == pytest.approx(0.3e-4)  # silence: a floor
    draws = [torch.rand(3, generator=segment_generator(seed, i)) for seed, i in ((0, 0), (0, 1), (1, 0), (0, 0))]
    assert torch.equal(draws[0], draws[3]) and not torch.equal(draws[0], draws[1])
    assert not torch.equal(draws[0], draws[2])


def test_segments_dreamed_out_of_order_join_to_the_in_memory_dream(yamnet: Backbone) -> None:
    t = torch.arange(2 * 22050) / 22050
    source = torch.stack([0.3 * torch.sin(2 * torch.pi * 330 * t), 0.2 * torch.sin(2 * torch.pi * 550 * t)])
    objective = check_dream(yamnet, "Bark", THREE_SEGMENTS)
    x = to_network_rate(source, 22050, 16000)
    plan = plan_dream_segments(x.shape[-1], rms(x), 16000, THREE_SEGMENTS)
    assert len(plan.segments) == 3
    pieces = {i: dream_segment(x[a:b], plan, i, yamnet, objective, THREE_SEGMENTS)
              for i, (a, b) in reversed(list(enumerate(plan.segments)))}
    change = join_segments([pieces[i] for i in range(3)], plan, THREE_SEGMENTS.mix)
    streamed = torch.cat(list(dream_segments(lambda a, b: x[a:b], x.shape[-1], rms(x), yamnet, objective,
                                             THREE_SEGMENTS)))
    assert torch.equal(change, streamed)
    out = fit_to_source(source, from_network_rate(change, 16000, 22050, source), 22050)
    assert torch.equal(out, dream_audio(source, 22050, yamnet, objective, THREE_SEGMENTS))
    with pytest.raises(ParameterError, match="2 dreamed segments for a plan of 3"):
        join_segments([pieces[0], pieces[1]], plan, 1.0)
    with pytest.raises(ParameterError, match="segment 1 has"):
        dream_segment(x[:10], plan, 1, yamnet, objective, THREE_SEGMENTS)


def test_back_to_the_file_rate_fits_the_length_and_follows_the_gain() -> None:
    like = torch.zeros(2, 4411, dtype=torch.float64)
    change = torch.ones(1600)
    back = from_network_rate(change, 16000, 44100, like)
    assert back.shape == (4411,) and back.dtype == torch.float64 and float(back[-1]) == 0.0  # padded: 4410 came
    gained = from_network_rate(change, 16000, 44100, like, gain=(np.array([0.0, 2.0]), 10.0))  # 0 -> 2 over 0.1 s
    assert float(gained[0]) == 0.0 and float(gained[2205]) == pytest.approx(float(back[2205]), rel=1e-6)
    assert float(gained[4409]) == pytest.approx(2.0 * float(back[4409]), rel=1e-3)


def test_fit_to_source_keeps_the_loudness_and_the_peaks_under_full_scale() -> None:
    g = torch.Generator().manual_seed(0)
    source = 0.5 * torch.randn(2, 8000, generator=g).clamp(-1.8, 1.8)
    out = fit_to_source(source, 0.8 * torch.randn(8000, generator=g), 16000)
    assert out.shape == source.shape and float(out.abs().max()) <= PEAK
    assert abs(rms_db(out) - rms_db(source)) <= 1.0
