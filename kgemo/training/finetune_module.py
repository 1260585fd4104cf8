"""The network fine-tuning trains, and its LightningModule.

``build_net`` makes the untrained network of a config: the base transformer (LoRA-wrapped in ``mode: lora``) with
mean pooling, and one linear head per task. :class:`FinetuneModule` trains it on batches of
:mod:`~kgemo.training.utterance_batches` with the trainer's parts: the dev score of
:func:`~kgemo.training.monitor.monitor_value`, and checkpoints that hold only the trainable weights.
"""
from __future__ import annotations

import math
import time
from typing import Mapping, Sequence

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from ..data import Conversation, LabelSpace
from ..encoders.architectures import lora_target_modules
from ..encoders.encoder_inputs import ContextFormat, InputTokenizer, conversation_inputs
from ..encoders.pooled_transformer import BaseModel, PooledTransformer, TaskHeads, embed_inputs, load_transformer
from ..errors import KgemoError
from ..metrics import score
from .finetune_config import FinetuneConfig, FinetuneTrainConfig, LoraSettings
from .monitor import monitor_value
from .utterance_batches import BucketBatches

__all__ = ["FinetuneModule", "build_net"]


def _wrap_lora(transformer, lora: LoraSettings, source: str):
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:  # pragma: no cover
        raise KgemoError("mode lora needs the package peft (pip install peft)") from exc
    try:  # the configured names, else the attention's query and value projections of this architecture
        targets = lora_target_modules(transformer, lora.target_modules)
    except KgemoError as exc:
        raise KgemoError(f"{source}: {exc}") from None
    cfg = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                     bias="none")
    return get_peft_model(transformer, cfg)


def build_net(config: FinetuneConfig, base: BaseModel, label_spaces: Mapping[str, LabelSpace],
              source: str = "config") -> tuple[PooledTransformer, TaskHeads]:
    """The untrained network of ``config``: the base (LoRA-wrapped in mode lora) with mean pooling, and heads."""
    transformer = load_transformer(base.transformer_dir)
    if config.encoder.mode == "lora":
        transformer = _wrap_lora(transformer, config.lora, source)
    net = PooledTransformer(transformer)
    heads = TaskHeads(net.dim, {t: len(s) for t, s in label_spaces.items()}, config.encoder.head_dropout)
    return net, heads


class FinetuneModule(L.LightningModule):
    """Transformer + mean pooling + linear heads, trained with (class-weighted) cross-entropy summed over tasks.

    Logged: ``train_loss`` and, at every dev evaluation, ``dev/<task>/<metric>`` and ``dev_score`` (what early
    stopping and the best checkpoint watch: ``train.monitor``, :func:`~kgemo.training.monitor.monitor_value`).

    Args:
        net: the pooled transformer (LoRA-wrapped or not).
        heads: one linear head per task.
        label_spaces, metrics: task → label space, metric name.
        train: optimisation settings.
        class_weights: task → per-class loss weights (from the train split).
        total_steps: optimiser steps of the whole run (for the schedule).
        tokenizer: for :meth:`encode_conversations`.
        context: for :meth:`encode_conversations`.
        normalize: for :meth:`encode_conversations`.
    """

    def __init__(self, net: PooledTransformer, heads: TaskHeads, label_spaces: Mapping[str, LabelSpace],
                 metrics: Mapping[str, str], train: FinetuneTrainConfig,
                 class_weights: Mapping[str, torch.Tensor], total_steps: int, tokenizer: InputTokenizer,
                 context: ContextFormat, normalize: bool = True, head_input: str = "pooled"):
        super().__init__()
        self.head_input = head_input
        self.net, self.heads = net, heads
        self.label_spaces, self.metrics, self.train_cfg = dict(label_spaces), dict(metrics), train
        self.tasks = list(self.label_spaces)
        self.total_steps = max(1, total_steps)
        self.tokenizer, self.context, self.normalize = tokenizer, context, normalize
        for task in self.tasks:
            w = class_weights.get(task)
            self.register_buffer(f"cw_{task}", None if w is None else torch.as_tensor(w, dtype=torch.float32),
                                 persistent=False)
        self.sampler: BucketBatches | None = None
        self.strict_loading = False  # checkpoints hold the trainable weights only (see on_save_checkpoint)
        self._preds: dict[str, list[torch.Tensor]] = {}
        self.last_dev: dict[str, float] = {}
        self.last_dev_pairs: tuple[int, dict] | None = None
        self.train_seconds, self.train_utterances = 0.0, 0

    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        pooled = self.net(inputs)                                            # (B, H)
        if self.head_input == "normalized":
            pooled = F.normalize(pooled, dim=-1) * math.sqrt(pooled.shape[-1])
        return self.heads(pooled)                                            # task → (B, C)

    def loss(self, logits: Mapping[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        total = logits[self.tasks[0]].sum() * 0.0  # a zero with a graph, for batches without any label
        for k, task in enumerate(self.tasks):
            y = labels[:, k]
            if (y >= 0).any():
                ce = F.cross_entropy(logits[task].float(), y, weight=getattr(self, f"cw_{task}"), ignore_index=-1)
                total = total + self.train_cfg.task_weights.get(task, 1.0) * ce
        return total

    def training_step(self, batch, batch_idx):
        loss = self.loss(self(batch), batch["labels"])
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True,
                 batch_size=batch["labels"].shape[0])
        return loss

    # Throughput: time from the start of a batch to the end of its optimiser step (forward + backward + step).
    def on_train_batch_start(self, batch, batch_idx):
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.train_seconds += time.perf_counter() - self._t0
        self.train_utterances += int(batch["labels"].shape[0])

    def validation_step(self, batch, batch_idx):
        logits = self(batch)
        for k, task in enumerate(self.tasks):
            self._preds.setdefault(f"{task}/pred", []).append(logits[task].argmax(-1).cpu())
            self._preds.setdefault(f"{task}/true", []).append(batch["labels"][:, k].cpu())

    def on_validation_epoch_end(self):
        preds, self._preds = self._preds, {}
        scores, pairs = {}, {}
        for task in self.tasks:
            if f"{task}/true" in preds:
                y_true, y_pred = torch.cat(preds[f"{task}/true"]), torch.cat(preds[f"{task}/pred"])
                keep = y_true >= 0
                pairs[task] = (y_true[keep].numpy(), y_pred[keep].numpy())
                scores[task] = score(self.metrics[task], *pairs[task], self.label_spaces[task])
                self.log(f"dev/{task}/{self.metrics[task]}", scores[task])
        if scores:
            self.log("dev_score", monitor_value(self.train_cfg.monitor, scores, self.tasks), prog_bar=True)
        self.last_dev = scores
        # What predict_split would give on dev with these weights (a single process saw all of dev): the final
        # scoring reuses it when this evaluation was the best, instead of predicting dev once more.
        single = self.trainer.world_size == 1 and not self.trainer.sanity_checking
        self.last_dev_pairs = (self.global_step, pairs) if single else None

    def configure_optimizers(self):
        cfg = self.train_cfg
        decay, no_decay, head = [], [], []
        for name, p in self.named_parameters():
            if not p.requires_grad:
                continue
            if name.startswith("heads."):
                head.append(p)
            elif p.ndim < 2:  # biases and LayerNorm weights: decaying them only hurts
                no_decay.append(p)
            else:
                decay.append(p)
        groups = [{"params": decay, "weight_decay": cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0},
                  {"params": head, "weight_decay": cfg.weight_decay, "lr": cfg.head_lr or cfg.lr}]
        opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=cfg.lr)
        warm = int(cfg.warmup * self.total_steps)
        total = self.total_steps

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (total - step) / max(1, total - warm))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # -- checkpoints: tensors and primitives only, so they load with weights_only=True --------------------------
    def trainable_state(self) -> dict[str, torch.Tensor]:
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v.detach().cpu().clone() for k, v in self.state_dict().items() if k in names}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The frozen base is rebuilt from its folder on resume; storing it again would cost 90 MB+ per save.
        checkpoint["state_dict"] = self.trainable_state()
        loop = self.trainer.fit_loop
        checkpoint["kgemo_sampler"] = {"epoch": int(loop.epoch_progress.current.processed),
                                       "batches_done": int(loop.epoch_loop.batch_progress.current.completed)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("kgemo_sampler")
        if state and self.sampler is not None:
            self.sampler.resume(state["epoch"], state["batches_done"])

    # -- using the trained model --------------------------------------------------------------------------------
    def encode_conversations(self, conversations: Sequence[Conversation], batch_size: int = 64
                             ) -> list[np.ndarray]:
        """Features as the saved folder computes them (same inputs, pooling, normalisation), unmerged."""
        per_conv = [conversation_inputs(c, self.context) for c in conversations]
        flat = [x for inputs in per_conv for x in inputs]
        feats = embed_inputs(self.net, self.tokenizer, flat, batch_size, str(self.device), self.normalize, False)
        bounds = np.cumsum([0] + [len(x) for x in per_conv])
        return [feats[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    @torch.inference_mode()
    def predict_split(self, loader) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """task → (true ids, predicted ids) over a loader, unlabelled utterances dropped."""
        was = self.training
        self.eval()
        out: dict[str, tuple[list, list]] = {t: ([], []) for t in self.tasks}
        for batch in loader:
            batch = {k: v.to(self.device) for k, v in batch.items()}
            logits = self(batch)
            for k, task in enumerate(self.tasks):
                out[task][0].append(batch["labels"][:, k].cpu())
                out[task][1].append(logits[task].argmax(-1).cpu())
        self.train(was)
        result = {}
        for task, (t, p) in out.items():
            y_true, y_pred = torch.cat(t).numpy(), torch.cat(p).numpy()
            keep = y_true >= 0
            result[task] = (y_true[keep], y_pred[keep])
        return result

