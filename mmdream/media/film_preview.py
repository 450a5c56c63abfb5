"""A film job's preview on one time axis: a strip of dreamed frames, the soundtrack's spectrogram(s), and the
per-frame curves (dream strength, the sound's drive).

>>> save_film_preview("film.preview.png", thumbs, [panel_in, panel_out], {"strength": s, "drive": d}, fps=25.0)

``thumbs``: ``[(frame index, image (3, H, W) in [0, 1])]``, drawn at their times; ``panels``: spectrogram panels
(:func:`mmdream.media.spectrogram.spectrogram_panel`); ``curves``: per-frame series ``(frames,)`` by name. Drawn
with matplotlib's Agg canvas (no display) and written atomically (local or s3://).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from mmdream.errors import MediaError, ParameterError
from mmdream.media.spectrogram import N_MELS, RANGE_DB, Panel

__all__ = ["save_film_preview"]


def _draw(path: Path, thumbs: Sequence[tuple[int, torch.Tensor]], panels: Sequence[Panel],
          curves: Mapping[str, Sequence[float]], fps: float, duration_s: float, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = 1 + len(panels) + (1 if curves else 0)
    fig = Figure(figsize=(12, 1.6 + 1.8 * (rows - 1)), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    strip = axes[0]
    width = duration_s / max(len(thumbs), 1)
    for index, image in thumbs:
        left = min(max((index + 0.5) / fps - width / 2, 0.0), duration_s - width)  # centred on its time
        h, w = image.shape[-2:]
        strip.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), extent=(left, left + width, 0, width * h / w),
                     aspect="auto")
    strip.set_xlim(0, duration_s)
    strip.set_ylim(0, width * max((im.shape[-2] / im.shape[-1] for _, im in thumbs), default=1))
    strip.set_yticks([])
    strip.set_title(title, loc="left", fontsize=10)
    for ax, p in zip(axes[1:], panels):
        ax.imshow(p.db, origin="lower", aspect="auto", cmap="magma", vmin=-RANGE_DB, vmax=0.0,
                  extent=(0.0, p.duration_s, 0.0, float(N_MELS)), interpolation="nearest")
        ax.set_yticks([])
        ax.set_ylabel("mel")
        ax.set_title(f"{p.label} ({p.rate} Hz)", loc="left", fontsize=10)
    if curves:
        ax = axes[-1]
        for name, values in curves.items():
            ax.plot(np.arange(len(values)) / fps, np.asarray(values, dtype=np.float64), label=name, linewidth=1.2)
        ax.legend(loc="upper right", fontsize=8)
        ax.set_title("per frame", loc="left", fontsize=10)
    axes[-1].set_xlabel("time (s)")
    fig.savefig(path, format="png")


def save_film_preview(path: str | os.PathLike[str], thumbs: Sequence[tuple[int, torch.Tensor]],
                      panels: Sequence[Panel], curves: Mapping[str, Sequence[float]], *, fps: float,
                      frames: int, title: str = "dreamed frames") -> None:
    """Write the preview PNG of a film of ``frames`` frames at ``fps`` (see the module docstring); ``title``:
    the strip's."""
    from mmdream.media.storage import local_output

    if str(path).lower().rpartition(".")[2] != "png":
        raise MediaError(f"preview {path} must be a .png file")
    if not thumbs or fps <= 0 or frames <= 0:
        raise ParameterError("a film preview needs frames, a frame count and a positive frame rate")
    with local_output(str(path)) as tmp:
        _draw(tmp, thumbs, panels, curves, fps, frames / fps, title)
