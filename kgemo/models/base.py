"""The model contract and the model folder format.

A kgemo model is a ``torch.nn.Module`` whose ``forward(batch)`` takes a (batched) ``HeteroData`` and returns
``{task: logits [num_utterances, num_classes]}``. Class attributes name what it needs:

* ``name`` — registry name used in configs (``model: {name: ket}``);
* ``graph_builder`` — the builder (``kgemo.graphs``) that makes its input graphs;
* ``knowledge`` — knowledge sources the builder needs (``("conceptnet",)``);
* ``config_class`` — a dataclass of hyper-parameters with commented defaults; its ``name`` field is the model's
  registry name, and its input widths (``input_dim``, ...) come from the input pipeline, never from a config.

A model saves as a folder (sentence-transformers style): ``config.json`` (model name, hyper-parameters, label
spaces, and the input pipeline: encoder, graph builder, knowledge), ``model.safetensors``, ``labels.json`` and a
short ``README.md`` card. No pickles.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
from safetensors.torch import load_file, save
from torch import Tensor, nn

from .. import __version__
from ..data.labels import LabelSpace
from ..errors import KgemoError
from ..settings import Settings
from ..storage import atomic_write, read_json, write_json

__all__ = ["KGModel", "UtteranceStateModel", "ModelConfig", "MODELS", "register_model", "get_model_class",
           "save_model", "load_model", "utterance_input", "task_heads"]

MODELS: dict[str, type["KGModel"]] = {}


def register_model(cls):
    MODELS[cls.name] = cls
    return cls


def get_model_class(name: str) -> type["KGModel"]:
    from .. import models as _registered  # noqa: F401  (importing the package registers every model)

    try:
        return MODELS[name]
    except KeyError:
        raise KgemoError(f"unknown model {name!r}; known: {sorted(MODELS)}") from None


@dataclasses.dataclass
class ModelConfig(Settings):
    """Hyper-parameters shared by the ERC models; subclasses add their own.

    The input widths listed in ``INPUT_WIDTHS`` are not options: the input pipeline sets them from its encoder and
    knowledge (:meth:`kgemo.pipeline.InputPipeline.model_dims`), a config that sets them is refused
    (:meth:`from_config`), and a saved model refuses a pipeline whose widths differ.
    """

    #: Fields the input pipeline fills (feature widths, relation counts); subclasses extend the tuple.
    INPUT_WIDTHS: ClassVar[tuple[str, ...]] = ("input_dim",)

    name: str = ""                  # the model's registry name (set by each subclass)
    input_dim: int | None = None    # width of the utterance features: the pipeline's encoder width
    hidden: int = 256               # model width
    context_layers: int = 2         # ContextTransformer blocks over the conversation
    heads: int = 4                  # attention heads
    dropout: float = 0.3            # dropout everywhere
    max_distance: int = 16          # relative positions beyond this share one embedding

    def __post_init__(self):
        # Every dropout probability of every model (``dropout``, ``knowledge_dropout``, ...): one check here rather
        # than torch's ValueError from deep inside the model's constructor. Subclasses call this first.
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("dropout") and value is not None and not 0.0 <= float(value) <= 1.0:
                raise KgemoError(f"{self.name or type(self).__name__}: {f.name} must be in [0, 1], got {value!r}")

    @classmethod
    def from_config(cls, d: Mapping[str, Any] | None, source: str = "config") -> "ModelConfig":
        """From an experiment config's ``model`` section: widths are refused (they come from the pipeline)."""
        widths = sorted(set(d or {}) & set(cls.INPUT_WIDTHS))
        if widths:
            raise KgemoError(f"{source}: model option(s) {widths} are set from the input pipeline (the encoder's "
                             "and the knowledge's widths); remove them from the config")
        return cls.from_dict(d, source, section="model")

    def missing_widths(self) -> list[str]:
        return [f for f in self.INPUT_WIDTHS if getattr(self, f) is None]


def utterance_input(c: ModelConfig) -> nn.Sequential:
    """The shared first step of the ERC models: dropout, projection of the sentence features, GELU, dropout."""
    return nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.input_dim, c.hidden), nn.GELU(), nn.Dropout(c.dropout))


def task_heads(hidden: int, label_spaces: Mapping[str, LabelSpace], dropout: float | None = None) -> nn.ModuleDict:
    """One linear classifier per task; with ``dropout`` given, ``Sequential(Dropout, Linear)`` (the joint models)."""
    if dropout is not None:
        return nn.ModuleDict({t: nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, len(s)))
                              for t, s in label_spaces.items()})
    return nn.ModuleDict({t: nn.Linear(hidden, len(s)) for t, s in label_spaces.items()})


class KGModel(nn.Module):
    """Base class: stores the config and the label space of each task; see the module docstring."""

    name: ClassVar[str] = ""
    graph_builder: ClassVar[str] = "conversation"
    knowledge: ClassVar[tuple[str, ...]] = ()
    config_class: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig, label_spaces: Mapping[str, LabelSpace]):
        super().__init__()
        if not label_spaces:
            raise KgemoError(f"{type(self).__name__} needs at least one task")
        if not isinstance(config, self.config_class):
            raise KgemoError(f"{type(self).__name__} takes a {self.config_class.__name__}, got "
                             f"{type(config).__name__}")
        if config.name not in ("", self.name):
            raise KgemoError(f"{type(self).__name__}: its config names model {config.name!r}")
        missing = config.missing_widths()
        if missing:
            raise KgemoError(f"{type(self).__name__} needs {missing} from the input pipeline "
                             "(kgemo.training.build_model fills them from pipeline.model_dims())")
        self.config = config
        self.label_spaces = dict(label_spaces)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.label_spaces)

    def forward(self, batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def explain(self, batch) -> dict[str, Any]:
        """Knowledge evidence per edge (attention weights) for the annotator; empty for no-knowledge models."""
        return {}

    def forward_explain(self, batch) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``(forward(batch), explain(batch))``. This default runs the model twice; a model whose evidence comes
        out of its forward pass (KET, CKE-Net) overrides it to compute both in one pass."""
        return self(batch), self.explain(batch)


class UtteranceStateModel(KGModel):
    """A model that computes one state per utterance (and the evidence behind it) and classifies it with one linear
    head per task: subclasses write :meth:`_encode` once, and forward, explain and forward_explain share it."""

    heads: nn.ModuleDict

    def _encode(self, batch) -> tuple[Tensor, dict[str, Any]]:
        """``(h [num_utterances, hidden], evidence)``."""
        raise NotImplementedError

    def forward(self, batch) -> dict[str, Tensor]:
        h, _ = self._encode(batch)
        return {t: head(h) for t, head in self.heads.items()}

    def explain(self, batch) -> dict[str, Any]:
        return self._encode(batch)[1]

    def forward_explain(self, batch) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Logits and :meth:`explain`'s evidence from one pass (the annotator's path)."""
        h, evidence = self._encode(batch)
        return {t: head(h) for t, head in self.heads.items()}, evidence


def save_model(model: KGModel, path: str | Path, pipeline: Any = None,
               card: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as a folder; ``pipeline`` (a :class:`~kgemo.pipeline.PipelineSpec` or its dict) records how
    inputs are made (encoder, builder, knowledge)."""
    if hasattr(pipeline, "to_dict"):
        pipeline = pipeline.to_dict()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_write(path / "model.safetensors", "wb") as fh:
        fh.write(save(state))
    spaces = {t: s.to_dict() for t, s in model.label_spaces.items()}
    write_json(path / "labels.json", spaces)
    write_json(path / "config.json", {
        "format": "kgemo-model/1", "kgemo_version": __version__, "model": model.name,
        "model_config": model.config.to_dict(), "tasks": list(model.tasks), "pipeline": dict(pipeline or {}),
    })
    lines = [f"# kgemo model: {model.name}", "",
             f"Tasks: {', '.join(f'{t} ({len(s)} classes)' for t, s in model.label_spaces.items())}.",
             f"Graph builder: `{model.graph_builder}`; knowledge: {', '.join(model.knowledge) or 'none'}.", ""]
    for k, v in (card or {}).items():
        lines.append(f"- {k}: {v}")
    lines += ["", "Load with `kgemo.models.load_model(path)` or `kgemo.Annotator.from_pretrained(path)`."]
    with atomic_write(path / "README.md", "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[KGModel, dict[str, Any]]:
    """Load a model folder written by :func:`save_model`; returns ``(model, pipeline)``."""
    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.exists():
        raise KgemoError(f"{path}: not a kgemo model folder (no config.json)")
    cfg = read_json(cfg_path)
    if cfg.get("format") != "kgemo-model/1":
        raise KgemoError(f"{cfg_path}: unknown model format {cfg.get('format')!r}")
    cls = get_model_class(cfg["model"])
    spaces = {t: LabelSpace.from_dict(d) for t, d in read_json(path / "labels.json").items()}
    model = cls(cls.config_class.from_dict(cfg["model_config"], str(cfg_path), "model_config", warn_renamed=False),
                spaces)
    try:
        state = load_file(str(path / "model.safetensors"), device=str(map_location))
    except Exception as exc:  # safetensors raises several types for a corrupt file
        raise KgemoError(f"{path / 'model.safetensors'}: cannot read weights ({exc})") from exc
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise KgemoError(f"{path}: weights do not match {cls.__name__} (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")
    model.eval()
    return model, cfg.get("pipeline", {})
