"""Class weights for a weighted cross-entropy, computed from the training labels."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ..data.labels import LabelSpace
from ..errors import DataFormatError

__all__ = ["CLASS_WEIGHT_SCHEMES", "class_weights"]

log = logging.getLogger(__name__)

#: The weighting schemes by name (``None`` = unweighted); configs are checked against it when they load.
CLASS_WEIGHT_SCHEMES = ("inverse", "sqrt_inverse", None)


def class_weights(y_train: Any, n_classes: int | LabelSpace, scheme: str | None = "inverse") -> np.ndarray:
    r"""Per-class loss weights from the **training split's** labels.

    .. math::
        w_c = \frac{N}{C\, n_c} \quad(\text{inverse}),\qquad
        w_c = \sqrt{\frac{N}{C\, n_c}} \quad(\text{sqrt\_inverse}),\qquad w_c = 1 \quad(\text{None})

    with :math:`n_c` the count of class c, N the number of labelled utterances and C the number of classes; the
    ``inverse`` weights equal sklearn's ``compute_class_weight("balanced")`` and are 1 for a balanced split.

    Pass the **train** labels only. Weights computed on the dev or test split (as KET's released code did) leak
    the evaluation distribution into training; the trainer passes the train split's labels.

    Args:
        y_train: label ids of the training utterances (any shape; ``-1`` = unlabelled, skipped).
        n_classes: number of classes, or the task's :class:`LabelSpace`.
        scheme: ``"inverse"``, ``"sqrt_inverse"`` or ``None`` (all ones).

    Returns:
        ``float32`` array of shape ``(n_classes,)``. A class absent from ``y_train`` gets weight 0 (it never
        enters the training loss anyway) and a logged warning.
    """
    if scheme not in CLASS_WEIGHT_SCHEMES:
        raise ValueError(f"unknown class-weight scheme {scheme!r}; expected one of {CLASS_WEIGHT_SCHEMES}")
    n = len(n_classes) if isinstance(n_classes, LabelSpace) else int(n_classes)
    if n < 1:
        raise ValueError(f"n_classes must be >= 1, not {n}")
    if hasattr(y_train, "detach"):
        y_train = y_train.detach().cpu().numpy()
    y = np.asarray(y_train).ravel()
    if y.dtype.kind not in "iu":
        raise DataFormatError(f"class_weights: y_train has dtype {y.dtype}; expected integer class ids")
    y = y[y != -1]
    if y.size == 0:
        raise DataFormatError("class_weights: y_train has no labelled utterance")
    if y.min() < 0 or y.max() >= n:
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise DataFormatError(f"class_weights: y_train holds id {bad}, outside 0..{n - 1}")
    if scheme is None:
        return np.ones(n, dtype=np.float32)
    counts = np.bincount(y, minlength=n).astype(np.float64)
    weights = np.zeros(n, dtype=np.float64)
    present = counts > 0
    weights[present] = y.size / (n * counts[present])
    if not present.all():
        log.warning("class_weights: classes %s never occur in y_train; they get weight 0",
                    np.flatnonzero(~present).tolist())
    if scheme == "sqrt_inverse":
        weights = np.sqrt(weights)
    return weights.astype(np.float32)
