"""Reading audio from any file PyAV decodes (WAV, FLAC, MP3, OGG, the sound of a video) as float32 tensors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from mmdream.errors import MediaError, ParameterError
from mmdream.media.video import read_audio

RESAMPLER = "soxr_hq"


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``(..., n)`` float32 at ``rate`` -> ``(..., m)`` at ``target`` with librosa (soxr, high quality)."""
    if rate == target or samples.shape[-1] == 0:
        return samples if rate == target else samples[..., :0]
    import librosa

    return librosa.resample(samples, orig_sr=rate, target_sr=target, res_type=RESAMPLER).astype(np.float32, copy=False)


def load_audio(path: str | os.PathLike[str], rate: int | None = None, mono: bool = False) -> tuple[torch.Tensor, int]:
    """Samples ``(channels, n)`` float32 in [-1, 1] and their rate.

    ``rate``: resample to it (librosa ``soxr_hq``); ``None`` keeps the file's own rate. ``mono``: average the channels
    into one (before resampling), giving ``(1, n)``. Missing or undecodable files, and files
    without an audio stream, raise MediaError.
    """
    if rate is not None and (not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0):
        raise ParameterError(f"sample rate must be a positive integer; got {rate!r}")
    p = Path(path)
    if not p.is_file():
        raise MediaError(f"input audio {p} does not exist")
    try:
        samples, own_rate = read_audio(p)
    except MediaError as exc:
        if exc.__cause__ is None:  # no audio stream, truncated: the message already says what to do
            raise
        raise MediaError(
            f"cannot decode {p} as audio ({exc.__cause__}); give a WAV, FLAC, MP3 or OGG file, or a video with sound"
        ) from exc
    if mono and samples.shape[0] != 1:
        samples = samples.mean(axis=0, keepdims=True, dtype=np.float32)
    if rate is not None:
        samples = resample(samples, own_rate, rate)
    return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), rate or own_rate


AUDIO_FORMATS = {".wav": ("WAV", "PCM_24"), ".flac": ("FLAC", "PCM_24"), ".ogg": ("OGG", "VORBIS")}


def check_audio_suffix(path: str | os.PathLike[str]) -> str:
    """The path, if its suffix names a format we write (.wav, .flac, .ogg); else a MediaError."""
    if Path(str(path)).suffix.lower() not in AUDIO_FORMATS:
        raise MediaError(f"output {path} has no audio suffix; use .wav, .flac or .ogg")
    return str(path)


def save_audio(path: str | os.PathLike[str], samples: torch.Tensor, rate: int) -> str:
    """Write ``samples`` ``(channels, n)`` in [-1, 1] (24-bit WAV/FLAC or Vorbis by suffix), local or s3://, atomically."""
    import soundfile

    from mmdream.media.storage import local_output

    fmt, subtype = AUDIO_FORMATS[Path(check_audio_suffix(path)).suffix.lower()]
    data = samples.detach().reshape(-1, samples.shape[-1]).clamp(-1, 1).t().cpu().numpy()
    with local_output(str(path)) as tmp:
        soundfile.write(str(tmp), data, rate, format=fmt, subtype=subtype)
    return str(path)
