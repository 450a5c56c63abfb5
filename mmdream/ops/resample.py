"""Resampling sounds ``(..., time)`` between rates: one filter (soxr, librosa's ``soxr_hq``), whole or streamed.

>>> y = resample(x, 44100, 16000)                        # (..., n) -> (..., resampled_length(n, 44100, 16000))
>>> stream = StreamResampler(44100, 16000)
>>> parts = [stream(chunk) for chunk in chunks] + [stream.flush()]   # concatenated: bit for bit ``y``'s samples
"""

from __future__ import annotations

import numpy as np
import soxr

__all__ = ["RESAMPLER", "resample", "resampled_length", "StreamResampler"]

RESAMPLER = "soxr_hq"  # librosa's name of the filter; soxr's quality "HQ"


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``samples`` ``(..., n)`` at ``rate`` -> ``(..., resampled_length(n, rate, target))`` float32 at ``target``
    (``librosa.resample`` with :data:`RESAMPLER`). The same rate returns ``samples`` itself."""
    if rate == target or samples.shape[-1] == 0:
        return samples if rate == target else samples[..., :0]
    import librosa

    return librosa.resample(samples, orig_sr=rate, target_sr=target, res_type=RESAMPLER).astype(np.float32, copy=False)


def resampled_length(n: int, rate: int, target: int) -> int:
    """Samples :func:`resample` gives for ``n`` at ``rate`` (``librosa.resample``'s length, float rounding
    included)."""
    return int(np.ceil(n * (float(target) / rate)))


class StreamResampler:
    """:func:`resample` of a mono float64 stream ``(time,)``, chunk by chunk: each call returns what the filter
    has finished; :meth:`flush` the rest. Cut or zero-padded to :func:`resampled_length`, the concatenation is
    bit for bit :func:`resample`'s. The same rate passes the chunks through."""

    def __init__(self, rate: int, target: int) -> None:
        self._stream = (soxr.ResampleStream(rate, target, 1, dtype="float64", quality=RESAMPLER)
                        if rate != target else None)

    def __call__(self, chunk: np.ndarray) -> np.ndarray:
        return chunk if self._stream is None else self._stream.resample_chunk(chunk)

    def flush(self) -> np.ndarray:
        """The samples still inside the filter (none at the same rate)."""
        return np.zeros(0) if self._stream is None else self._stream.resample_chunk(np.zeros(0), last=True)
