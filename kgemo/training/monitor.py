"""The dev score a run watches: one number per dev evaluation, for early stopping and the best checkpoint.

Graph models (:class:`~kgemo.training.TaskModule`) and encoder fine-tuning
(:class:`~kgemo.training.finetune_module.FinetuneModule`) both log it as ``dev_score``, chosen by ``train.monitor``:

- ``first``: the first task's score (``data.tasks[0]``), the default;
- ``mean``: the mean of the tasks' scores (joint models, where no task comes first);
- a task name: that task's score.
"""
from __future__ import annotations

from typing import Mapping, Sequence

from ..errors import KgemoError

__all__ = ["monitor_value", "check_monitor", "MONITOR_MODES"]

#: ``train.monitor`` values besides a task name.
MONITOR_MODES = ("first", "mean")


def monitor_value(mode: str, scores: Mapping[str, float], tasks: Sequence[str]) -> float:
    """The dev score of ``scores`` (task → score of this evaluation) that ``mode`` watches.

    Example:
        >>> monitor_value("mean", {"act": 60.0, "sentiment": 70.0}, ["act", "sentiment"])
        65.0
    """
    if mode == "first":
        return scores[tasks[0]]
    if mode == "mean":
        # A plain left-to-right sum: what the checkpoints and results of earlier runs were selected with.
        return sum(scores.values()) / len(scores)
    return scores[mode]


def check_monitor(mode: str, tasks: Sequence[str], source: str) -> None:
    """Refuse a ``train.monitor`` that names no task of ``tasks`` when the config loads, not at the first dev
    evaluation."""
    if mode not in (*MONITOR_MODES, *tasks):
        raise KgemoError(f"{source}: train.monitor={mode!r}; expected first, mean or one of {list(tasks)}")
