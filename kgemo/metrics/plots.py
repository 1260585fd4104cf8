"""Confusion-matrix figure, drawn off-screen and written atomically."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ..data.labels import LabelSpace
from ..storage import atomic_write
from .report import confusion_matrix

__all__ = ["confusion_matrix_png"]


def confusion_matrix_png(y_true: Any, y_pred: Any, label_space: LabelSpace, path: str | Path,
                         normalize: str | None = "true", title: str | None = None, dpi: int = 120) -> Path:
    """Draw the confusion matrix (rows gold, columns predicted) and write it as a PNG at ``path``.

    Uses matplotlib's Agg canvas directly (no pyplot, no display, no global backend switch), so it is safe in
    headless training jobs and threads. The file is written through :func:`kgemo.storage.atomic_write`: a crash
    never leaves a half-written PNG. Positions with ``y_true == -1`` are ignored.

    Args:
        normalize: ``"true"`` (rows sum to 1, the default: per-class recall on the diagonal), ``"pred"``,
            ``"all"`` or ``None`` (raw counts); see :func:`kgemo.metrics.confusion_matrix`.
        title: figure title; defaults to the label space's name.
        dpi: resolution.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cm = confusion_matrix(y_true, y_pred, label_space, normalize=normalize)
    names = list(label_space.labels)
    n = len(names)
    side = max(4.0, 0.55 * n + 2.5)
    fig = Figure(figsize=(side, side), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    vmax = 1.0 if normalize else max(1, int(cm.max()))
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=vmax)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=names, rotation=45, ha="right")
    ax.set_yticks(range(n), labels=names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    kind = f"normalized: {normalize}" if normalize else "counts"
    ax.set_title(title if title is not None else f"{label_space.name} ({kind})")
    # Cell text only while it stays legible.
    if n <= 20:
        for i in range(n):
            for j in range(n):
                value = cm[i, j]
                text = f"{value:.2f}" if normalize else f"{int(value)}"
                ax.text(j, i, text, ha="center", va="center", fontsize=8,
                        color="white" if value > vmax / 2 else "black")
    fig.tight_layout()
    buf = io.BytesIO()
    # No "Software" metadata: the same inputs give the same bytes across matplotlib patch versions.
    fig.savefig(buf, format="png", metadata={"Software": None})
    path = Path(path)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())
    return path
