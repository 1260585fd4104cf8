"""Progress as log lines, for runs whose stderr is not a terminal (nohup, a batch job, CI).

Lightning's progress bar is off there, so a long fine-tuning run would otherwise print nothing between its start and
its end. :class:`ProgressLog` writes one INFO line at most every ``interval_s`` seconds of training::

    step 120/624 (19%) · epoch 1 · 4.6 steps/min · loss 1.392 · about 1 h 49 min left

and one line per dev evaluation (its score).
"""
from __future__ import annotations

import logging
import math
import time
from typing import Any

import lightning as L

__all__ = ["ProgressLog", "format_duration"]

log = logging.getLogger("kgemo.training")


def format_duration(seconds: float) -> str:
    """``"1 h 49 min"``, ``"12 min"``, ``"40 s"``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


class ProgressLog(L.Callback):
    """One log line every ``interval_s`` seconds of training, and one per dev evaluation."""

    def __init__(self, interval_s: float = 60.0, clock=time.monotonic):
        self.interval_s = interval_s
        self.clock = clock
        self._start: float | None = None
        self._start_step = 0
        self._last: float | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._start = self._last = self.clock()
        self._start_step = trainer.global_step  # a resumed run: the rate counts only this attempt's steps

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        now = self.clock()
        if self._start is None or now - self._last < self.interval_s:
            return
        self._last = now
        step, total = trainer.global_step, trainer.estimated_stepping_batches
        done = step - self._start_step
        rate = done / max(now - self._start, 1e-9)  # steps per second
        known = bool(total) and math.isfinite(total)  # an iterable loader without a length: inf
        parts = [f"step {step}/{total} ({100 * step / total:.0f}%)" if known else f"step {step}",
                 f"epoch {trainer.current_epoch + 1}", f"{60 * rate:.1f} steps/min"]
        metrics = trainer.callback_metrics
        loss = metrics.get("train_loss_step", metrics.get("train_loss"))
        if loss is not None:
            parts.append(f"loss {float(loss):.3f}")
        if known and rate > 0:
            parts.append(f"about {format_duration((total - step) / rate)} left")
        log.info(" · ".join(parts))

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        score = trainer.callback_metrics.get("dev_score")
        if score is not None:
            log.info("dev at step %d: %.2f", trainer.global_step, float(score))
