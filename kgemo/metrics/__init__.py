"""Metrics for every dataset and task kgemo trains on, by name; reports, confusion matrices, class weights.

Every score is a percentage in [0, 100]; the argument order is always ``(y_true, y_pred)``; positions with
``y_true == -1`` are ignored. See ``docs/metrics.md`` for which dataset uses which metric.

Example:
    >>> from kgemo.data.labels import label_space
    >>> from kgemo.metrics import score, dataset_metric
    >>> space = label_space("mastodon", "sentiment")          # positive, negative, neutral
    >>> score(dataset_metric(space), y_true=[0, 1, 2, -1], y_pred=[0, 2, 2, 1], label_space=space)
    50.0
"""
from __future__ import annotations

from .calibration import expected_calibration_error, fit_class_bias, fit_temperature, negative_log_likelihood
from .plots import confusion_matrix_png
from .report import classification_report, confusion_matrix, format_report
from .scores import (DATASET_METRICS, METRICS, accuracy, dataset_metric, macro_f1, mastodon_act_f1,
                     mastodon_act_prf, mastodon_sentiment_f1, micro_f1_no_neutral, prepare, score, weighted_f1)
from .weights import class_weights

__all__ = [
    "METRICS", "DATASET_METRICS", "score", "dataset_metric", "prepare",
    "weighted_f1", "micro_f1_no_neutral", "macro_f1", "accuracy", "mastodon_sentiment_f1", "mastodon_act_f1",
    "mastodon_act_prf", "classification_report", "format_report", "confusion_matrix", "confusion_matrix_png",
    "class_weights", "expected_calibration_error", "negative_log_likelihood", "fit_temperature", "fit_class_bias",
]
