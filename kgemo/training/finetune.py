"""Fine-tune the utterance encoder on a dataset's own labels: ``finetune(config)`` → an encoder folder.

Strong ERC systems first fine-tune their utterance encoder on the emotion task with the conversation in the
input; this stage does that for any kgemo dataset and any Hugging Face encoder, and saves the result as a folder
that every experiment config can use as ``data: {encoder: PATH}`` (see :mod:`kgemo.encoders.finetuned_encoder`).

Input per utterance: ``"speaker: text"`` as the first segment, up to ``past_turns`` preceding turns (each
``"speaker: text"``, oldest first) as the second, cut from the oldest end beyond ``max_length`` tokens. Model:
the transformer (LoRA adapters by default, ``mode: full`` trains every weight), mean pooling, dropout and a
linear head per task; loss: cross-entropy with class weights from the train split.

Folders::

    run_dir (runs/finetune/<name>/seed<seed>)    config.yaml, checkpoints/last.ckpt (resume), best.safetensors
                                                 (trainable weights of the best dev evaluation), logs/, metrics.json
    output_dir (runs/encoders/<name>)            the encoder folder, written in one rename at the end

Example::

    kgemo finetune configs/finetune_meld.yaml train.epochs=2 --seeds 0
"""
from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
import yaml
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from ..data import Conversation, LabelSpace, dataset_files, get_dataset, load_dataset
from ..checksums import file_sha256
from ..encoders.architectures import describe, lora_target_modules
from ..encoders.encoder_inputs import ContextFormat, InputTokenizer, conversation_inputs
from ..encoders.finetuned_encoder import model_card, save_encoder_folder
from ..encoders.model_source import weights_sha256
from ..encoders.pooled_transformer import (BaseModel, PooledTransformer, TaskHeads, embed_inputs, load_base,
                                           load_tokenizer, load_transformer)
from ..errors import DataFormatError, KgemoError
from ..metrics import class_weights, score
from ..metrics.weights import CLASS_WEIGHT_SCHEMES
from ..storage import atomic_write, read_json, sha256_json, write_json
from .config import apply_overrides
from .provenance import config_origin, provenance_block

__all__ = ["FinetuneConfig", "FinetuneDataConfig", "EncoderConfig", "LoraSettings", "FinetuneTrainConfig",
           "load_finetune_config", "finetune", "build_net", "FinetuneRun", "FinetuneModule", "UtteranceSet",
           "BucketBatches"]

log = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")
HEAD_INPUTS = ("pooled", "normalized")


# -- configuration ----------------------------------------------------------------------------------------------
@dataclass
class FinetuneDataConfig:
    dataset: str = "meld"               # a dataset of the registry (kgemo.data.DATASETS)
    tasks: list[str] = field(default_factory=lambda: ["emotion"])  # one head each; must be tasks of the dataset
    root: str | None = None             # dataset root; default KGEMO_DATA or ../shared/data
    max_conversations: int | None = None  # first N conversations per split (smoke runs); None = all
    strict: bool = True                 # bad rows raise (False: skip and report)


@dataclass
class EncoderConfig:
    base: str = "default"               # "default" (packaged MiniLM), a local HF encoder folder, or a hub name
    mode: str = "lora"                  # lora: train low-rank adapters only; full: train every weight
    speaker_prefix: bool = True         # each turn as "speaker: text"
    past_turns: int = 2                 # preceding turns in the second segment (0 = the utterance alone)
    max_length: int = 128               # tokens per input; the context is cut first (oldest words), never the target
    normalize: bool = True              # extracted features L2-normalised, like the packaged sentence-transformer
    head_dropout: float = 0.1           # dropout before each linear head
    head_input: str = "pooled"          # what the heads read: "pooled" (the mean-pooled vector) or "normalized"
                                        # (the extracted feature, L2-normalised, times sqrt(dim): unit scale per
                                        # dimension whatever the base, so head_lr carries over between bases)


@dataclass
class LoraSettings:
    rank: int = 8                       # r: rank of the update B·A added to each target weight
    alpha: float = 16.0                 # scaling: the update is multiplied by alpha / rank
    dropout: float = 0.1                # dropout on the adapter's input
    target_modules: list[str] | None = None  # None: the attention's query and value projections of the base's
                                             # architecture (BERT/RoBERTa query, value; MPNet q, v; DeBERTa-v2
                                             # query_proj, value_proj; kgemo.encoders.architectures)


@dataclass
class FinetuneTrainConfig:
    epochs: int = 3                     # upper bound; early stopping usually ends sooner
    max_steps: int | None = None        # stop after this many optimiser steps (smoke runs); None = no limit
    batch_size: int = 32                # utterances per step
    eval_batch_size: int = 64           # utterances per dev/test forward pass
    lr: float = 3.0e-4                  # AdamW learning rate of the encoder (LoRA wants ~10x full fine-tuning's)
    head_lr: float | None = 2.0e-3      # learning rate of the heads (None = lr): the pooled vectors are small
                                        # (MiniLM: per-dimension std ~0.2), so a head at the encoder's lr barely moves
    weight_decay: float = 0.01          # AdamW weight decay (not on biases and LayerNorm weights)
    warmup: float = 0.06                # linear warm-up over this fraction of all steps, then linear decay to 0
    grad_clip: float = 1.0              # gradient-norm clipping (0 = off)
    val_check_interval: float | int = 1.0  # dev evaluation every this fraction of an epoch (float) or steps (int)
    patience: int = 3                   # early stopping: dev evaluations without improvement
    class_weights: str | None = "sqrt_inverse"  # from the TRAIN split only: inverse, sqrt_inverse or None
    task_weights: dict[str, float] = field(default_factory=dict)  # loss weight per task (default 1)
    monitor: str = "first"              # dev score to early-stop on: "first" task, "mean" of tasks, or a task name
    bucket_batches: int = 50            # batches per length-sorted bucket (less padding; 1 = plain shuffling)
    accelerator: str = "auto"           # Lightning: auto / cpu / gpu
    precision: str = "auto"             # auto: bf16-mixed (or 16-mixed) on GPU, 32-true on CPU
    deterministic: bool = True          # torch deterministic algorithms (warn-only on GPU)
    threads: int | None = None          # torch CPU threads; None = the CPUs this process may use
    progress: bool | None = None        # progress bars; None = only when stderr is a terminal


@dataclass
class FinetuneConfig:
    name: str = "encoder"               # names the encoder folder and the run folder
    seed: int = 0                       # seeds data order, adapter/head init and dropout
    data: FinetuneDataConfig = field(default_factory=FinetuneDataConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    train: FinetuneTrainConfig = field(default_factory=FinetuneTrainConfig)
    output_dir: str = "runs/encoders/{name}"            # the encoder folder; formatted with name and seed
    run_dir: str = "runs/finetune/{name}/seed{seed}"    # checkpoints, logs, metrics; formatted likewise
    # Set on the instance by load_finetune_config (file, sha256, overrides); not a field, so not a YAML option.
    origin: ClassVar[dict[str, Any] | None] = None

    @property
    def encoder_dir(self) -> Path:
        return Path(self.output_dir.format(name=self.name, seed=self.seed))

    @property
    def work_dir(self) -> Path:
        return Path(self.run_dir.format(name=self.name, seed=self.seed))

    @property
    def context(self) -> ContextFormat:
        return ContextFormat(self.encoder.speaker_prefix, self.encoder.past_turns)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "config") -> "FinetuneConfig":
        """Build and check a config; every error names ``source`` (the YAML file) and the offending key."""
        d = dict(d)
        sections = {"data": FinetuneDataConfig, "encoder": EncoderConfig, "lora": LoraSettings,
                    "train": FinetuneTrainConfig}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KgemoError(f"{source}: unknown top-level key(s) {unknown}; known: {sorted(known)}")
        for key, sub in sections.items():
            value = d.get(key) or {}
            if not isinstance(value, Mapping):
                raise KgemoError(f"{source}: {key} must be a mapping, got {type(value).__name__}")
            bad = sorted(set(value) - {f.name for f in dataclasses.fields(sub)})
            if bad:
                raise KgemoError(f"{source}: unknown {key} option(s) {bad}; known: "
                                 f"{sorted(f.name for f in dataclasses.fields(sub))}")
            d[key] = sub(**{k: _coerce(sub, k, v, f"{source}: {key}.{k}") for k, v in value.items()})
        config = cls(**d)
        _check(config, source)
        return config


def _coerce(section: type, key: str, value: Any, where: str) -> Any:
    """YAML 1.1 reads ``4e-5`` (no dot) as a string: turn such strings into the number the field wants."""
    kind = str({f.name: f.type for f in dataclasses.fields(section)}[key])
    if isinstance(value, str) and kind.startswith(("float", "int")):
        try:
            return int(value) if kind.startswith("int") and value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise KgemoError(f"{where}={value!r} is not a number") from None
    return value


def _check(c: FinetuneConfig, source: str) -> None:
    # Checked when the config loads, so a typo fails before a model or dataset is read.
    try:
        spec = get_dataset(c.data.dataset)
    except ValueError as exc:
        raise KgemoError(f"{source}: data.dataset: {exc}") from None
    if not c.data.tasks:
        raise KgemoError(f"{source}: data.tasks is empty")
    missing = [t for t in c.data.tasks if t not in spec.tasks]
    if missing:
        raise KgemoError(f"{source}: dataset {spec.name!r} has no task {missing[0]!r}; its tasks: "
                         f"{list(spec.tasks)}")
    if c.encoder.mode not in ("lora", "full"):
        raise KgemoError(f"{source}: encoder.mode={c.encoder.mode!r}; expected lora or full")
    if not isinstance(c.encoder.past_turns, int) or c.encoder.past_turns < 0:
        raise KgemoError(f"{source}: encoder.past_turns must be an integer >= 0, got {c.encoder.past_turns!r}")
    if c.encoder.head_input not in HEAD_INPUTS:
        raise KgemoError(f"{source}: encoder.head_input={c.encoder.head_input!r}; expected one of {HEAD_INPUTS}")
    if c.encoder.max_length < 8:
        raise KgemoError(f"{source}: encoder.max_length={c.encoder.max_length} is too short")
    t = c.train
    if isinstance(t.class_weights, str) and t.class_weights.lower() in ("none", "null", ""):
        t.class_weights = None
    if t.class_weights not in CLASS_WEIGHT_SCHEMES:
        raise KgemoError(f"{source}: train.class_weights={t.class_weights!r}; expected one of "
                         f"{[s for s in CLASS_WEIGHT_SCHEMES if s]} or null")
    if t.monitor not in ("first", "mean", *c.data.tasks):
        raise KgemoError(f"{source}: train.monitor={t.monitor!r}; expected first, mean or one of {c.data.tasks}")
    if t.batch_size < 1 or t.eval_batch_size < 1 or t.epochs < 1:
        raise KgemoError(f"{source}: train.batch_size, eval_batch_size and epochs must be >= 1")
    if c.encoder.mode == "lora" and (c.lora.rank < 1 or c.lora.target_modules is not None
                                     and not c.lora.target_modules):
        raise KgemoError(f"{source}: lora.rank must be >= 1 and lora.target_modules non-empty (or null: chosen by "
                         "the base's architecture)")


def load_finetune_config(path: str | Path, overrides: Sequence[str] | None = None) -> FinetuneConfig:
    """Read a fine-tuning YAML (``configs/finetune_*.yaml``) with ``key.sub=value`` overrides; errors name it."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise KgemoError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise KgemoError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise KgemoError(f"{path}: a config must be a mapping")
    raw.setdefault("name", path.stem)
    config = FinetuneConfig.from_dict(apply_overrides(raw, list(overrides or [])), source=str(path))
    config.origin = config_origin(path, list(overrides or []))  # the run's provenance; not an option
    return config


# -- data -------------------------------------------------------------------------------------------------------
class UtteranceSet(torch.utils.data.Dataset):
    """Every utterance of a split as ``(input_ids, token_type_ids, labels)``, tokenised once.

    Args:
        conversations: the split.
        tokenizer: turns inputs into ids (context cut from its oldest end).
        context: how an utterance and its past become one input.
        label_spaces: task → label space; labels are stored as ids, -1 = unlabelled.
    """

    def __init__(self, conversations: Sequence[Conversation], tokenizer: InputTokenizer, context: ContextFormat,
                 label_spaces: Mapping[str, LabelSpace]):
        inputs, labels = [], []
        for conv in conversations:
            inputs += conversation_inputs(conv, context)
            for k, u in enumerate(conv):
                row = []
                for task, space in label_spaces.items():
                    name = u.labels.get(task)
                    try:
                        row.append(-1 if name is None else space.index(name))
                    except (KeyError, ValueError):
                        raise DataFormatError(f"utterance {k + 1}: unknown {space.name} label {name!r}; "
                                              f"expected one of {list(space.labels)}", dialogue=conv.id) from None
                labels.append(row)
        self.encoded = tokenizer(inputs)
        self.labels = torch.tensor(labels, dtype=torch.long).reshape(len(inputs), len(label_spaces))  # (N, tasks)
        self.lengths = np.array([len(ids) for ids, _ in self.encoded])

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int):
        return self.encoded[i], self.labels[i]


class BucketBatches(torch.utils.data.Sampler):
    """Shuffled batches of similar length (less padding), reproducible per (seed, epoch), resumable mid-epoch.

    Each epoch shuffles the utterances, sorts each run of ``batch_size * bucket_batches`` of them by length, cuts
    batches and shuffles the batches. After :meth:`resume` the next epoch skips the batches already trained on.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, bucket_batches: int = 50):
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.bucket = max(1, bucket_batches) * batch_size
        self.epoch, self._skip = 0, 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this before every epoch
        self.epoch = epoch

    def resume(self, epoch: int, batches_done: int) -> None:
        self.epoch, self._skip = epoch, batches_done

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.bucket):
            chunk = order[start:start + self.bucket]
            chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]
            batches += [chunk[i:i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        batches = [batches[i] for i in rng.permutation(len(batches))]
        skip, self._skip = self._skip, 0
        yield from batches[skip:]


def _collate(tokenizer: InputTokenizer):
    def collate(items):
        batch = tokenizer.pad([enc for enc, _ in items])                   # (B, T) each
        batch["labels"] = torch.stack([y for _, y in items])                # (B, tasks)
        return batch
    return collate


def _eval_loader(data: UtteranceSet, tokenizer: InputTokenizer, batch_size: int):
    # Longest first: little padding, and an out-of-memory error shows on the first batch.
    order = np.argsort(-data.lengths, kind="stable").tolist()
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    return torch.utils.data.DataLoader(data, batch_sampler=batches, collate_fn=_collate(tokenizer))


# -- the LightningModule ----------------------------------------------------------------------------------------
class FinetuneModule(L.LightningModule):
    """Transformer + mean pooling + linear heads, trained with (class-weighted) cross-entropy summed over tasks.

    Logged: ``train_loss`` and, at every dev evaluation, ``dev/<task>/<metric>`` and ``dev_score`` (what early
    stopping watches: ``train.monitor``).

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
        scores = {}
        for task in self.tasks:
            if f"{task}/true" in preds:
                y_true, y_pred = torch.cat(preds[f"{task}/true"]), torch.cat(preds[f"{task}/pred"])
                keep = y_true >= 0
                scores[task] = score(self.metrics[task], y_true[keep].numpy(), y_pred[keep].numpy(),
                                     self.label_spaces[task])
                self.log(f"dev/{task}/{self.metrics[task]}", scores[task])
        if scores:
            self.log("dev_score", monitor_value(self.train_cfg.monitor, scores, self.tasks), prog_bar=True)
        self.last_dev = scores

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


def monitor_value(mode: str, scores: Mapping[str, float], tasks: Sequence[str]) -> float:
    if mode == "first":
        return scores[tasks[0]]
    if mode == "mean":
        return float(np.mean([scores[t] for t in tasks]))
    return scores[mode]


class BestState(L.Callback):
    """Saves the trainable weights whenever the dev score improves (``best.safetensors``); survives a resume."""

    def __init__(self, path: Path):
        self.path = path
        self.best, self.best_step, self.best_epoch = -math.inf, -1, -1

    def on_validation_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("dev_score")
        if value is None or float(value) <= self.best:
            return
        self.best, self.best_step, self.best_epoch = float(value), trainer.global_step, trainer.current_epoch
        from safetensors.torch import save

        with atomic_write(self.path, "wb") as fh:
            fh.write(save(pl_module.trainable_state(), metadata={"dev_score": f"{self.best:.4f}",
                                                                   "step": str(self.best_step)}))

    def state_dict(self):
        return {"best": self.best, "best_step": self.best_step, "best_epoch": self.best_epoch}

    def load_state_dict(self, state):
        self.best, self.best_step, self.best_epoch = state["best"], state["best_step"], state["best_epoch"]


def _precision(cfg: str) -> str:
    if cfg != "auto":
        return cfg
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


# -- the stage --------------------------------------------------------------------------------------------------
@dataclass
class FinetuneRun:
    """What :func:`finetune` returns: the scores (also in ``metrics.json``), the encoder folder, and the trained
    module with its best dev weights loaded (``None`` when a finished run was found on disk)."""

    metrics: dict[str, Any]
    encoder_dir: Path
    module: FinetuneModule | None = None


def _load_splits(config: FinetuneConfig) -> tuple[dict[str, list[Conversation]], dict[str, str]]:
    d = config.data
    convs, sources = {}, {}
    for split in SPLITS:
        convs[split] = load_dataset(d.dataset, split, root=d.root, strict=d.strict)
        if d.max_conversations is not None:
            convs[split] = convs[split][:d.max_conversations]
        for p in dataset_files(d.dataset, split, root=d.root):
            sources[Path(p).name] = file_sha256(p)
    return convs, sources


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


def finetune(config: FinetuneConfig, conversations: Mapping[str, Sequence[Conversation]] | None = None,
             resume: bool = True, force: bool = False, callbacks: Sequence[L.Callback] = (),
             source: str | None = None) -> FinetuneRun:
    """Fine-tune ``config``'s encoder and write its folder; returns the run's scores and the folder.

    Args:
        config: the run.
        conversations: ``{"train": [...], "dev": [...], "test": [...]}`` to use instead of loading
            ``config.data.dataset`` (tests, custom data; labels must be in that dataset's label spaces).
            ``test`` may be missing.
        resume: continue from ``checkpoints/last.ckpt`` of the run folder when there is one.
        force: train again from the start even when the run folder holds a finished run.
        callbacks: extra Lightning callbacks.
        source: what to name in errors (the YAML file); default the config's name.

    Raises:
        KgemoError: a bad base model (nothing is written), an empty train or dev split.
    """
    source = source or config.name
    run_dir, out_dir = config.work_dir, config.encoder_dir
    metrics_path = run_dir / "metrics.json"
    if resume and not force and metrics_path.is_file() and (out_dir / "encoder.json").is_file():
        done = read_json(metrics_path)
        if done.get("complete"):
            log.info("%s: finished run found (%s); pass force=True (--force) to train again", run_dir, out_dir)
            return FinetuneRun(done, out_dir)

    # Everything that can fail on bad input is checked before the first file is written.
    base = load_base(config.encoder.base)
    spec = get_dataset(config.data.dataset)
    label_spaces = {t: spec.label_space(t) for t in config.data.tasks}
    metrics = {t: spec.metric(t) for t in config.data.tasks}
    if conversations is None:
        splits, sources = _load_splits(config)
    else:
        splits = {s: list(conversations.get(s) or []) for s in SPLITS}
        sources = {"in-memory": sha256_json([c.to_dict() for s in SPLITS for c in splits[s]])}
    for split in ("train", "dev"):
        if not splits[split]:
            raise KgemoError(f"{source}: the {split} split is empty")
    hf_tokenizer = load_tokenizer(base.transformer_dir)
    tokenizer = InputTokenizer(hf_tokenizer, config.encoder.max_length)
    data = {s: UtteranceSet(c, tokenizer, config.context, label_spaces) for s, c in splits.items() if c}

    tc = config.train
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(run_dir / "config.yaml", "w", encoding="utf-8") as fh:
        yaml.safe_dump(config.to_dict(), fh, sort_keys=False)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    else:
        from ..encoders.lazy_model import configure_threads

        configure_threads()
    L.seed_everything(config.seed, workers=True, verbose=False)

    net, heads = build_net(config, base, label_spaces, source)
    weights = {}
    if tc.class_weights:
        for k, (task, space) in enumerate(label_spaces.items()):
            weights[task] = torch.as_tensor(class_weights(data["train"].labels[:, k].numpy(), len(space),
                                                          tc.class_weights))

    sampler = BucketBatches(data["train"].lengths, tc.batch_size, config.seed, tc.bucket_batches)
    train_loader = torch.utils.data.DataLoader(data["train"], batch_sampler=sampler,
                                               collate_fn=_collate(tokenizer))
    dev_loader = _eval_loader(data["dev"], tokenizer, tc.eval_batch_size)
    steps_per_epoch = len(sampler)
    total_steps = steps_per_epoch * tc.epochs if tc.max_steps is None else min(tc.max_steps,
                                                                               steps_per_epoch * tc.epochs)
    module = FinetuneModule(net, heads, label_spaces, metrics, tc, weights, total_steps, tokenizer,
                            config.context, config.encoder.normalize, config.encoder.head_input)
    module.sampler = sampler
    module.train()  # from_pretrained returns eval mode; dropout must be on while training

    best = BestState(run_dir / "best.safetensors")
    progress = sys.stderr.isatty() if tc.progress is None else tc.progress
    gpu = torch.cuda.is_available() and tc.accelerator in ("auto", "gpu", "cuda")
    val_every = tc.val_check_interval
    if isinstance(val_every, int) and not isinstance(val_every, bool):
        val_every = min(val_every, steps_per_epoch)  # Lightning refuses an interval longer than the epoch
    trainer = L.Trainer(
        max_epochs=tc.epochs, max_steps=tc.max_steps if tc.max_steps is not None else -1,
        accelerator=tc.accelerator, devices=1, precision=_precision(tc.precision),
        gradient_clip_val=tc.grad_clip or None,
        deterministic=("warn" if gpu else True) if tc.deterministic else False,
        val_check_interval=val_every, check_val_every_n_epoch=1,
        # One rolling checkpoint, written after every dev evaluation (mid-epoch too), for resuming.
        callbacks=[ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", save_top_k=1, monitor=None,
                                   save_on_train_epoch_end=False, enable_version_counter=False),
                   EarlyStopping("dev_score", mode="max", patience=tc.patience, check_on_train_epoch_end=False),
                   best, *callbacks],
        logger=L.pytorch.loggers.CSVLogger(run_dir, name="logs"),
        default_root_dir=run_dir, enable_progress_bar=progress, enable_model_summary=False,
        num_sanity_val_steps=0, log_every_n_steps=max(1, min(50, steps_per_epoch)))
    last = run_dir / "checkpoints" / "last.ckpt"
    # force retrains a finished run, so it must not resume from that run's last checkpoint either.
    ckpt = str(last) if resume and not force and last.exists() else None
    if ckpt:
        log.info("resuming from %s", ckpt)
    else:
        (run_dir / "best.safetensors").unlink(missing_ok=True)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        # BucketBatches resumes mid-epoch itself (FinetuneModule.on_load_checkpoint), which Lightning cannot see.
        warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch.*")
        warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
        trainer.fit(module, train_loader, dev_loader, ckpt_path=ckpt, weights_only=True)
    wall = time.perf_counter() - start

    # The best dev evaluation's weights; a run too short for any dev evaluation keeps its last weights.
    if (run_dir / "best.safetensors").is_file():
        from safetensors.torch import load_file

        module.load_state_dict(load_file(str(run_dir / "best.safetensors")), strict=False)
    else:
        log.warning("%s: no dev evaluation happened; the encoder keeps the weights of the last step", run_dir)
    module.to("cuda" if gpu else "cpu")
    scores = {}
    for split in ("dev", "test"):
        if split in data:
            pairs = module.predict_split(_eval_loader(data[split], tokenizer, tc.eval_batch_size))
            scores[split] = {t: round(score(metrics[t], yt, yp, label_spaces[t]), 4) for t, (yt, yp) in pairs.items()}

    transformer_out = module.net.transformer
    hf_model = transformer_out.get_base_model() if hasattr(transformer_out, "get_base_model") else transformer_out
    n_params = sum(p.numel() for p in module.parameters())
    n_train = sum(p.numel() for p in module.parameters() if p.requires_grad)
    utt_per_s = module.train_utterances / module.train_seconds if module.train_seconds else None
    results = {"complete": True, "model": "encoder_linear_head", "config": config.name, "seed": config.seed,
               "datasets": [config.data.dataset], "tasks": list(label_spaces), "encoder": out_dir.name,
               "encoder_path": str(out_dir), "base": config.encoder.base, "context": config.context.name,
               "mode": config.encoder.mode, "metrics": metrics, "dev": scores.get("dev"), "test": scores.get("test"),
               "best_dev_score": None if best.best == -math.inf else round(best.best, 4),
               "best_step": best.best_step, "best_epoch": best.best_epoch, "steps": trainer.global_step,
               "epochs_run": round(trainer.global_step / max(1, steps_per_epoch), 3),
               "early_stopped": bool(trainer.should_stop and trainer.global_step < total_steps),
               "wall_time_s": round(wall, 1), "train_time_s": round(module.train_seconds, 1),
               "train_utterances_per_s": None if utt_per_s is None else round(utt_per_s, 2),
               "train_utterances": len(data["train"]), "parameters": n_params, "trainable_parameters": n_train,
               "device": "cuda" if gpu else "cpu", "threads": torch.get_num_threads()}
    meta = {"name": out_dir.name, "mode": config.encoder.mode,
            "base": {"model": config.encoder.base, "name": base.source.name, "path": str(base.source.path),
                     "weights_sha256": weights_sha256(base.source.path)},
            "architecture": describe(hf_model.config, type(hf_model).__name__),
            "lora": {**dataclasses.asdict(config.lora),  # the target modules as resolved for this architecture
                     "target_modules": sorted(transformer_out.peft_config["default"].target_modules)}
                    if config.encoder.mode == "lora" else None,
            "input": {"context": config.context.to_dict(), "max_length": config.encoder.max_length,
                      "segments": "first: the utterance; second: the past turns, oldest first, cut from its start"},
            "pooling": {"mode": "mean", "normalize": config.encoder.normalize},
            "head_input": config.encoder.head_input,
            "dim": net.dim,
            "tasks": {t: {"label_space": s.name, "labels": list(s.labels), "metric": metrics[t]}
                      for t, s in label_spaces.items()},
            "scores": scores,
            "data": {"datasets": [config.data.dataset], "files_sha256": sources,
                     "max_conversations": config.data.max_conversations,
                     "utterances": {s: len(d) for s, d in data.items()}},
            "training": config.to_dict(),
            "run": {k: results[k] for k in ("best_step", "best_epoch", "steps", "epochs_run", "early_stopped",
                                            "wall_time_s", "train_time_s", "train_utterances_per_s", "device",
                                            "threads", "trainable_parameters")}}
    folder = save_encoder_folder(out_dir, transformer=transformer_out, tokenizer=hf_tokenizer, heads=module.heads,
                                 mode=config.encoder.mode, meta=meta, label_spaces=label_spaces, metrics=results,
                                 card=model_card(meta))
    from ..encoders.finetuned_encoder import FinetunedEncoder

    results["encoder_id"] = FinetunedEncoder(folder).id
    results["provenance"] = provenance_block(
        config.to_dict(), config.origin,
        {"data": {config.data.dataset: sources},
         "encoder": {"name": config.encoder.base, "id": str(base.source.name),
                     "weights_sha256": meta["base"]["weights_sha256"]}})
    write_json(metrics_path, results)
    write_json(folder / "metrics.json", results)
    return FinetuneRun(results, folder, module)
