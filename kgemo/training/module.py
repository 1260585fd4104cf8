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
from .distributed import gather_in_order, sum_over_processes, utterance_index
from .monitor import monitor_value

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
        #: stage → task → predicted class of every utterance scored (one-process order), from the last evaluation
        self.last_predictions: dict[str, dict[str, torch.Tensor]] = {}

    def forward(self, batch):
        return self.model(batch)

    # -- loss -----------------------------------------------------------------------------------------------
    def loss(self, logits: Mapping[str, torch.Tensor], batch,
             auxiliary: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Summed (weighted) cross-entropy over the labelled utterances, plus the model's ``auxiliary`` loss terms
        (e.g. a domain-adversarial loss; see :meth:`training_step`: under DDP each is the global batch's value, with
        the gradient of this process's utterances)."""
        # Per task: the mean over the labelled utterances (class-weighted) of the whole global batch. Under DDP each
        # process sums its share and divides by the global weight (an all-reduce every step, on every process), and
        # DDP's gradient averaging over N processes is undone by × N: the gradient of the one-process loss.
        size = self._world_size()
        total = None
        for task, out in logits.items():
            y = batch["utterance"][f"y_{task}"]
            weight = getattr(self, f"cw_{task}")
            labelled = y[y >= 0]
            denominator = (weight[labelled].sum() if weight is not None else labelled.new_tensor(labelled.numel()))
            denominator = self._sum_over_processes(denominator.float().detach(), size)
            if denominator > 0:
                ce = F.cross_entropy(out.float(), y, weight=weight, ignore_index=-1, reduction="sum")
                term = self.train_cfg.task_weights.get(task, 1.0) * ce * (size / denominator)
                total = term if total is None else total + term
        for term in (auxiliary or {}).values():
            # A model's term is already the global batch's (its sums run over the processes, see training_step), with
            # the gradient of this process's utterances: × N for DDP's averaging, the value left as it is.
            if size > 1:
                term = term + (size - 1) * (term - term.detach())
            total = term if total is None else total + term
        # No label anywhere (a DDP process's label-less padding copy): a zero that still reaches the parameters.
        return total if total is not None else logits[next(iter(logits))].sum() * 0.0

    def _world_size(self) -> int:
        trainer = self._trainer  # None outside a Trainer (the property would raise)
        return 1 if trainer is None else int(trainer.world_size)

    @staticmethod
    def _sum_over_processes(value: torch.Tensor, size: int) -> torch.Tensor:
        if size > 1:
            value = value.clone()
            torch.distributed.all_reduce(value)
        return value

    def training_step(self, batch, batch_idx):
        # A model may define ``forward_train(batch, padding, reduce) -> (logits, {name: loss term})`` when training
        # adds terms or statistics of its own (kgemo.adapt's domain losses and class centres); otherwise training
        # calls forward like evaluation does. ``padding`` [N] marks the utterances of DDP padding copies: they enter
        # no term and no statistic (their labels are gone already, but not their domain). ``reduce`` sums a tensor
        # over the processes (None in one process): the model passes every batch sum it divides by, or averages,
        # through it, so that each process computes the one-process value on the global batch.
        forward_train = getattr(self.model, "forward_train", None)
        if forward_train is not None:
            order = utterance_index(batch)
            padding = order < 0 if order is not None else None
            reduce = sum_over_processes if self._world_size() > 1 else None
            logits, auxiliary = forward_train(batch, padding=padding, reduce=reduce)
        else:
            logits, auxiliary = self(batch), {}
        loss = self.loss(logits, batch, auxiliary)
        n = batch["utterance"].num_nodes
        # Under DDP a process's loss is N × its share of the global loss: the mean over processes is the global loss.
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n,
                 sync_dist=self._world_size() > 1)
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
        order = utterance_index(batch)  # conversation index per utterance, when the loader records it (DDP)
        if order is not None:
            store.setdefault("order", []).append(order.detach())

    def validation_step(self, batch, batch_idx):
        self._collect("dev", batch)

    def test_step(self, batch, batch_idx):
        self._collect("test", batch)

    def _finish(self, stage: str) -> None:
        store = self._outputs.pop(stage, {})
        order = torch.cat(store.pop("order")) if "order" in store else None
        local = {key: torch.cat(parts) for key, parts in store.items()}
        if not local:
            return
        # DDP: every process holds the utterances of its own batches; gather them all, each exactly once (padding
        # copies dropped), in one-process order, so every process computes the one-process score.
        gathered = gather_in_order(local, order, self.all_gather if self._world_size() > 1 else None)
        scores: dict[str, float] = {}
        predictions: dict[str, torch.Tensor] = {}
        for task in self.label_spaces:
            if f"{task}/true" not in gathered:
                continue
            y_true, y_pred = gathered[f"{task}/true"], gathered[f"{task}/pred"]
            keep = y_true >= 0
            name = self.metrics[task]
            value = score(name, y_true[keep].numpy(), y_pred[keep].numpy(), self.label_spaces[task])
            scores[task] = value
            predictions[task] = y_pred
            self.log(f"{stage}/{task}/{name}", value, sync_dist=False)
        if scores:
            self.log(f"{stage}_score", monitor_value(self.train_cfg.monitor, scores, list(self.label_spaces)),
                     prog_bar=True, sync_dist=False)
        self.last_scores[stage] = scores
        self.last_predictions[stage] = predictions

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
