"""The Lightning ``Trainer`` options every kgemo run shares: device, precision, determinism, logs and callbacks.

:func:`~kgemo.training.fit` and fine-tuning add only what is theirs (epochs and steps, devices and strategy, how
often dev is evaluated)::

    trainer = L.Trainer(max_epochs=tc.epochs, **trainer_options(tc, run_dir, steps, best, callbacks))
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping

from ..devices import lightning_precision, uses_cuda
from .checkpoints import BestCheckpoint, last_checkpoint
from .progress_log import ProgressLog

__all__ = ["trainer_options"]


def trainer_options(train: Any, run_dir: Path, steps_per_epoch: int, best: BestCheckpoint,
                    callbacks: Sequence[L.Callback] = (), mid_epoch: bool = False) -> dict[str, Any]:
    """Keyword arguments for ``L.Trainer``.

    Args:
        train: the ``train`` section (``accelerator``, ``precision``, ``deterministic``, ``grad_clip``,
            ``patience``, ``progress``: a bar, or without one a log line a minute, :class:`.ProgressLog`).
        run_dir: the run folder (logs, checkpoints).
        steps_per_epoch: optimiser steps per epoch (how often the training loss is logged).
        best: what a new best dev evaluation saves.
        callbacks: extra Lightning callbacks, after kgemo's own.
        mid_epoch: dev is evaluated (and early stopping, the rolling checkpoint and ``best`` act) inside epochs too.
    """
    bar = sys.stderr.isatty() if train.progress is None else train.progress
    return {
        "accelerator": train.accelerator,
        "precision": lightning_precision(train.precision, train.accelerator),
        "gradient_clip_val": train.grad_clip or None,
        # Some kernels (PyG's scatter-add) have no deterministic CUDA version: warn there instead of failing.
        "deterministic": ("warn" if uses_cuda(train.accelerator) else True) if train.deterministic else False,
        "callbacks": [last_checkpoint(run_dir, mid_epoch),
                      EarlyStopping("dev_score", mode="max", patience=train.patience,
                                    **({"check_on_train_epoch_end": False} if mid_epoch else {})),
                      best, *([] if bar else [ProgressLog()]), *callbacks],  # no bar: log lines instead
        # A new logs/version_N per attempt, so a resumed run keeps the log of the steps before the kill.
        "logger": L.pytorch.loggers.CSVLogger(run_dir, name="logs"),
        "default_root_dir": run_dir,
        "enable_progress_bar": bar,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": max(1, min(50, steps_per_epoch)),
    }
