"""Resampling: librosa's soxr_hq filter, its output length, and the streamed resampler bit for bit the whole one."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from mmdream.ops.resample import RESAMPLER, StreamResampler, resample, resampled_length


@pytest.mark.parametrize("rate,target", [(44100, 16000), (16000, 48000), (48000, 16000), (16000, 16000)])
def test_streamed_resampling_is_the_whole_clip_bit_for_bit(rate: int, target: int) -> None:
    x = np.random.default_rng(0).standard_normal(30_001) * 0.3
    whole = resample(x, rate, target)
    assert whole.shape == (resampled_length(30_001, rate, target),)
    stream = StreamResampler(rate, target)
    parts = [stream(x[a:a + 7000]) for a in range(0, x.shape[0], 7000)] + [stream.flush()]
    streamed = np.concatenate(parts)[:whole.shape[0]]
    streamed = np.pad(streamed, (0, whole.shape[0] - streamed.shape[0]))  # as librosa.util.fix_length
    assert np.array_equal(streamed.astype(np.float32), whole.astype(np.float32))


def test_resample_is_librosas_and_keeps_leading_dims() -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 4410)).astype(np.float32)
    out = resample(x, 44100, 16000)
    expected = librosa.resample(x, orig_sr=44100, target_sr=16000, res_type=RESAMPLER)
    assert out.dtype == np.float32 and out.shape == (2, 3, 1600) and np.array_equal(out, expected)
    assert resample(x, 16000, 16000) is x and resample(x[..., :0], 44100, 16000).shape == (2, 3, 0)
