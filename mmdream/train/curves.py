"""Learning curves of a training run as a PNG (matplotlib, Agg canvas: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mmdream.media.files import atomic_path


# a panel: its y label and the curves it draws, (history key, legend label); a curve missing from any epoch is left out
Panel = tuple[str, Sequence[tuple[str, str]]]
CLASSIFIER_PANELS: tuple[Panel, ...] = (
    ("cross-entropy", (("train_loss", "training"), ("val_loss", "held out"))),
    ("accuracy", (("train_acc", "training"), ("val_acc", "held out"))),
)


def save_learning_curves(path: str | os.PathLike[str], history: Sequence[dict[str, float]], title: str = "",
                         panels: Sequence[Panel] = CLASSIFIER_PANELS) -> Path:
    """Per-epoch curves side by side, written atomically to ``path``; by default a classifier's loss (left) and
    accuracy (right), training and held out."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [r["epoch"] for r in history]
    fig = Figure(figsize=(5 * len(panels), 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for i, (ylabel, curves) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for key, label in curves:
            if all(key in r for r in history):
                ax.plot(epochs, [r[key] for r in history], label=label, marker=".")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if ylabel == "accuracy":
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title, fontsize=10)
    p = Path(path)
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format="png")
    return p
