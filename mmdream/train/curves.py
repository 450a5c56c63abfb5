"""Learning curves of a training run as a PNG (matplotlib, Agg canvas: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mmdream.media.files import atomic_path


def save_learning_curves(path: str | os.PathLike[str], history: Sequence[dict[str, float]], title: str = "") -> Path:
    """Loss (left) and accuracy (right) per epoch, training and held-out, written atomically to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(10, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for i, (metric, label) in enumerate((("loss", "cross-entropy"), ("acc", "accuracy"))):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot(epochs, [r[f"train_{metric}"] for r in history], label="training", marker=".")
        if all(f"val_{metric}" in r for r in history):
            ax.plot(epochs, [r[f"val_{metric}"] for r in history], label="held out", marker=".")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        if metric == "acc":
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=10)
    p = Path(path)
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format="png")
    return p
