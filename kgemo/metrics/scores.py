"""Each dataset's metric, by name, in one registry.

Every metric takes ``(y_true, y_pred, labels=None)`` — gold first, predictions second, as in scikit-learn — and
returns a **percentage in [0, 100]**, the unit the papers report. The order matters: several of these metrics are
asymmetric (weighted F1 weights classes by their *gold* support; the Mastodon act metric weights by the *gold*
prevalence), and a swapped call changed a published MELD number (TODKAT issue #10). Call them with keywords when
in doubt: ``score("weighted_f1", y_true=gold, y_pred=pred)``.

Inputs:

* ``y_true`` / ``y_pred``: class ids (lists, NumPy arrays or torch tensors of the same shape; any shape is
  flattened, so a padded ``(batch, time)`` array works), or label names when a :class:`LabelSpace` is given.
* Positions where ``y_true == -1`` (unlabelled utterances, padding) are **ignored**. A prediction of ``-1`` at a
  labelled position is an error: predictions are always class ids, and a ``-1`` there usually means the two
  arguments were swapped.
* ``labels``: the task's :class:`~kgemo.data.labels.LabelSpace`. It bounds the ids, decodes names, and names the
  neutral class (for ``micro_f1_no_neutral``) and the positive/negative classes (Mastodon).

Which dataset uses which metric: :data:`DATASET_METRICS`, :func:`dataset_metric`, and ``docs/metrics.md``.
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from sklearn.metrics import f1_score

from ..data.labels import LabelSpace, label_space as _label_space
from ..errors import DataFormatError

__all__ = [
    "METRICS", "DATASET_METRICS", "score", "dataset_metric", "weighted_f1", "micro_f1_no_neutral", "macro_f1",
    "accuracy", "mastodon_sentiment_f1", "mastodon_act_f1", "mastodon_act_prf", "prepare",
]

Metric = Callable[..., float]


# ---------------------------------------------------------------------------------------------------------------
# Input checks shared by every metric, the report and the confusion matrix.

def _to_array(y: Any, name: str) -> np.ndarray:
    if hasattr(y, "detach"):  # torch tensor, possibly on a GPU
        y = y.detach().cpu().numpy()
    try:
        arr = np.asarray(y)
    except ValueError as exc:  # ragged nested lists
        raise DataFormatError(f"metric input {name}: not a rectangular array ({exc}); flatten the "
                              f"per-dialogue lists first") from None
    return arr


def _to_ids(arr: np.ndarray, name: str, labels: LabelSpace | None) -> np.ndarray:
    if arr.dtype.kind in "USO":  # label names (None = unlabelled)
        if labels is None:
            raise DataFormatError(f"metric input {name} holds label names; pass the LabelSpace to decode them")
        flat = arr.ravel().tolist()
        ids = []
        for i, lab in enumerate(flat):
            if lab is None or (isinstance(lab, (int, np.integer)) and int(lab) == -1):
                ids.append(-1)
            elif isinstance(lab, (int, np.integer)):
                ids.append(int(lab))
            else:
                try:
                    ids.append(labels.index(str(lab)))
                except (KeyError, ValueError):
                    raise DataFormatError(f"metric input {name}[{i}]: unknown {labels.name} label {lab!r}; "
                                          f"expected one of {list(labels.labels)}") from None
        return np.asarray(ids, dtype=np.int64).reshape(arr.shape)
    if arr.dtype.kind == "b":
        raise DataFormatError(f"metric input {name} is boolean; expected class ids")
    if arr.dtype.kind == "f":
        if arr.size and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise DataFormatError(f"metric input {name} holds non-integer values; pass class ids (argmax of the "
                                  f"logits), not scores")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise DataFormatError(f"metric input {name} has dtype {arr.dtype}; expected integer class ids")
    return arr.astype(np.int64, copy=False)


def prepare(y_true: Any, y_pred: Any, labels: LabelSpace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Check and flatten a (gold, prediction) pair; drop the positions where ``y_true == -1``.

    Returns:
        ``(t, p)``: 1-D ``int64`` arrays of equal length >= 1, all ids in ``[0, len(labels))`` when ``labels``
        is given.

    Raises:
        DataFormatError: shapes differ, names without a label space, an unknown name, an id out of range, a
            negative prediction at a labelled position (likely a swapped call), or nothing labelled at all.
    """
    t, p, _ = _prepare(y_true, y_pred, labels)
    return t, p


def _prepare(y_true: Any, y_pred: Any, labels: LabelSpace | None) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`prepare`, plus the number of positions dropped because ``y_true == -1``."""
    t = _to_ids(_to_array(y_true, "y_true"), "y_true", labels)
    p = _to_ids(_to_array(y_pred, "y_pred"), "y_pred", labels)
    if t.shape != p.shape:
        raise DataFormatError(f"metric input: y_true has shape {t.shape} but y_pred has shape {p.shape}")
    t, p = t.ravel(), p.ravel()
    if np.any(t < -1):
        raise DataFormatError(f"metric input y_true holds id {int(t.min())}; ids are >= 0, or -1 for unlabelled")
    keep = t != -1
    t, p = t[keep], p[keep]
    if t.size == 0:
        raise DataFormatError("metric input: no labelled positions (every y_true is -1)")
    if np.any(p < 0):
        raise DataFormatError(
            f"metric input y_pred holds id {int(p.min())} at a labelled position; predictions must be class ids "
            f"(was the call score(y_pred, y_true)? the order is y_true, y_pred)")
    if labels is not None:
        n = len(labels)
        for arr, name in ((t, "y_true"), (p, "y_pred")):
            if arr.max() >= n:
                raise DataFormatError(f"metric input {name} holds id {int(arr.max())}, but {labels.name} has "
                                      f"{n} classes (ids 0..{n - 1})")
    return t, p, int(keep.size - t.size)


def _sk_f1(t: np.ndarray, p: np.ndarray, **kw) -> float:
    # zero_division=0 is sklearn's default value for an undefined F1; passing it only silences the warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return 100.0 * float(f1_score(t, p, zero_division=0, **kw))


def _counts(t: np.ndarray, p: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class: correct predictions, predictions, gold occurrences."""
    tp = np.bincount(t[t == p], minlength=n).astype(np.float64)
    n_pred = np.bincount(p, minlength=n).astype(np.float64)
    n_gold = np.bincount(t, minlength=n).astype(np.float64)
    return tp, n_pred, n_gold


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, and 0 where den == 0 (Co-GAT's convention for a class never predicted / never gold)."""
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _find(space: LabelSpace, names: Iterable[str], what: str) -> int:
    for name in names:
        if name in space:
            return space.index(name)
    raise DataFormatError(f"{space.name} has no {what} class (looked for {list(names)}); labels are "
                          f"{list(space.labels)}")


# ---------------------------------------------------------------------------------------------------------------
# The metrics.

def weighted_f1(y_true: Any, y_pred: Any, labels: LabelSpace | None = None) -> float:
    r"""Support-weighted F1 (MELD, EmoryNLP, IEMOCAP), in percent.

    .. math::
        \mathrm{wF1} = \sum_c \frac{n_c}{N}\, F1_c

    with :math:`n_c` the number of gold labels of class c: sklearn's ``f1_score(y_true, y_pred,
    average="weighted")``. Classes absent from the gold labels have weight 0.
    """
    t, p = prepare(y_true, y_pred, labels)
    return _sk_f1(t, p, average="weighted")


def macro_f1(y_true: Any, y_pred: Any, labels: LabelSpace | None = None) -> float:
    r"""Unweighted mean of the per-class F1 (DailyDialog act, and DailyDialog emotion in Co-GAT's setting).

    sklearn's ``f1_score(y_true, y_pred, average="macro")`` over the classes that occur in ``y_true`` or
    ``y_pred`` (sklearn's default, what Co-GAT's ``NormalMetric`` computed): a gold class never predicted counts
    with F1 = 0; a class of the label space that occurs in neither array is left out.
    """
    t, p = prepare(y_true, y_pred, labels)
    return _sk_f1(t, p, average="macro")


def micro_f1_no_neutral(y_true: Any, y_pred: Any, labels: LabelSpace | None = None, *,
                        neutral: int | None = None) -> float:
    r"""Micro F1 over every class except neutral (DailyDialog ERC), in percent.

    .. math::
        P = \frac{\sum_{c \ne \text{neu}} TP_c}{\#\{\hat y \ne \text{neu}\}},\quad
        R = \frac{\sum_{c \ne \text{neu}} TP_c}{\#\{y \ne \text{neu}\}},\quad F1 = \frac{2PR}{P + R}

    sklearn's ``f1_score(y_true, y_pred, labels=[all but neutral], average="micro")``. Neutral utterances still
    count: one predicted as anger is a false positive of anger. The neutral class comes from
    ``labels.neutral_index`` (id 0 in ``dailydialog/emotion``), or the ``neutral`` keyword when no label space
    is given.
    """
    if labels is not None:
        neutral = labels.neutral_index if neutral is None else neutral
        if neutral is None:
            raise DataFormatError(f"micro_f1_no_neutral: {labels.name} has no neutral class")
    elif neutral is None:
        raise DataFormatError("micro_f1_no_neutral needs the LabelSpace (or neutral=<id>) to know which class "
                              "is neutral")
    t, p = prepare(y_true, y_pred, labels)
    classes = range(len(labels)) if labels is not None else np.union1d(t, p)
    keep = [int(c) for c in classes if int(c) != neutral]
    return _sk_f1(t, p, labels=keep, average="micro")


def accuracy(y_true: Any, y_pred: Any, labels: LabelSpace | None = None) -> float:
    """Share of labelled positions predicted correctly, in percent."""
    t, p = prepare(y_true, y_pred, labels)
    return 100.0 * float(np.mean(t == p))


def mastodon_sentiment_f1(y_true: Any, y_pred: Any, labels: LabelSpace | None = None) -> float:
    r"""Mastodon sentiment F1 as Co-GAT reports it: the mean of F1(+) and F1(−), neutral ignored, in percent.

    .. math::
        F1 = \tfrac12\,(F1_{+} + F1_{-}),\qquad F1_c = \frac{2 P_c R_c}{P_c + R_c}

    with :math:`P_c = TP_c / \#\{\hat y = c\}` (0 if c is never predicted), :math:`R_c = TP_c / \#\{y = c\}`
    (0 if c never occurs in the gold labels) and :math:`F1_c = 0` when :math:`P_c + R_c = 0`. "Neutral ignored"
    means only that F1(neutral) is left out of the mean: neutral utterances still count as false positives /
    false negatives of + and −. Equal to sklearn's ``f1_score(labels=[pos, neg], average="macro",
    zero_division=0)``.

    Reproduces ``ReferMetric.validate_emot`` in RaleLee/Co-GAT ``utils/help.py`` (selected in
    ``utils/process.py::evaluate`` when ``main.py`` runs on ``dataset/mastodon``), which follows ``evalSE`` of
    Cerisara et al. (2018), cerisara/DialogSentimentMastodon ``code/hierarchicalRNN/data.py``.

    The positive and negative classes are found by name in ``labels`` ("positive"/"+", "negative"/"−");
    without ``labels`` kgemo's ``mastodon/sentiment`` space is used.
    """
    space = labels if labels is not None else _label_space("mastodon", "sentiment")
    pos = _find(space, ("positive", "+"), "positive")
    neg = _find(space, ("negative", "-"), "negative")
    t, p = prepare(y_true, y_pred, space)
    tp, n_pred, n_gold = _counts(t, p, len(space))
    prec, rec = _safe_div(tp, n_pred), _safe_div(tp, n_gold)
    f1 = _safe_div(2 * prec * rec, prec + rec)
    return 100.0 * float((f1[pos] + f1[neg]) / 2)


def mastodon_act_prf(y_true: Any, y_pred: Any, labels: LabelSpace | None = None) -> dict[str, float]:
    r"""Precision, recall and F1 of the Mastodon act metric (see :func:`mastodon_act_f1`), in percent.

    Returns ``{"f1": ..., "precision": P, "recall": R}``; R always equals the accuracy.
    """
    t, p = prepare(y_true, y_pred, labels)
    n = len(labels) if labels is not None else int(max(t.max(), p.max())) + 1
    tp, n_pred, n_gold = _counts(t, p, n)
    prevalence = n_gold / n_gold.sum()
    prec = float(np.sum(prevalence * _safe_div(tp, n_pred)))
    rec = float(np.sum(prevalence * _safe_div(tp, n_gold)))
    f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    return {"f1": 100.0 * f1, "precision": 100.0 * prec, "recall": 100.0 * rec}


def mastodon_act_f1(y_true: Any, y_pred: Any, labels: LabelSpace | None = None) -> float:
    r"""Mastodon dialog-act F1 as Co-GAT reports it (Cerisara et al. 2018's "reference" metric), in percent.

    .. math::
        \pi_c = \frac{\#\{y = c\}}{N},\quad
        P = \sum_c \pi_c \frac{TP_c}{\#\{\hat y = c\}},\quad
        R = \sum_c \pi_c \frac{TP_c}{\#\{y = c\}},\quad
        F1 = \frac{2PR}{P + R}

    P and R are the per-act precision and recall averaged with weights = each act's share of the gold labels
    (a class never predicted has precision 0); F1 is the harmonic mean of those two averages (0 if both are 0).
    R reduces to the accuracy and P to sklearn's weighted precision, so this is **not** sklearn's weighted F1
    (the prevalence-weighted mean of the per-class F1): the two differ whenever per-class precision and recall
    differ unevenly across classes.

    Reproduces ``ReferMetric.validate_act`` in RaleLee/Co-GAT ``utils/help.py`` (selected in
    ``utils/process.py::evaluate`` for ``dataset/mastodon``), which follows ``evalDA`` of Cerisara et al. (2018).
    Note that Co-GAT's ``evaluate`` unpacks that function's ``(f1, precision, recall)`` as ``(f1, r, p)``, so
    the act "r"/"p" its ``main.py`` prints are swapped; the F1 is unaffected.
    """
    return mastodon_act_prf(y_true, y_pred, labels)["f1"]


#: Metric name → ``metric(y_true, y_pred, labels=None) -> float`` (percent).
METRICS: dict[str, Metric] = {
    "weighted_f1": weighted_f1,
    "micro_f1_no_neutral": micro_f1_no_neutral,
    "macro_f1": macro_f1,
    "accuracy": accuracy,
    "mastodon_sentiment_f1": mastodon_sentiment_f1,
    "mastodon_act_f1": mastodon_act_f1,
}

#: ``"<dataset>/<task>"`` → the metric papers report for it (ERC setting). See :func:`dataset_metric`.
DATASET_METRICS: dict[str, str] = {
    "meld/emotion": "weighted_f1",
    "meld/sentiment": "weighted_f1",
    "emorynlp/emotion": "weighted_f1",
    "iemocap/emotion": "weighted_f1",
    "ekman7/emotion": "weighted_f1",
    "dailydialog/emotion": "micro_f1_no_neutral",
    "dailydialog/act": "macro_f1",
    "mastodon/sentiment": "mastodon_sentiment_f1",
    "mastodon/act": "mastodon_act_f1",
}

# Co-GAT / DCR-Net's joint act + "sentiment" setting scores DailyDialog's 7-class emotion with macro F1.
_JOINT_OVERRIDES: Mapping[str, str] = {"dailydialog/emotion": "macro_f1"}


def dataset_metric(space: str | LabelSpace, setting: str = "erc") -> str:
    """The metric name for a ``"<dataset>/<task>"`` (or its :class:`LabelSpace`).

    Args:
        space: e.g. ``"dailydialog/emotion"`` or ``label_space("dailydialog", "emotion")``.
        setting: ``"erc"`` (emotion recognition papers) or ``"joint"`` (Co-GAT / DCR-Net joint act+sentiment
            papers); they differ only for DailyDialog emotion (micro F1 without neutral vs macro F1).
    """
    name = space.name if isinstance(space, LabelSpace) else space
    if setting not in ("erc", "joint"):
        raise ValueError(f"unknown setting {setting!r}; expected 'erc' or 'joint'")
    if setting == "joint" and name in _JOINT_OVERRIDES:
        return _JOINT_OVERRIDES[name]
    try:
        return DATASET_METRICS[name]
    except KeyError:
        raise KeyError(f"no metric registered for {name!r}; known: {sorted(DATASET_METRICS)}") from None


def score(name: str, y_true: Any, y_pred: Any, label_space: LabelSpace | None = None) -> float:
    """Score predictions with the metric ``name`` (a key of :data:`METRICS`), in percent [0, 100].

    Example:
        >>> from kgemo.data.labels import label_space
        >>> score("micro_f1_no_neutral", y_true=[0, 4, 4, 1], y_pred=[4, 4, 0, 1],
        ...       label_space=label_space("dailydialog", "emotion"))
        66.66666666666666
    """
    try:
        metric = METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {sorted(METRICS)}") from None
    return metric(y_true, y_pred, label_space)
