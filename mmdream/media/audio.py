"""Reading audio from any file PyAV decodes (WAV, FLAC, MP3, OGG, the sound of a video) as float32 tensors."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from mmdream.errors import MediaError, ParameterError
from mmdream.media.video import iter_audio, read_audio
from mmdream.ops.resample import resample


def load_audio(path: str | os.PathLike[str], rate: int | None = None, mono: bool = False) -> tuple[torch.Tensor, int]:
    """Samples ``(channels, n)`` float32 in [-1, 1] and their rate.

    ``rate``: resample to it (:func:`mmdream.ops.resample.resample`); ``None`` keeps the file's own rate. ``mono``: average the channels
    into one (before resampling), giving ``(1, n)``. Missing or undecodable files, and files
    without an audio stream, raise MediaError.
    """
    if rate is not None and (not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0):
        raise ParameterError(f"sample rate must be a positive integer; got {rate!r}")
    p = _existing(path)
    with _decoding(p):
        samples, own_rate = read_audio(p)
    if mono and samples.shape[0] != 1:
        samples = samples.mean(axis=0, keepdims=True, dtype=np.float32)
    if rate is not None:
        samples = resample(samples, own_rate, rate)
    return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), rate or own_rate


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.is_file():
        raise MediaError(f"input audio {p} does not exist")
    return p


@contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Decoder errors raised in the block become MediaErrors saying which formats to give."""
    try:
        yield
    except MediaError as exc:
        if exc.__cause__ is None:  # no audio stream, truncated: the message already says what to do
            raise
        raise MediaError(
            f"cannot decode {path} as audio ({exc.__cause__}); give a WAV, FLAC, MP3 or OGG file, or a video with "
            f"sound"
        ) from exc


def stream_audio(path: str | os.PathLike[str], block: int = 1 << 16) -> tuple[int, int, Iterator[np.ndarray]]:
    """The rate, the channel count and the samples of an audio file, decoded as they are read: float32 chunks
    ``(channels, k)`` in [-1, 1], ``k`` about ``block`` (the last one shorter), so memory does not grow with the
    file. Errors as :func:`load_audio`'s (a missing file or no audio stream at once, corruption when met)."""
    p = _existing(path)
    with _decoding(p):
        rate, channels, frames = iter_audio(p)

    def chunks() -> Iterator[np.ndarray]:
        parts: list[np.ndarray] = []
        held = 0
        with _decoding(p):
            for part in frames:
                parts.append(part)
                held += part.shape[1]
                if held >= block:
                    yield np.concatenate(parts, axis=1)
                    parts, held = [], 0
        if parts:
            yield np.concatenate(parts, axis=1)

    return rate, channels, chunks()


AUDIO_FORMATS = {".wav": ("WAV", "PCM_24"), ".flac": ("FLAC", "PCM_24"), ".ogg": ("OGG", "VORBIS")}


def check_audio_suffix(path: str | os.PathLike[str]) -> str:
    """The path, if its suffix names a format we write (.wav, .flac, .ogg); else a MediaError."""
    if Path(str(path)).suffix.lower() not in AUDIO_FORMATS:
        raise MediaError(f"output {path} has no audio suffix; use .wav, .flac or .ogg")
    return str(path)


def save_audio(path: str | os.PathLike[str], samples: torch.Tensor, rate: int, provenance: str | None = None) -> str:
    """Write ``samples`` ``(channels, n)`` in [-1, 1] (24-bit WAV/FLAC or Vorbis by suffix), local or s3://, atomically;
    ``provenance``: a record text to embed (the file's comment tag)."""
    samples = samples.detach().reshape(-1, samples.shape[-1])
    with audio_writer(path, rate, samples.shape[0], provenance) as write:
        write(samples)
    return str(path)


@contextmanager
def audio_writer(path: str | os.PathLike[str], rate: int, channels: int, provenance: str | None = None
                 ) -> Iterator[Callable[[torch.Tensor], None]]:
    """A function writing consecutive chunks ``(channels, k)`` in [-1, 1] to ``path`` (format by suffix, as
    :func:`save_audio`), local or s3://: the file appears, complete, when the block ends without an error.
    ``provenance``: a record text for the file's comment tag (WAV ``ICMT``, FLAC/OGG ``COMMENT``)."""
    import soundfile

    from mmdream.media.storage import local_output

    fmt, subtype = AUDIO_FORMATS[Path(check_audio_suffix(path)).suffix.lower()]
    with local_output(str(path)) as tmp, soundfile.SoundFile(str(tmp), "w", rate, channels, subtype,
                                                             format=fmt) as file:
        if provenance is not None:
            file.comment = provenance
        def write(chunk: torch.Tensor) -> None:
            file.write(chunk.detach().reshape(channels, -1).clamp(-1, 1).t().cpu().numpy())

        yield write
