"""The one LightningModule: any kgemo model, any set of tasks, the dataset's own metric."""
from __future__ import annotations

import math
from typing import Any, Mapping

import lightning as L
import torch
import torch.nn.functional as F

from ..data.labels import LabelSpace
from ..metrics import score
from ..models.base import KGModel
from .config import TrainConfig

__all__ = ["TaskModule"]


class TaskModule(L.LightningModule):
    """Wraps a :class:`~kgemo.models.KGModel`: summed (weighted) cross-entropy over tasks, dev/test scoring.

    Logged per epoch: ``train_loss``, ``dev/<task>/<metric>``, and ``dev_score`` (what early stopping and
    checkpointing watch: the first task's metric, the mean over tasks, or a named task — ``train.monitor``).

    Args:
        model: the model.
        label_spaces: task → label space (the model's).
        metrics: task → metric name in :mod:`kgemo.metrics`.
        train: optimisation settings.
        class_weights: task → per-class loss weights (from the train split), or missing for uniform.
        steps_per_epoch: used by the warm-up/cosine schedule.
    """

    def __init__(self, model: KGModel, label_spaces: Mapping[str, LabelSpace], metrics: Mapping[str, str],
                 train: TrainConfig, class_weights: Mapping[str, torch.Tensor] | None = None,
                 steps_per_epoch: int = 1):
        super().__init__()
        self.model = model
        self.label_spaces = dict(label_spaces)
        self.metrics = dict(metrics)
        self.train_cfg = train
        self.steps_per_epoch = max(1, steps_per_epoch)
        for task in self.label_spaces:
            w = (class_weights or {}).get(task)
            self.register_buffer(f"cw_{task}", None if w is None else torch.as_tensor(w, dtype=torch.float32),
                                 persistent=False)
        self._outputs: dict[str, dict[str, list[torch.Tensor]]] = {}
        self.last_scores: dict[str, dict[str, float]] = {}

    def forward(self, batch):
        return self.model(batch)

    # -- loss -----------------------------------------------------------------------------------------------
    def loss(self, logits: Mapping[str, torch.Tensor], batch,
             auxiliary: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Summed (weighted) cross-entropy over the labelled utterances, plus the model's ``auxiliary`` loss terms
        (e.g. a domain-adversarial loss; see :meth:`training_step`)."""
        total = 0.0
        for task, out in logits.items():
            y = batch["utterance"][f"y_{task}"]
            if (y >= 0).any():
                ce = F.cross_entropy(out.float(), y, weight=getattr(self, f"cw_{task}"), ignore_index=-1)
                total = total + self.train_cfg.task_weights.get(task, 1.0) * ce
        for term in (auxiliary or {}).values():
            total = total + term
        return total if torch.is_tensor(total) else logits[next(iter(logits))].sum() * 0.0

    def training_step(self, batch, batch_idx):
        # A model may define ``forward_train(batch) -> (logits, {name: loss term})`` when training adds terms of its
        # own (kgemo.adapt's domain losses); otherwise training calls forward like evaluation does.
        forward_train = getattr(self.model, "forward_train", None)
        logits, auxiliary = forward_train(batch) if forward_train is not None else (self(batch), {})
        loss = self.loss(logits, batch, auxiliary)
        n = batch["utterance"].num_nodes
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)
        for name, term in auxiliary.items():
            self.log(f"train_{name}", term, on_step=False, on_epoch=True, batch_size=n)
        return loss

    def on_train_batch_start(self, batch, batch_idx):
        # Models that follow the course of training (a gradient-reversal ramp, centre momentum) define
        # ``on_train_step(step, total_steps)``; total_steps is what the learning-rate schedule assumes.
        hook = getattr(self.model, "on_train_step", None)
        if hook is not None:
            hook(int(self.global_step), max(1, self.train_cfg.epochs * self.steps_per_epoch))

    # -- evaluation -----------------------------------------------------------------------------------------
    def _collect(self, stage: str, batch) -> None:
        logits = self(batch)
        store = self._outputs.setdefault(stage, {})
        for task, out in logits.items():
            store.setdefault(f"{task}/pred", []).append(out.argmax(-1).detach())
            store.setdefault(f"{task}/true", []).append(batch["utterance"][f"y_{task}"].detach())

    def validation_step(self, batch, batch_idx):
        self._collect("dev", batch)

    def test_step(self, batch, batch_idx):
        self._collect("test", batch)

    def _gathered(self, parts: list[torch.Tensor]) -> torch.Tensor:
        local = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long, device=self.device)
        if self.trainer is None or self.trainer.world_size == 1:
            return local.cpu()
        # DDP: ranks hold different numbers of utterances; pad with -1 (= ignored), gather, drop the padding.
        size = torch.tensor([local.numel()], device=local.device)
        longest = int(self.all_gather(size).max())
        padded = torch.full((longest,), -1, dtype=local.dtype, device=local.device)
        padded[: local.numel()] = local
        gathered = self.all_gather(padded).reshape(-1).cpu()
        return gathered

    def _finish(self, stage: str) -> None:
        store = self._outputs.pop(stage, {})
        scores: dict[str, float] = {}
        for task in self.label_spaces:
            if f"{task}/true" not in store:
                continue
            y_true = self._gathered(store[f"{task}/true"])
            y_pred = self._gathered(store[f"{task}/pred"])
            keep = y_true >= 0
            name = self.metrics[task]
            value = score(name, y_true[keep].numpy(), y_pred[keep].numpy(), self.label_spaces[task])
            scores[task] = value
            self.log(f"{stage}/{task}/{name}", value, sync_dist=False)
        if scores:
            self.log(f"{stage}_score", self.monitor_value(scores), prog_bar=True, sync_dist=False)
        self.last_scores[stage] = scores

    def monitor_value(self, scores: Mapping[str, float]) -> float:
        mode = self.train_cfg.monitor
        if mode == "first":
            return scores[next(iter(self.label_spaces))]
        if mode == "mean":
            return sum(scores.values()) / len(scores)
        return scores[mode]

    def on_validation_epoch_end(self):
        self._finish("dev")

    def on_test_epoch_end(self):
        self._finish("test")

    # -- optimisation ---------------------------------------------------------------------------------------
    def configure_optimizers(self):
        cfg = self.train_cfg
        opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        total = max(1, cfg.epochs * self.steps_per_epoch)
        warm = int(cfg.warmup_epochs * self.steps_per_epoch)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            progress = (step - warm) / max(1, total - warm)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def state_summary(self) -> dict[str, Any]:
        return {"parameters": sum(p.numel() for p in self.model.parameters())}
