"""Experiment configuration: typed dataclasses with commented defaults, loaded from YAML.

One YAML per experiment in ``configs/``::

    name: ket_meld
    seed: 0
    data: {datasets: [meld], tasks: [emotion]}
    model: {name: ket, hidden: 256}
    graph: {window: 8, k: 8}
    knowledge: {conceptnet: default}
    train: {epochs: 30, lr: 1.0e-3}

Any field can be overridden from the command line as ``key.sub=value`` (YAML syntax for the value).
The resolved config is saved into every run folder and model folder, so a run can be reproduced and resumed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from ..errors import KgemoError
from ..metrics.weights import CLASS_WEIGHT_SCHEMES

__all__ = ["DataConfig", "TrainConfig", "ExperimentConfig", "load_config", "apply_overrides"]


@dataclass
class DataConfig:
    datasets: list[str] = field(default_factory=lambda: ["meld"])  # trained on together (same label space)
    tasks: list[str] = field(default_factory=lambda: ["emotion"])  # first task = the one early stopping watches
    label_space: str | None = None      # e.g. "ekman7": map every dataset's emotion labels to one shared space
    metrics: dict[str, str] = field(default_factory=dict)  # task → metric name; default: the dataset's own
    encoder: str = "default"            # sentence encoder: "default" (packaged MiniLM), HF name or local path
    root: str | None = None             # dataset root; default KGEMO_DATA or ../shared/data
    max_conversations: int | None = None  # per split, for smoke runs; None = all
    strict: bool = True                 # bad rows raise (False: skip and report)
    encoder_batch_size: int = 128       # utterances per encoder batch


@dataclass
class TrainConfig:
    epochs: int = 30                    # upper bound; early stopping usually ends sooner
    batch_size: int = 16                # conversations per batch
    lr: float = 1e-3                    # AdamW learning rate
    weight_decay: float = 1e-4          # AdamW weight decay
    warmup_epochs: float = 1.0          # linear warm-up, then cosine decay to 0 at ``epochs``
    grad_clip: float = 5.0              # gradient-norm clipping (0 = off)
    patience: int = 6                   # early stopping: epochs without dev improvement
    class_weights: str | None = "sqrt_inverse"  # from the TRAIN split only: inverse, sqrt_inverse or None
    task_weights: dict[str, float] = field(default_factory=dict)  # loss weight per task (default 1)
    monitor: str = "first"              # dev score for early stopping: "first" task, "mean" of tasks, or a task
    accelerator: str = "auto"           # Lightning: auto / cpu / gpu
    devices: Any = 1                    # Lightning devices (int or list); >1 with strategy ddp
    strategy: str = "auto"              # Lightning strategy, e.g. ddp
    precision: str = "auto"             # auto: bf16/16-mixed on GPU, 32-true on CPU
    deterministic: bool = True          # torch deterministic algorithms (warn-only on GPU, where scatter is not)
    num_workers: int = 0                # DataLoader workers (graphs are in memory; 0 is fastest here)
    threads: int | None = None          # torch CPU threads (None = torch's default); 1 avoids oversubscription
                                        # when several jobs share a small machine
    progress: bool | None = None        # progress bars; None = only when stderr is a terminal


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "no_knowledge"})  # name + model options
    graph: dict[str, Any] = field(default_factory=dict)       # graph builder options (window, k, ...)
    knowledge: dict[str, str] = field(default_factory=dict)   # source → "default" or a built cache path
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str = "runs/{name}/seed{seed}"                # formatted with name and seed

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir.format(name=self.name, seed=self.seed))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "config") -> "ExperimentConfig":
        d = dict(d)
        sections = {"data": DataConfig, "train": TrainConfig}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KgemoError(f"{source}: unknown top-level key(s) {unknown}; known: {sorted(known)}")
        for key, sub in sections.items():
            if key in d:
                sub_known = {f.name for f in dataclasses.fields(sub)}
                bad = sorted(set(d[key] or {}) - sub_known)
                if bad:
                    raise KgemoError(f"{source}: unknown {key} option(s) {bad}; known: {sorted(sub_known)}")
                d[key] = sub(**(d[key] or {}))
        if "name" not in (d.get("model") or {}):
            raise KgemoError(f"{source}: model.name is required (e.g. ket, ckenet, no_knowledge, cogat)")
        config = cls(**d)
        _check_train(config.train, source)
        return config


def _check_train(train: TrainConfig, source: str) -> None:
    # Checked here, not when the first batch needs them, so a typo fails before any data is loaded.
    if isinstance(train.class_weights, str) and train.class_weights.lower() in ("none", "null", ""):
        train.class_weights = None
    if train.class_weights not in CLASS_WEIGHT_SCHEMES:
        raise KgemoError(f"{source}: train.class_weights={train.class_weights!r}; expected one of "
                         f"{[s for s in CLASS_WEIGHT_SCHEMES if s]} or null")


def _set(d: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        d = d.setdefault(k, {})
        if not isinstance(d, dict):
            raise KgemoError(f"override {dotted!r}: {k!r} is not a section")
    d[keys[-1]] = value


def apply_overrides(raw: dict, overrides: list[str] | None) -> dict:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a raw config dict."""
    for item in overrides or []:
        if "=" not in item:
            raise KgemoError(f"override {item!r} is not key=value")
        key, value = item.split("=", 1)
        _set(raw, key.strip(), yaml.safe_load(value))
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML experiment config (errors name the file)."""
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
    return ExperimentConfig.from_dict(apply_overrides(raw, overrides), source=str(path))
