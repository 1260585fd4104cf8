"""The fine-tuning config (``configs/finetune_*.yaml``): typed sections with commented defaults.

::

    name: minilm-lora-meld
    seed: 0
    data: {dataset: meld, tasks: [emotion]}
    encoder: {base: default, mode: lora, past_turns: 2, max_length: 128}
    lora: {rank: 8, alpha: 16, target_modules: [query, value]}
    train: {epochs: 3, batch_size: 32, lr: 5.0e-4, val_check_interval: 0.5}

Each section is a :class:`~kgemo.settings.Settings`, read by the loader every kgemo config uses
(:func:`~kgemo.training.config_file.load_config_file`): an unknown key, a value of the wrong kind or a task the
dataset lacks is refused when the config loads, with the file and the option named, and ``key.sub=value``
overrides are checked the same way. A number YAML reads as a string (``lr: 5e-4``, no dot) is taken as that number.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from ..data import get_dataset
from ..encoders.encoder_inputs import ContextFormat
from ..errors import KgemoError
from ..settings import Settings
from .config import check_class_weights, check_conversation_count, check_neutral_share
from .config_file import load_config_file, refuse_unknown_keys
from .monitor import check_monitor

__all__ = ["FinetuneConfig", "FinetuneDataConfig", "EncoderConfig", "LoraSettings", "FinetuneTrainConfig",
           "load_finetune_config", "HEAD_INPUTS"]

#: What the heads can read (``encoder.head_input``).
HEAD_INPUTS = ("pooled", "normalized")


@dataclass
class FinetuneDataConfig(Settings):
    dataset: str = "meld"               # a dataset of the registry (kgemo.data.DATASETS) or a file of your own
    tasks: list[str] = field(default_factory=lambda: ["emotion"])  # one head each; must be tasks of the dataset
    root: str | None = None             # dataset root; default KGEMO_DATA or ../shared/data
    max_conversations: int | None = None  # first N conversations per split (smoke runs); None = all
    max_train_conversations: int | None = None  # first N train conversations only (a subsample of a large train
                                        # split); dev and test stay whole
    strict: bool = True                 # bad rows raise (False: skip and report)
    # Several datasets in one run (instead of `dataset`): their train splits together, dev together for model
    # selection, each test split scored on its own as well. Their label spaces must agree, or label_space names a
    # shared one (ekman7: MELD, DailyDialog and IEMOCAP emotions in one 7-class space).
    datasets: list[str] = field(default_factory=list)
    label_space: str | None = None      # e.g. "ekman7"
    metrics: dict[str, str] = field(default_factory=dict)  # task → dev metric; default: the dataset's own (one
                                        # dataset) or weighted_f1 (several, or a shared label space)
    neutral_share: float | None = None  # keep this share of each dataset's train conversations whose labelled turns
                                        # are all neutral (first task; seeded); None = all. Dev and test untouched.

    @property
    def names(self) -> list[str]:
        """The datasets of the run: ``datasets`` when given, else ``[dataset]``."""
        return list(self.datasets) or [self.dataset]

    def task_setup(self):
        """``(label spaces, metrics)`` of the tasks, by the graph trainer's rule
        (:func:`kgemo.training.data.task_setup`): spaces that agree train together, else ``label_space``."""
        from types import SimpleNamespace

        from .data import task_setup

        return task_setup(SimpleNamespace(datasets=self.names, target_datasets=[], tasks=self.tasks,
                                          label_space=self.label_space, metrics=self.metrics))

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        # Left out while unused, so a config written before these options resolves to the checksum its rows record.
        for key, unused in (("datasets", []), ("label_space", None), ("metrics", {}), ("neutral_share", None),
                             ("max_train_conversations", None)):
            if d.get(key) == unused:
                del d[key]
        return d


@dataclass
class EncoderConfig(Settings):
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
class LoraSettings(Settings):
    rank: int = 8                       # r: rank of the update B·A added to each target weight
    alpha: float = 16.0                 # scaling: the update is multiplied by alpha / rank
    dropout: float = 0.1                # dropout on the adapter's input
    target_modules: list[str] | None = None  # None: the attention's query and value projections of the base's
                                             # architecture (BERT/RoBERTa query, value; MPNet q, v; DeBERTa-v2
                                             # query_proj, value_proj; kgemo.encoders.architectures)


@dataclass
class FinetuneTrainConfig(Settings):
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

    #: section name → its settings class
    SECTIONS: ClassVar[dict[str, type[Settings]]] = {
        "data": FinetuneDataConfig, "encoder": EncoderConfig, "lora": LoraSettings, "train": FinetuneTrainConfig}

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
        d = dataclasses.asdict(self)
        d["data"] = self.data.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "config") -> "FinetuneConfig":
        """Build and check a config; every error names ``source`` (the YAML file) and the offending option."""
        d = dict(d)
        refuse_unknown_keys(cls, d, source)
        raw = d.get("data") if isinstance(d.get("data"), Mapping) else {}
        if raw.get("datasets") and raw.get("dataset") and raw["dataset"] not in raw["datasets"]:
            # `datasets` wins; a `dataset` it leaves out would otherwise be ignored without a word.
            raise KgemoError(f"{source}: data.dataset {raw['dataset']!r} is not one of data.datasets "
                             f"{list(raw['datasets'])}, which replaces it: keep one of the two")
        for key, section in cls.SECTIONS.items():
            d[key] = section.from_dict(d.get(key), source, key)
        config = cls(**d)
        _check(config, source)
        return config


def _check(c: FinetuneConfig, source: str) -> None:
    # Checked when the config loads, so a typo fails before a model or dataset is read.
    key = "data.datasets" if c.data.datasets else "data.dataset"
    if not c.data.tasks:
        raise KgemoError(f"{source}: data.tasks is empty")
    for name in c.data.names:
        try:
            spec = get_dataset(name)
        except ValueError as exc:
            raise KgemoError(f"{source}: {key}: {exc}") from None
        missing = [t for t in c.data.tasks if t not in spec.tasks]
        if missing:
            raise KgemoError(f"{source}: dataset {spec.name!r} has no task {missing[0]!r}; its tasks: "
                             f"{list(spec.tasks)}")
    if len(set(c.data.names)) != len(c.data.names):
        raise KgemoError(f"{source}: data.datasets names a dataset twice: {c.data.names}")
    check_neutral_share(c.data.neutral_share, source)
    check_conversation_count("max_train_conversations", c.data.max_train_conversations, source)
    try:
        c.data.task_setup()
    except KgemoError as exc:
        raise KgemoError(f"{source}: {exc}") from None
    unknown = sorted(set(c.data.metrics) - set(c.data.tasks))
    if unknown:
        raise KgemoError(f"{source}: data.metrics names {unknown[0]!r}, not one of data.tasks {c.data.tasks}")
    from ..metrics.scores import METRICS

    bad = sorted(m for m in c.data.metrics.values() if m not in METRICS)
    if bad:
        raise KgemoError(f"{source}: data.metrics: no metric {bad[0]!r}; known: {sorted(METRICS)}")
    if c.encoder.mode not in ("lora", "full"):
        raise KgemoError(f"{source}: encoder.mode={c.encoder.mode!r}; expected lora or full")
    if not isinstance(c.encoder.past_turns, int) or c.encoder.past_turns < 0:
        raise KgemoError(f"{source}: encoder.past_turns must be an integer >= 0, got {c.encoder.past_turns!r}")
    if c.encoder.head_input not in HEAD_INPUTS:
        raise KgemoError(f"{source}: encoder.head_input={c.encoder.head_input!r}; expected one of {HEAD_INPUTS}")
    if c.encoder.max_length < 8:
        raise KgemoError(f"{source}: encoder.max_length={c.encoder.max_length} is too short")
    t = c.train
    check_class_weights(t, source)
    check_monitor(t.monitor, c.data.tasks, source)
    if t.batch_size < 1 or t.eval_batch_size < 1 or t.epochs < 1:
        raise KgemoError(f"{source}: train.batch_size, eval_batch_size and epochs must be >= 1")
    if c.encoder.mode == "lora" and (c.lora.rank < 1 or c.lora.target_modules is not None
                                     and not c.lora.target_modules):
        raise KgemoError(f"{source}: lora.rank must be >= 1 and lora.target_modules non-empty (or null: chosen by "
                         "the base's architecture)")


def load_finetune_config(path: str | Path, overrides: Sequence[str] | None = None) -> FinetuneConfig:
    """Read a fine-tuning YAML (``configs/finetune_*.yaml``) with ``key.sub=value`` overrides; errors name it."""
    return load_config_file(FinetuneConfig, path, overrides)
