"""Audio dreams of files of any length in bounded memory: decoded, dreamed and written block by block.

:func:`dream_audio_file` renders what :func:`mmdream.pipelines.audio.dream_audio` renders from the whole clip in
memory (the same stages: segments, seeds, crossfades, resampling filter, loudness and limiter, through the same
functions) while holding one segment and a few blocks, whatever the file's length. It makes passes over the clip:

1. decode the input (any format, rate and channels PyAV reads) into a float32 scratch file, and mix it to mono
   and resample it to the network's rate as a stream (:class:`~mmdream.ops.resample.StreamResampler`: bit for
   bit what :func:`~mmdream.ops.resample.resample` gives on the whole clip) into a second one; sum the squares
   for the RMS levels;
2. dream the segments in order (:func:`~mmdream.pipelines.audio.dream_segments`: crossfaded as they come) and
   resample the change back to the input's rate as a stream, into a third scratch file;
3. measure the RMS and peak of source + change, one pass per measurement :func:`~mmdream.ops.loudness.plan_level`
   asks for (one, unless the limiter has work to do), then render blocks with enough context through
   :func:`~mmdream.ops.loudness.apply_level` and write them, atomically (the output appears when complete).

Scratch files (4 bytes per sample and channel, plus a third of that: in the temporary folder) are read back with
positioned reads, not memory maps, so their pages never count as the process's memory.

>>> dream_audio_file("long.flac", "dreamed.flac", load_backbone("yamnet"), "Bark", AudioDreamParams(steps=10))
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import BinaryIO

import numpy as np
import torch

from mmdream.backbones.base import Backbone
from mmdream.dream.audio import AudioDreamParams, AudioObjective, check_dream
from mmdream.errors import MediaError
from mmdream.media.audio import audio_writer, check_audio_suffix, stream_audio
from mmdream.media.files import check_output, scratch_file
from mmdream.ops.loudness import apply_level, limiter_window, plan_level
from mmdream.ops.resample import StreamResampler, resampled_length
from mmdream.pipelines.audio import dream_segments, mono_mix
from mmdream.progress import ProgressFn

__all__ = ["dream_audio_file", "BLOCK"]

BLOCK = 1 << 17  # samples per block when decoding, levelling and writing (3 s at 44.1 kHz)


class _Frames:
    """float32 frames ``(n, width)`` appended to an open scratch file and read back by range (positioned reads)."""

    def __init__(self, file: BinaryIO, width: int) -> None:
        self.file = file
        self.width = width
        self.n = 0  # frames held; appending past ``limit`` drops the excess

    def append(self, frames: np.ndarray, limit: int | None = None) -> None:
        """Append ``frames`` ``(k, width)`` (or ``(k,)`` when ``width == 1``), keeping at most ``limit`` in all."""
        frames = np.ascontiguousarray(frames, dtype=np.float32).reshape(-1, self.width)
        if limit is not None:
            frames = frames[:max(limit - self.n, 0)]
        self.file.write(frames.tobytes())
        self.n += frames.shape[0]

    def fit(self, n: int) -> None:
        """Hold exactly ``n`` frames: cut the excess, pad with zeros (as ``librosa.util.fix_length``)."""
        if self.n > n:
            self.file.flush()
            self.file.truncate(n * self.width * 4)
            self.file.seek(0, os.SEEK_END)
            self.n = n
        while self.n < n:
            self.append(np.zeros((min(n - self.n, BLOCK), self.width), np.float32))

    def read(self, a: int, b: int) -> np.ndarray:
        """Frames ``[a, b)`` ``(b - a, width)``, a writable array of their own."""
        self.file.flush()
        out = np.empty((b - a, self.width), np.float32)
        got = os.preadv(self.file.fileno(), [memoryview(out).cast("B")], a * self.width * 4)
        if got != out.nbytes:
            raise MediaError(f"scratch file ended early ({got} of {out.nbytes} bytes); is the temporary folder full?")
        return out

    def sum_squares(self) -> float:
        return sum(float(np.square(self.read(a, min(a + BLOCK, self.n)), dtype=np.float64).sum())
                   for a in range(0, self.n, BLOCK))


@contextmanager
def _scratch(width: int) -> Iterator[_Frames]:
    with scratch_file(".f32") as path, open(path, "r+b") as file:
        yield _Frames(file, width)


def dream_audio_file(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    backbone: Backbone,
    objective: AudioObjective | str | int | None = None,
    params: AudioDreamParams = AudioDreamParams(),
    *,
    progress: ProgressFn | None = None,
    provenance: str | None = None,
) -> str:
    """Dream the sound of ``input_path`` into ``output_path`` (local paths; .wav, .flac or .ogg, at the input's
    rate and channels; never the input), in memory bounded by a segment whatever the length. Returns the output
    path. ``provenance``: a record text for the file's comment tag (:mod:`mmdream.provenance`).

    ``objective`` and ``params`` as for :func:`~mmdream.pipelines.audio.dream_audio`, whose result, saved with
    :func:`~mmdream.media.audio.save_audio`, this writes: the same up to float rounding of the RMS sums (taken
    block by block), identical after 24-bit PCM in the tests. Progress: one event per ascent step. Missing,
    undecodable, empty or non-finite inputs raise MediaError; nothing is written then.
    """
    objective = check_dream(backbone, objective, params)
    check_output(check_audio_suffix(output_path), input_path)
    net = backbone.sample_rate or 16000
    rate, channels, chunks = stream_audio(input_path, BLOCK)
    weight = next(backbone.module.parameters(), None)  # the network runs in its own dtype and place
    dtype = torch.float32 if weight is None else weight.dtype
    device = torch.device("cpu") if weight is None else weight.device

    with ExitStack() as stack:
        source = stack.enter_context(_scratch(channels))  # (n, C) at rate
        x = stack.enter_context(_scratch(1))  # mono at the network's rate
        change = stack.enter_context(_scratch(1))  # the dreamed change at rate, times mix

        # Pass 1: decode; mix to mono and resample as a stream.
        down = StreamResampler(rate, net)
        source_squares = 0.0
        for chunk in chunks:
            if not np.isfinite(chunk).all():
                raise MediaError(f"{input_path} holds NaN or infinite samples; re-export it as PCM audio")
            source.append(chunk.T)
            source_squares += float(np.square(chunk, dtype=np.float64).sum())
            x.append(down(mono_mix(torch.from_numpy(chunk)).numpy()))
        n = source.n
        if n == 0:
            raise MediaError(f"{input_path} holds no audio samples; give a sound at least a fraction of a second long")
        x.append(down.flush())
        x.fit(resampled_length(n, rate, net))
        level = math.sqrt(x.sum_squares() / x.n)

        # Pass 2: dream the segments in order; the change back at the input's rate, as a stream.
        up = StreamResampler(net, rate)
        limit = min(n, resampled_length(x.n, net, rate))

        def read(a: int, b: int) -> torch.Tensor:
            return torch.from_numpy(x.read(a, b)[:, 0]).to(device=device, dtype=dtype)

        for part in dream_segments(read, x.n, level, backbone, objective, params, progress=progress):
            y = part.detach().double().cpu().numpy()
            change.append(up(y), limit)
        change.append(up.flush(), limit)
        change.fit(n)

        # Pass 3: loudness and peaks, measured and rendered block by block.
        window = limiter_window(rate)

        def blocks(a: float, gains: tuple[float, ...]) -> Iterator[torch.Tensor]:
            context = 2 * window * len(gains)  # how far apply_level looks on each side
            for lo in range(0, n, BLOCK):
                hi = min(n, lo + BLOCK)
                start, stop = max(0, lo - context), min(n, hi + context)
                y = apply_level(torch.from_numpy(source.read(start, stop).T),
                                torch.from_numpy(change.read(start, stop)[:, 0]), a, gains, window=window)
                yield y[:, lo - start:hi - start]

        def stats(a: float, gains: tuple[float, ...]) -> tuple[float, float]:
            squares, top = 0.0, 0.0
            for y in blocks(a, gains):
                squares += float(y.double().square().sum())
                top = max(top, float(y.abs().max()))
            return math.sqrt(squares / (channels * n)), top

        a, gains = plan_level(stats, math.sqrt(source_squares / (channels * n)))
        with audio_writer(output_path, rate, channels, provenance) as write:
            for y in blocks(a, gains):
                write(y)
    return str(output_path)
