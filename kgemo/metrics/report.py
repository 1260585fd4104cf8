"""Per-class report and confusion matrix for one task of one dataset."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..data.labels import LabelSpace
from .scores import METRICS, _counts, _prepare, _safe_div, dataset_metric, prepare

__all__ = ["confusion_matrix", "classification_report", "format_report"]

_NORMALIZE = ("true", "pred", "all", None)


def confusion_matrix(y_true: Any, y_pred: Any, label_space: LabelSpace, normalize: str | None = None) -> np.ndarray:
    """Counts (or shares) of gold class i predicted as class j: rows are gold, columns predictions.

    Positions with ``y_true == -1`` are ignored (see :func:`kgemo.metrics.prepare`).

    Args:
        normalize: ``None`` (counts), ``"true"`` (each row sums to 1), ``"pred"`` (each column sums to 1) or
            ``"all"``, as in sklearn; a row or column with no samples stays 0.

    Shapes:
        output: ``(len(label_space), len(label_space))``, int64 counts or float64 shares.
    """
    if normalize not in _NORMALIZE:
        raise ValueError(f"normalize must be one of {_NORMALIZE}, not {normalize!r}")
    t, p = prepare(y_true, y_pred, label_space)
    n = len(label_space)
    cm = np.bincount(t * n + p, minlength=n * n).reshape(n, n)
    if normalize is None:
        return cm
    cm = cm.astype(np.float64)
    if normalize == "true":
        return _safe_div(cm, cm.sum(axis=1, keepdims=True).repeat(n, axis=1))
    if normalize == "pred":
        return _safe_div(cm, cm.sum(axis=0, keepdims=True).repeat(n, axis=0))
    return cm / cm.sum()


def classification_report(y_true: Any, y_pred: Any, label_space: LabelSpace, metric: str | None = None,
                          setting: str = "erc") -> dict:
    """Per-class precision / recall / F1 / support plus the dataset's metric; every score in percent.

    Args:
        label_space: the task's label space; its name picks the metric (:func:`kgemo.metrics.dataset_metric`).
        metric: a :data:`kgemo.metrics.METRICS` name, to override the dataset's default.
        setting: ``"erc"`` or ``"joint"``, passed to :func:`~kgemo.metrics.dataset_metric`.

    Returns:
        A JSON-serialisable dict::

            {"label_space": "meld/emotion", "metric": "weighted_f1", "score": 61.3,
             "support": 2610, "ignored": 0,          # labelled positions scored / y_true == -1 skipped
             "averages": {"accuracy": ..., "macro_f1": ..., "weighted_f1": ...},
             "classes": {"neutral": {"precision": ..., "recall": ..., "f1": ..., "support": 1256,
                                     "predicted": 1300}, ...}}

        Per-class precision (recall) is 0 for a class never predicted (never gold).
    """
    name = metric if metric is not None else dataset_metric(label_space, setting)
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known: {sorted(METRICS)}")
    t, p, ignored = _prepare(y_true, y_pred, label_space)
    tp, n_pred, n_gold = _counts(t, p, len(label_space))
    prec, rec = _safe_div(tp, n_pred), _safe_div(tp, n_gold)
    f1 = _safe_div(2 * prec * rec, prec + rec)
    classes = {
        lab: {"precision": 100.0 * float(prec[i]), "recall": 100.0 * float(rec[i]), "f1": 100.0 * float(f1[i]),
              "support": int(n_gold[i]), "predicted": int(n_pred[i])}
        for i, lab in enumerate(label_space.labels)
    }
    averages = {k: METRICS[k](t, p, label_space) for k in ("accuracy", "macro_f1", "weighted_f1")}
    return {
        "label_space": label_space.name,
        "metric": name,
        "score": METRICS[name](t, p, label_space),
        "support": int(t.size),
        "ignored": ignored,
        "averages": averages,
        "classes": classes,
    }


def format_report(report: dict, digits: int = 2) -> str:
    """The :func:`classification_report` dict as a fixed-width text table (for logs and the CLI)."""
    width = max([len("weighted_f1")] + [len(c) for c in report["classes"]])
    fmt = f"{{:>{width}}}  {{:>9}}  {{:>9}}  {{:>9}}  {{:>7}}  {{:>9}}"
    num = f"{{:.{digits}f}}"
    lines = [f"{report['label_space']}: {report['metric']} = {num.format(report['score'])}  "
             f"({report['support']} labelled, {report['ignored']} ignored)",
             fmt.format("class", "precision", "recall", "f1", "support", "predicted")]
    for lab, row in report["classes"].items():
        lines.append(fmt.format(lab, num.format(row["precision"]), num.format(row["recall"]),
                                num.format(row["f1"]), row["support"], row["predicted"]))
    lines.append("")
    for key, value in report["averages"].items():
        lines.append(fmt.format(key, "", "", num.format(value), report["support"], ""))
    return "\n".join(line.rstrip() for line in lines)
