r"""Calibration of predicted probabilities: expected calibration error, temperature scaling, class biases.

A classifier is calibrated when, among the utterances it labels with confidence :math:`p`, a share :math:`p` is
right. The **expected calibration error** (Guo et al., ICML 2017, "On Calibration of Modern Neural Networks")
measures the gap with the maximum probability as the confidence, in :math:`M` equal-width bins
:math:`B_m = ((m-1)/M, m/M]`:

.. math::
    \mathrm{ECE} = \sum_{m=1}^{M} \frac{|B_m|}{n}\,\big|\mathrm{acc}(B_m) - \mathrm{conf}(B_m)\big|

**Temperature scaling** (same paper) divides a task's logits by one scalar :math:`T > 0` before the softmax,
:math:`\hat p = \mathrm{softmax}(\mathbf z / T)`, with :math:`T` chosen to minimise the negative log-likelihood of
held-out labels. :math:`T > 1` softens an over-confident model, :math:`T < 1` sharpens an under-confident one; the
argmax, hence every label and every F1 score, never changes. The NLL is convex in :math:`1/T`, so a 1-D search
over :math:`\log T` finds its one minimum.

**Class biases** (logit adjustment; Menon et al., ICLR 2021, "Long-tail learning via logit adjustment") add one
offset per class, :math:`\hat p = \mathrm{softmax}((\mathbf z + \mathbf b) / T)`, and so do change labels: a model
trained with class weights predicts the frequent class (neutral) less often than it occurs, and a model trained on
several datasets at once meets each with one prior. :func:`fit_class_bias` chooses :math:`\mathbf b` on held-out
data to maximise the mean of each dataset's own score (coordinate ascent on a grid); :math:`T` is then fitted on
:math:`\mathbf z + \mathbf b`.

Unlike the other metrics of this package these take probabilities or logits, not labels, and return fractions in
[0, 1] (ECE) or nats (NLL), not percentages. Positions with ``labels == -1`` are ignored.

Example:
    >>> import numpy as np
    >>> logits = np.array([[4.0, 0.0], [4.0, 0.0], [0.0, 4.0], [0.0, 4.0]])   # 98% sure every time...
    >>> labels = np.array([0, 0, 1, 0])                                       # ...and right 3 times in 4
    >>> round(expected_calibration_error(softmax(logits), labels), 3)
    0.232
    >>> t = fit_temperature(logits, labels)                                    # 4 / T = log 3
    >>> round(t, 3), round(expected_calibration_error(softmax(logits, t), labels), 3)
    (3.641, 0.0)
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

__all__ = ["expected_calibration_error", "negative_log_likelihood", "fit_temperature", "fit_class_bias", "softmax",
           "ECE_BINS", "T_RANGE"]

#: Bins of the expected calibration error (Guo et al. use 15).
ECE_BINS = 15
#: The search interval of :func:`fit_temperature` (a temperature at either end means the data wants further).
T_RANGE = (1e-2, 1e3)


def _labelled(values: np.ndarray, labels, weight=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if values.ndim != 2 or values.shape[0] != y.shape[0]:
        raise ValueError(f"expected [n, classes] scores and n labels, got {values.shape} and {y.shape}")
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)
    if w.shape != y.shape or (w < 0).any():
        raise ValueError(f"expected n non-negative weights, got shape {w.shape}")
    keep = y >= 0
    return values[keep], y[keep], w[keep]


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """:math:`\\mathrm{softmax}(\\mathbf z / T)` over the last axis, in float64."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def expected_calibration_error(probs, labels, bins: int = ECE_BINS) -> float:
    """ECE of ``probs`` ``[n, classes]`` against ``labels`` ``[n]`` (class ids; -1 ignored), confidence = the
    largest probability, ``bins`` equal-width bins over (0, 1]. 0.0 when nothing is labelled."""
    p, y, _ = _labelled(probs, labels)
    if not len(y):
        return 0.0
    conf = p.max(1)
    correct = (p.argmax(1) == y).astype(np.float64)
    # Bin m holds confidences in ((m-1)/M, m/M]; a confidence of exactly 0 cannot occur (max of a distribution).
    which = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, correct, bins) - np.bincount(which, conf, bins))
    return float(gap.sum() / len(y)) if count.sum() else 0.0


def negative_log_likelihood(logits, labels, temperature: float = 1.0, weight=None) -> float:
    """Mean :math:`-\\log \\mathrm{softmax}(\\mathbf z / T)_y` over the labelled positions (nats), weighted by
    ``weight`` ``[n]`` when given."""
    z, y, w = _labelled(logits, labels, weight)
    if not len(y) or not w.sum():
        return 0.0
    z = z / float(temperature)
    m = z.max(1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(1, keepdims=True)))[:, 0]
    return float(np.average(lse - z[np.arange(len(y)), y], weights=w))


def fit_temperature(logits, labels, tol: float = 1e-6, weight=None) -> float:
    """The temperature :math:`T` minimising :func:`negative_log_likelihood` of ``labels`` (-1 ignored), each position
    weighted by ``weight`` (e.g. 1 / its dataset's size, so that every dataset counts the same).

    A golden-section search over :math:`\\log T` in :data:`T_RANGE` (the NLL is convex in :math:`1/T`, so it has one
    minimum there or at an end), to ``tol`` in :math:`\\log T`; deterministic. ``1.0`` when nothing is labelled.
    """
    z, y, w = _labelled(logits, labels, weight)
    if not len(y) or not w.sum():
        return 1.0
    nll = lambda log_t: negative_log_likelihood(z, y, math.exp(log_t), w)  # noqa: E731
    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(a), nll(b)
    while hi - lo > tol:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(b)
    return float(math.exp((lo + hi) / 2))


def fit_class_bias(logits: Sequence, labels: Sequence, scorers: Sequence[Callable[[np.ndarray, np.ndarray], float]],
                   step: float = 0.1, limit: float = 1.5, rounds: int = 3) -> np.ndarray:
    r"""Per-class offsets :math:`\mathbf b` maximising the mean over parts of ``scorer_k(y_k, argmax(z_k + b))``.

    Args:
        logits: one ``[n_k, classes]`` array per part (e.g. per dataset; each counts once whatever its size).
        labels: one ``[n_k]`` array of class ids per part (-1 ignored).
        scorers: one ``(y_true, y_pred) -> score`` per part, higher is better (the dataset's own metric).
        step, limit: the grid each offset is searched on, ``-limit .. limit`` in ``step``.
        rounds: passes of coordinate ascent over the classes.

    Deterministic: classes in order, and an offset moves only for a strictly better mean score, the nearest to 0
    first among equals. Returned centred (mean 0; a common shift changes nothing).
    """
    parts = [_labelled(z, y) for z, y in zip(logits, labels)]
    if len(parts) != len(scorers) or not parts:
        raise ValueError(f"expected one scorer per part, got {len(parts)} parts and {len(scorers)} scorers")
    n_classes = parts[0][0].shape[1]
    grid = np.round(np.arange(-limit, limit + step / 2, step), 10)
    grid = grid[np.argsort(np.abs(grid), kind="stable")]

    def mean_score(b: np.ndarray) -> float:
        return float(np.mean([f(y, (z + b).argmax(1)) for (z, y, _), f in zip(parts, scorers)]))

    bias = np.zeros(n_classes)
    best = mean_score(bias)
    for _ in range(rounds):
        moved = False
        for c in range(n_classes):
            for x in grid:
                if x == bias[c]:
                    continue
                trial = bias.copy()
                trial[c] = x
                s = mean_score(trial)
                if s > best + 1e-12:
                    best, bias, moved = s, trial, True
        if not moved:
            break
    return bias - bias.mean()
