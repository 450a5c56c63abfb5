"""Spectrogram previews: labelled log-mel spectrograms of clips (before / after), stacked in one PNG.

>>> save_spectrogram_preview("preview.png", [("input", wave, 48000), ("output", out, 48000)])

Each panel is a clip's log-mel spectrogram (2048-point frames, hop 512, 128 Slaney mel bands up to half its rate,
power in dB re its own maximum, 80 dB shown) with a time axis in seconds and a frequency axis in Hz. Long clips
are shown in at most ``max_columns`` columns, each the mean power of consecutive frames. A clip is given as samples
or as a stream of blocks (a file decoded as it is read); the frames are computed a chunk at a time and pooled as
they come, so the memory a panel needs is bounded by a chunk and its columns, whatever the clip's length.
Drawn with matplotlib's Agg canvas (no display, no global pyplot state) and written atomically (local or s3://).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmdream.errors import MediaError, ParameterError
from mmdream.ops.mel import MelParams, filter_bank

__all__ = ["Panel", "spectrogram_panel", "save_spectrogram_preview"]

N_FFT, HOP, N_MELS = 2048, 512, 128
MAX_COLUMNS = 1200
RANGE_DB = 80.0
_CHUNK_FRAMES = 1024  # frames transformed at once: 8 MB of samples
_BLOCK = 1 << 18  # samples of an in-memory clip mixed to mono at once


@dataclass(frozen=True)
class Panel:
    """One clip's picture: ``db`` ``(n_mels, columns)`` (0 dB = its loudest column and band), its length in
    seconds and its rate (the mel axis reaches ``rate / 2``)."""

    label: str
    db: np.ndarray
    duration_s: float
    rate: int


class _Columns:
    """Mel power of consecutive STFT frames fed in blocks, pooled into at most ``2 max_columns`` columns of
    ``group`` frames (pairs of columns merge, ``group`` doubles, whenever there are more): bounded memory."""

    def __init__(self, rate: int, max_columns: int) -> None:
        self.fb = filter_bank(MelParams(sample_rate=rate, n_fft=N_FFT, n_mels=N_MELS)).float()
        self.window = torch.hann_window(N_FFT)
        self.max_columns = max_columns
        self.group = 1
        self.sums: list[torch.Tensor] = []  # per column: mel power (n_mels,) summed over its frames
        self.counts: list[int] = []  # frames in each column (the last may be partial)
        self.pending = torch.zeros(N_FFT // 2)  # samples not yet framed, starting at the next frame

    def feed(self, mono: torch.Tensor, last: bool = False) -> None:
        """Append samples ``(k,)``; ``last``: the clip ends here (zero-padded like a centred STFT)."""
        self.pending = torch.cat([self.pending, mono.float(), torch.zeros(N_FFT // 2 if last else 0)])
        count = 0 if self.pending.shape[0] < N_FFT else 1 + (self.pending.shape[0] - N_FFT) // HOP
        for start in range(0, count, _CHUNK_FRAMES):
            frames = self.pending[start * HOP:(min(start + _CHUNK_FRAMES, count) - 1) * HOP + N_FFT]
            power = torch.fft.rfft(frames.unfold(0, N_FFT, HOP) * self.window, dim=-1).abs().square()
            self._add((power @ self.fb.t()).double())
        self.pending = self.pending[count * HOP:]

    def _add(self, mel: torch.Tensor) -> None:
        i = 0
        while i < mel.shape[0]:
            if not self.counts or self.counts[-1] >= self.group:
                self.sums.append(torch.zeros(N_MELS, dtype=torch.float64))
                self.counts.append(0)
            take = min(self.group - self.counts[-1], mel.shape[0] - i)
            self.sums[-1] += mel[i:i + take].sum(dim=0)
            self.counts[-1] += take
            i += take
            if len(self.counts) > 2 * self.max_columns and self.counts[-1] >= self.group:
                self._merge()

    def _merge(self) -> None:
        self.sums = [sum(self.sums[j:j + 2]) for j in range(0, len(self.sums), 2)]
        self.counts = [sum(self.counts[j:j + 2]) for j in range(0, len(self.counts), 2)]
        self.group *= 2

    def mean_power(self) -> np.ndarray:
        """``(n_mels, columns)``, at most ``max_columns`` columns."""
        while len(self.counts) > self.max_columns:
            self._merge()
        return (torch.stack(self.sums) / torch.tensor(self.counts, dtype=torch.float64)[:, None]).t().numpy()


def spectrogram_panel(label: str, wave: torch.Tensor | Iterable[np.ndarray | torch.Tensor], rate: int,
                      max_columns: int = MAX_COLUMNS) -> Panel:
    """Log-mel picture of a clip at ``rate`` (channels averaged), at most ``max_columns`` columns wide.

    ``wave``: samples ``(C, n)`` or ``(n,)``, or blocks ``(C, k)`` in order (e.g. :func:`mmdream.media.audio.
    stream_audio`'s), so a file is pictured without loading it.
    """
    if not isinstance(rate, int) or isinstance(rate, bool) or rate <= 0:
        raise ParameterError(f"sample rate must be a positive integer; got {rate!r}")
    if max_columns < 1:
        raise ParameterError(f"max_columns must be positive; got {max_columns}")
    if isinstance(wave, torch.Tensor):
        if wave.dim() not in (1, 2):
            raise ParameterError(f"a preview needs samples (channels, n) or (n,); got {tuple(wave.shape)}")
        flat = wave.detach().reshape(-1, wave.shape[-1])
        wave = (flat[:, i:i + _BLOCK] for i in range(0, flat.shape[-1], _BLOCK))
    columns = _Columns(rate, max_columns)
    n = 0
    for block in wave:
        mono = torch.as_tensor(block).reshape(-1, block.shape[-1]).float().mean(dim=0).cpu()
        columns.feed(mono)
        n += mono.shape[0]
    if n == 0:
        raise ParameterError(f"the clip '{label}' holds no samples; nothing to preview")
    columns.feed(torch.zeros(0), last=True)
    db = 10.0 * np.log10(np.maximum(columns.mean_power(), 1e-20))
    db = np.maximum(db - db.max(), -RANGE_DB)
    return Panel(label, db.astype(np.float32), n / rate, rate)


def _draw(panels: Sequence[Panel], path: Path) -> None:
    import librosa
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 2.6 * len(panels)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for i, p in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        image = ax.imshow(p.db, origin="lower", aspect="auto", cmap="magma", vmin=-RANGE_DB, vmax=0.0,
                          extent=(0.0, p.duration_s, 0.0, float(N_MELS)), interpolation="nearest")
        centres = librosa.mel_frequencies(n_mels=N_MELS, fmin=0.0, fmax=p.rate / 2)
        ticks = [f for f in (0, 250, 500, 1000, 2000, 4000, 8000, 16000) if f <= p.rate / 2]
        ax.set_yticks([float(np.interp(f, centres, np.arange(N_MELS) + 0.5)) for f in ticks])
        ax.set_yticklabels([f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks])
        ax.set_ylabel("Hz")
        ax.set_xlabel("time (s)")
        ax.set_title(f"{p.label}  ({p.duration_s:.2f} s, {p.rate} Hz)", loc="left", fontsize=10)
        fig.colorbar(image, ax=ax, label="dB", pad=0.01)
    fig.savefig(path, format="png")


Clip = tuple[str, "torch.Tensor | Iterable[np.ndarray | torch.Tensor]", int]


def save_spectrogram_preview(path: str | os.PathLike[str], clips: Sequence[Clip], *,
                             max_columns: int = MAX_COLUMNS) -> list[Panel]:
    """Write a PNG of the log-mel spectrograms of ``clips`` ``[(label, samples or blocks, rate)]`` (see
    :func:`spectrogram_panel`), stacked in that order, to ``path`` (local or s3://, atomically). Returns the
    panels drawn."""
    from mmdream.media.storage import local_output

    if str(path).lower().rpartition(".")[2] != "png":
        raise MediaError(f"preview {path} must be a .png file")
    if not clips:
        raise ParameterError("a preview needs at least one clip")
    panels = [spectrogram_panel(label, wave, rate, max_columns) for label, wave, rate in clips]
    with local_output(str(path)) as tmp:
        _draw(panels, tmp)
    return panels
