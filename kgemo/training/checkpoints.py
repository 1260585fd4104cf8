"""Checkpoints and resuming, the same for every run (:func:`~kgemo.training.fit` and fine-tuning).

A run folder holds two kinds of saved state:

- ``checkpoints/last.ckpt``: one rolling Lightning checkpoint (weights, optimiser, loop counters, callback states)
  for resuming a killed run; loaded with ``weights_only=True`` (tensors and plain containers, never a full
  unpickle);
- the best dev evaluation's weights, written by a :class:`BestCheckpoint` whenever ``dev_score`` improves: what a
  run exports differs (a graph model's folder, a fine-tuned encoder's trainable weights), when it does not.

A run starts from ``last.ckpt`` when there is one (:func:`checkpoint_to_resume`) and skips training when its folder
holds a finished run (:func:`finished_run`); ``force`` trains again from the first step.
"""
from __future__ import annotations

import logging
import math
import pickle
import shutil
import warnings
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from ..errors import KgemoError
from ..storage import read_json

__all__ = ["BestCheckpoint", "last_checkpoint", "finished_run", "checkpoint_to_resume", "fit_resumable"]

log = logging.getLogger(__name__)


class BestCheckpoint(L.Callback):
    """Saves what a run keeps of its best dev evaluation, whenever ``dev_score`` improves; survives a resume.

    Subclasses say what is saved (:meth:`save`). The best score, step and epoch are part of every ``last.ckpt``, so
    a resumed run keeps comparing with the best before the kill. Lightning keys a callback's state by its class
    name: a subclass keeps its name for checkpoints written before it existed to resume with their best score.

    Args:
        path: the file or folder :meth:`save` writes; removed by :meth:`forget` when a run starts afresh.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.best, self.best_step, self.best_epoch = -math.inf, -1, -1

    def save(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """Write the new best (called in process 0 only, after ``best``, ``best_step``, ``best_epoch`` are set)."""
        raise NotImplementedError

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("dev_score")
        if value is None or float(value) <= self.best:
            return
        self.best, self.best_step, self.best_epoch = float(value), trainer.global_step, trainer.current_epoch
        if trainer.is_global_zero:
            self.save(trainer, pl_module)

    @property
    def found(self) -> bool:
        """Whether any dev evaluation happened (and so something was saved)."""
        return self.best != -math.inf

    def forget(self) -> None:
        """Remove an earlier run's best: a run that starts afresh must never report another run's weights."""
        if self.path.is_dir():
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self.path.unlink(missing_ok=True)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Graph-model checkpoints written before the step was kept have no best_step.
        self.best, self.best_step, self.best_epoch = state["best"], state.get("best_step", -1), state["best_epoch"]


def last_checkpoint(run_dir: Path, mid_epoch: bool = False) -> ModelCheckpoint:
    """The rolling ``checkpoints/last.ckpt`` for resuming (the best weights are a :class:`BestCheckpoint`'s).

    Args:
        run_dir: the run folder.
        mid_epoch: write after every dev evaluation, mid-epoch ones too (fine-tuning evaluates every
            ``train.val_check_interval``); otherwise Lightning's default, once per epoch.
    """
    options = {"save_on_train_epoch_end": False} if mid_epoch else {}
    return ModelCheckpoint(dirpath=Path(run_dir) / "checkpoints", filename="last", save_top_k=1, monitor=None,
                           enable_version_counter=False, **options)


def finished_run(run_dir: Path, resume: bool = True, force: bool = False,
                 outputs: tuple[Path, ...] = ()) -> dict[str, Any] | None:
    """The ``metrics.json`` of a finished run in ``run_dir``, to return instead of training again; None when there
    is none, when ``resume`` is off or ``force`` on, or when one of ``outputs`` (files the run writes last) is
    missing."""
    path = Path(run_dir) / "metrics.json"
    if not resume or force or not path.is_file() or not all(Path(p).is_file() for p in outputs):
        return None
    done = read_json(path)
    if not done.get("complete"):
        return None
    log.info("%s: finished run found; pass force=True (--force) to train again", run_dir)
    return done


def checkpoint_to_resume(run_dir: Path, best: BestCheckpoint, resume: bool = True,
                         force: bool = False) -> str | None:
    """``checkpoints/last.ckpt`` of ``run_dir`` when the run should continue from it, else None.

    A fresh start (no checkpoint, ``resume`` off, or ``force``: a finished run trained again starts from its first
    step, not from its last checkpoint) forgets the best of the earlier run (:meth:`BestCheckpoint.forget`).
    """
    last = Path(run_dir) / "checkpoints" / "last.ckpt"
    if resume and not force and last.exists():
        log.info("resuming from %s", last)
        return str(last)
    best.forget()
    return None


def fit_resumable(trainer: L.Trainer, module: L.LightningModule, ckpt: str | None, **loaders: Any) -> None:
    """``trainer.fit(module, ..., ckpt_path=ckpt)`` with the checkpoint loaded safely and Lightning's noise off.

    ``loaders``: ``datamodule=...`` or ``train_dataloaders=..., val_dataloaders=...``.

    Raises:
        KgemoError: ``ckpt`` holds more than tensors and plain values (it could run code if unpickled).
    """
    with warnings.catch_warnings():
        # Lightning-internal deprecation noise, and its advice to add DataLoader workers (the data is in memory).
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        # Under DDP the dev scores are computed from every process's gathered predictions (the same value in each
        # process), so Lightning's advice to average them over processes does not apply.
        warnings.filterwarnings("ignore", message=".*when logging on epoch level in distributed setting.*")
        # Fine-tuning resumes mid-epoch with its own sampler (BucketBatches), which Lightning cannot see.
        warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch.*")
        warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
        try:
            trainer.fit(module, ckpt_path=ckpt, weights_only=True, **loaders)
        except pickle.UnpicklingError as exc:
            reason = str(exc).splitlines()[0][:200]
            raise KgemoError(f"{ckpt}: the checkpoint cannot be loaded safely (it holds more than tensors and plain "
                             f"values: {reason}); delete it, or start afresh with --no-resume") from None
