"""Experiment configuration: typed dataclasses with commented defaults, loaded from YAML.

One YAML per experiment in ``configs/``::

    name: ket_meld
    seed: 0
    data: {datasets: [meld], tasks: [emotion]}
    model: {name: ket, hidden: 256}                  # the model's config class (kgemo.models), by name
    graph: {window: 8, concepts_per_token: 8}         # the settings of the model's graph builder (kgemo.graphs)
    knowledge: {conceptnet: default}                  # settings per knowledge source (kgemo.knowledge.sources)
    train: {epochs: 30, lr: 1.0e-3}

Every section is typed: an unknown key is refused with its name and the file, when the config loads. Input
widths (``model.input_dim``...) are not options: they come from the encoder and knowledge (the input pipeline).

Any field can be overridden from the command line as ``key.sub=value`` (YAML syntax for the value).
The resolved config is saved into every run folder and model folder, so a run can be reproduced and resumed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from ..errors import KgemoError
from ..graphs import builder_class
from ..knowledge.sources import knowledge_settings
from ..metrics.weights import CLASS_WEIGHT_SCHEMES
from ..models import ModelConfig, NoKnowledgeConfig, get_model_class
from ..pipeline import PipelineSpec
from ..settings import Settings
from .config_file import apply_overrides, load_config_file, refuse_unknown_keys
from .monitor import check_monitor

__all__ = ["DataConfig", "TrainConfig", "ExperimentConfig", "load_config", "apply_overrides", "label_map_by_task",
           "check_class_weights"]


@dataclass
class DataConfig(Settings):
    datasets: list[str] = field(default_factory=lambda: ["meld"])  # trained on together (same label space):
                                        # registered names, or files of your own (path/to/chats.jsonl, with
                                        # chats.yaml beside it: docs/your-data.md)
    # Unsupervised domain adaptation (kgemo.adapt): the target domain's datasets. Their train split joins training
    # with every label removed before any graph is built (unless target_train is false), their dev split is the
    # one early stopping watches (the only target labels used) and their test split is scored; the source
    # datasets above give the labelled train split only.
    target_datasets: list[str] = field(default_factory=list)
    target_train: bool = True           # train on the target datasets' unlabelled train split too
    target_labels: bool = False         # ... with its labels: transfer with (few) target labels, where
                                        # data.train_share takes a share of the target's train conversations only
    tasks: list[str] = field(default_factory=lambda: ["emotion"])  # first task = the one early stopping watches
    label_space: str | None = None      # e.g. "ekman7": map every dataset's emotion labels to one shared space
    metrics: dict[str, str] = field(default_factory=dict)  # task → metric name; default: the dataset's own
    encoder: str = "default"            # sentence encoder: "default" (packaged MiniLM), HF name or local path
    root: str | None = None             # dataset root; default KGEMO_DATA or ../shared/data
    max_conversations: int | None = None  # per split, for smoke runs; None = all
    max_train_conversations: int | None = None  # only the first N train conversations are read and encoded (a
                                        # subsample where encoding all of train costs too much, e.g. DailyDialog
                                        # through MPNet on a CPU); dev and test stay whole, so scores are comparable
    strict: bool = True                 # bad rows raise (False: skip and report)
    encoder_batch_size: int = 128       # utterances per encoder batch
    # Learning curves (docs/learning-curves.md): train on this share of each dataset's train conversations, nested
    # (share p keeps the first ceil(p·N) of a permutation fixed by share_seed, so 5% ⊂ 10% ⊂ 25% for one seed).
    train_share: float | None = None    # None = all of them
    train_conversations: int | None = None  # or this many train conversations (dev capped at the same share)
    share_seed: int | None = None       # seed of the permutation; None = the run's seed
    share_dev: bool = True              # cap dev at the same share: model selection as scarce as the labels
    share_tasks: list[str] = field(default_factory=list)  # only these tasks' labels are scarce: the conversations
                                        # outside the share stay, with those labels removed (a related task keeps
                                        # all of its labels); empty = every task, the others are dropped
    # Keep this share of the train conversations whose labelled turns are all neutral (first task; seeded, nested
    # like train_share): DailyDialog's 83% neutral turns come mostly from such dialogues. None = all; dev untouched.
    neutral_share: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        # Left out while unused, so a config written before learning curves resolves to the checksum its rows record.
        for key, unused in (("train_share", None), ("train_conversations", None), ("share_seed", None),
                            ("share_dev", True), ("share_tasks", []), ("target_labels", False),
                            ("neutral_share", None), ("max_train_conversations", None)):
            if d[key] == unused:
                del d[key]
        return d


@dataclass
class TrainConfig(Settings):
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
    devices: Any = 1                    # Lightning devices per machine (int or list); >1 with strategy ddp
    num_nodes: int = 1                  # machines (DDP over torchrun / SLURM); batch_size stays the global batch
    strategy: str = "auto"              # Lightning strategy, e.g. ddp (scores exactly like one process)
    precision: str = "auto"             # auto: bf16/16-mixed on GPU, 32-true on CPU
    deterministic: bool = True          # torch deterministic algorithms (warn-only on GPU, where scatter is not)
    num_workers: int = 0                # DataLoader workers (graphs are in memory; 0 is fastest here)
    threads: int | None = None          # torch CPU threads (None = torch's default); 1 avoids oversubscription
                                        # when several jobs share a small machine
    progress: bool | None = None        # progress bars; None = only when stderr is a terminal
    init_from: str | None = None        # a model folder (formatted with name and seed), a run folder holding
                                        # model/, or "default" (the embedded annotator), whose weights start the
                                        # model, by parameter name and shape: two-stage training (e.g. adaptation
                                        # started from the source-only model); parts it lacks keep their init.
                                        # With another label set, each class's output row comes from the old class
                                        # of the same name (or alias) or label_map's; the others start fresh
    label_map: dict[str, Any] = field(default_factory=dict)  # with init_from: {task: {new class: old class or
                                        # null (fresh row)}}, or {new: old} when there is one task; see
                                        # docs/your-data.md

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        if not d["label_map"]:
            # Left out when unused, so the resolved config (and the checksum every results row records) of a
            # config written before label_map existed stays what it was.
            del d["label_map"]
        return d


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=NoKnowledgeConfig)  # the model's typed options (``name`` picks it)
    graph: Settings | None = None      # the model's graph-builder settings (None = the builder's defaults)
    knowledge: dict[str, Settings] = field(default_factory=dict)  # typed settings per knowledge source
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: str = "runs/{name}/seed{seed}"                # formatted with name and seed
    tags: dict[str, Any] = field(default_factory=dict)          # free-form facts copied into metrics.json, e.g.
                                                                # {adaptation: dann}; not options of anything
    # Set on the instance by load_config: the file, its sha256 and the overrides (the run's provenance). Not a
    # field, so never an option a YAML could set; None for a config built in Python.
    origin: ClassVar[dict[str, Any] | None] = None

    def __post_init__(self):
        # Sections may be given as plain mappings from Python (``model={"name": "ket", "hidden": 64}``).
        source = "ExperimentConfig"
        self.tags = dict(self.tags or {})
        if isinstance(self.model, Mapping):
            self.model = _model_config(self.model, source)
        if isinstance(self.data, Mapping):
            self.data = DataConfig.from_dict(self.data, source, "data")
        if isinstance(self.train, Mapping):
            self.train = TrainConfig.from_dict(self.train, source, "train")
        self.knowledge = knowledge_settings(self.knowledge)
        settings_class = builder_class(self.model_class.graph_builder).settings_class
        if self.graph is None or isinstance(self.graph, Mapping):
            self.graph = settings_class.from_dict(self.graph, source, "graph")
        elif not isinstance(self.graph, settings_class):
            raise KgemoError(f"model {self.model.name!r} builds {self.model_class.graph_builder!r} graphs, which "
                             f"take {settings_class.__name__}, not {type(self.graph).__name__}")

    @property
    def model_class(self):
        return get_model_class(self.model.name)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir.format(name=self.name, seed=self.seed))

    def pipeline_spec(self) -> PipelineSpec:
        """How this experiment's inputs are made (the spec its model folder will record)."""
        return PipelineSpec(encoder=self.data.encoder, builder=self.model_class.graph_builder, graph=self.graph,
                            knowledge=self.knowledge)

    def to_dict(self) -> dict[str, Any]:
        """The config as YAML would write it (input widths left out: they come from the pipeline)."""
        model = {k: v for k, v in self.model.to_dict().items() if k not in self.model.INPUT_WIDTHS}
        return {"name": self.name, "seed": self.seed, "data": self.data.to_dict(), "model": model,
                "graph": self.graph.to_dict(), "knowledge": {k: s.to_dict() for k, s in self.knowledge.items()},
                "train": self.train.to_dict(), "output_dir": self.output_dir, "tags": dict(self.tags)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "config") -> "ExperimentConfig":
        d = dict(d)
        refuse_unknown_keys(cls, d, source)
        d["model"] = _model_config(d.get("model"), source)
        model_cls = get_model_class(d["model"].name)
        d["graph"] = builder_class(model_cls.graph_builder).settings_class.from_dict(d.get("graph"), source, "graph")
        d["knowledge"] = knowledge_settings(d.get("knowledge"), source)
        d["data"] = DataConfig.from_dict(d.get("data"), source, "data")
        d["train"] = TrainConfig.from_dict(d.get("train"), source, "train")
        config = cls(**d)
        _check_data(config.data, source)
        _check_tags(config.tags, source)
        _check_train(config.train, source, config.data.tasks)
        builder = builder_class(model_cls.graph_builder)
        missing = [k for k in builder.knowledge if k not in config.knowledge]
        if missing:
            raise KgemoError(f"{source}: model {model_cls.name!r} builds {builder.name!r} graphs, which need "
                             f"knowledge {missing}; add e.g. knowledge: {{{missing[0]}: default}}")
        return config


def _model_config(model: Any, source: str) -> ModelConfig:
    if not isinstance(model, Mapping) or not model.get("name"):
        raise KgemoError(f"{source}: model.name is required (e.g. ket, ckenet, no_knowledge, cogat)")
    try:
        model_cls = get_model_class(model["name"])
    except KgemoError as exc:
        raise KgemoError(f"{source}: {exc}") from None
    return model_cls.config_class.from_config(model, source)


def _check_data(data: DataConfig, source: str) -> None:
    from ..data import DATASETS, get_dataset

    if not data.datasets or not data.tasks:
        raise KgemoError(f"{source}: data.datasets and data.tasks must each name at least one")
    for key in ("datasets", "target_datasets"):
        for name in getattr(data, key):
            try:  # a dataset file of one's own is checked here too: its header is read (not its conversations)
                spec = get_dataset(name)
            except KgemoError as exc:  # a file that is missing or has a bad header (before ValueError: a
                raise KgemoError(f"{source}: data.{key}: {exc}") from None  # DataFormatError is one too)
            except ValueError:
                raise KgemoError(f"{source}: unknown dataset {name!r} in data.{key}; known: {sorted(DATASETS)}, "
                                 "or a file of your own (path/to/chats.jsonl)") from None
            missing = [t for t in data.tasks if t not in spec.tasks]
            if missing:
                raise KgemoError(f"{source}: dataset {name!r} has no {missing} labels (its tasks: "
                                 f"{list(spec.tasks)}); fix data.tasks")
    both = sorted(set(data.datasets) & set(data.target_datasets))
    if both:
        raise KgemoError(f"{source}: {both} in both data.datasets (source) and data.target_datasets")
    share = data.train_share
    if share is not None and (isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= 1):
        raise KgemoError(f"{source}: data.train_share={share!r}; expected a share of the train conversations in (0, 1] "
                         "(e.g. 0.05 for 5%), or null for all of them")
    count = data.train_conversations
    check_conversation_count("train_conversations", count, source)
    if count is not None and share is not None:
        raise KgemoError(f"{source}: give data.train_share or data.train_conversations, not both")
    if data.target_labels and not (data.target_datasets and data.target_train):
        raise KgemoError(f"{source}: data.target_labels keeps the labels of the target datasets' train split, so it "
                         "needs data.target_datasets and data.target_train: true")
    check_neutral_share(data.neutral_share, source)
    check_conversation_count("max_train_conversations", data.max_train_conversations, source)
    stray = [t for t in data.share_tasks if t not in data.tasks]
    if stray:
        raise KgemoError(f"{source}: data.share_tasks {stray} are not in data.tasks {data.tasks}")


#: metrics.json keys that tags may not overwrite.
RESERVED_TAGS = ("complete", "config", "model", "seed", "datasets", "target_datasets", "encoder", "encoder_id",
                 "knowledge", "metrics", "dev", "test")


def _check_tags(tags: Any, source: str) -> None:
    if not isinstance(tags, Mapping):
        raise KgemoError(f"{source}: tags must be a mapping, got {type(tags).__name__}")
    clash = sorted(set(tags) & set(RESERVED_TAGS))
    if clash:
        raise KgemoError(f"{source}: tags {clash} would overwrite metrics.json fields; rename them")


def check_neutral_share(ns: Any, source: str) -> None:
    """``data.neutral_share`` (graph training and fine-tuning): a share in [0, 1], or null."""
    if ns is not None and (isinstance(ns, bool) or not isinstance(ns, (int, float)) or not 0 <= ns <= 1):
        raise KgemoError(f"{source}: data.neutral_share={ns!r}; expected the share of all-neutral train conversations "
                         "to keep, in [0, 1], or null for all of them")


def check_conversation_count(key: str, n: Any, source: str) -> None:
    """``data.<key>`` (``train_conversations``, ``max_train_conversations``; graph training and fine-tuning): a whole
    number of train conversations ≥ 1, or null."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise KgemoError(f"{source}: data.{key}={n!r}; expected a whole number of train conversations (at least 1), "
                         "or null")


def conversations_read(data: Any, split: str) -> int | None:
    """How many of a split's conversations are read (the first N; None = all): ``data.max_conversations``, and for
    the train split also ``data.max_train_conversations`` (graph training and fine-tuning alike)."""
    caps = [data.max_conversations, data.max_train_conversations if split == "train" else None]
    caps = [n for n in caps if n is not None]
    return min(caps) if caps else None


def check_class_weights(train: Any, source: str) -> None:
    """``train.class_weights`` must name a scheme of :mod:`kgemo.metrics.weights` (or none: ``null``, ``none``)."""
    if isinstance(train.class_weights, str) and train.class_weights.lower() in ("none", "null", ""):
        train.class_weights = None
    if train.class_weights not in CLASS_WEIGHT_SCHEMES:
        raise KgemoError(f"{source}: train.class_weights={train.class_weights!r}; expected one of "
                         f"{[s for s in CLASS_WEIGHT_SCHEMES if s]} or null")


def _check_train(train: TrainConfig, source: str, tasks: list[str] | None = None) -> None:
    # Checked here, not when the first batch needs them, so a typo fails before any data is loaded.
    check_class_weights(train, source)
    check_monitor(train.monitor, list(tasks or []), source)
    train.label_map = label_map_by_task(train.label_map, list(tasks or []), source)
    if train.label_map and not train.init_from:
        raise KgemoError(f"{source}: train.label_map says which old class starts each new one, so it needs "
                         "train.init_from (a model folder or default)")


def label_map_by_task(label_map: Any, tasks: list[str], source: str = "config") -> dict[str, dict[str, str | None]]:
    """``train.label_map`` as ``{task: {new class: old class or None}}``.

    Two spellings are accepted: per task (``{emotion: {Joyful: joy, Powerful: null}}``), or, when the config has
    one task, the inner mapping alone (``{Joyful: joy}``). Label names are checked against the label spaces when
    the model is initialised (:func:`kgemo.training.init_weights`), where both spaces are known.
    """
    if label_map is None:
        return {}
    if not isinstance(label_map, Mapping):
        raise KgemoError(f"{source}: train.label_map must map new classes to old ones, got {label_map!r:.60}")
    if not label_map:
        return {}
    nested = [isinstance(v, Mapping) for v in label_map.values()]
    if all(nested):
        by_task = {str(t): dict(m) for t, m in label_map.items()}
        unknown = [t for t in by_task if tasks and t not in tasks]
        if unknown:
            raise KgemoError(f"{source}: train.label_map names task {unknown[0]!r}, which is not in data.tasks "
                             f"{tasks}")
    elif not any(nested):
        if len(tasks) != 1:
            raise KgemoError(f"{source}: train.label_map: with several tasks {tasks}, give one mapping per task "
                             "({emotion: {new: old}, ...})")
        by_task = {tasks[0]: dict(label_map)}
    else:
        raise KgemoError(f"{source}: train.label_map mixes tasks and classes; write {{task: {{new: old}}}}")
    for task, mapping in by_task.items():
        for new, old in mapping.items():
            if old is not None and (isinstance(old, bool) or not isinstance(old, (str, int))):
                raise KgemoError(f"{source}: train.label_map.{task}.{new}: expected an old class name or null, got "
                                 f"{old!r:.60}")
        by_task[task] = {str(new): None if old is None else str(old) for new, old in mapping.items()}
    return by_task


def load_config(path: str | Path, overrides: Sequence[str] | None = None) -> ExperimentConfig:
    """Read a YAML experiment config with ``key.sub=value`` overrides (errors name the file and the option)."""
    return load_config_file(ExperimentConfig, path, overrides)
