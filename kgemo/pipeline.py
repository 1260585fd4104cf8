"""The input pipeline: conversations → model-ready graphs, the one way inputs are made for training, evaluation,
export and annotation.

It brings together the three things that turn text into a graph — the sentence encoder (:mod:`kgemo.encoders`),
the knowledge sources (:mod:`kgemo.knowledge`) and a pure graph builder (:mod:`kgemo.graphs`) — and is described
by a :class:`PipelineSpec`. A training config makes a spec (:meth:`kgemo.training.ExperimentConfig.pipeline_spec`);
the spec is saved inside every model folder; and :meth:`InputPipeline.from_spec` rebuilds exactly those inputs
from it, wherever the model is used::

    >>> model, spec = kgemo.models.load_model("runs/ket_meld/seed0/model")        # doctest: +SKIP
    >>> pipeline = InputPipeline.from_spec(spec)                                   # doctest: +SKIP
    >>> pipeline.check_model(model)            # widths agree, or a KgemoError    # doctest: +SKIP
    >>> graphs = pipeline.graphs(conversations, model.label_spaces)               # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import _pyg  # noqa: F401  (PyG without the transformers import it does not need: kgemo/_pyg.py)
from torch_geometric.data import HeteroData

from .concept_table import ConceptTable
from .data.conversation import Conversation
from .data.labels import LabelSpace
from .errors import KgemoError
from .graphs import ComposeFeatures, GraphBuilder, GraphCache, NodeFeatures, builder_class
from .knowledge.sources import knowledge_settings, load_knowledge
from .settings import Settings
from .storage import sha256_json

__all__ = ["PipelineSpec", "InputPipeline", "load_model_and_pipeline"]

log = logging.getLogger(__name__)


@dataclass
class PipelineSpec:
    """What makes a model's inputs, typed; saved as JSON in every model folder (``config.json``'s ``pipeline``).

    The first four fields say how to build the inputs; the rest are recorded when a model is saved, so that a
    loaded model can check it gets the inputs it was trained on.
    """

    encoder: str = "default"          # sentence encoder: "default" (packaged MiniLM), an HF name or a local folder
    builder: str = "conversation"     # graph builder name (the model's ``graph_builder``)
    graph: Settings | None = None     # the builder's typed settings (None = its defaults)
    knowledge: dict[str, Settings] = field(default_factory=dict)  # typed settings per knowledge source
    encoder_id: str | None = None     # recorded: the encoder's id (weights checksum, max length)
    encoder_dim: int | None = None    # recorded: the feature width
    knowledge_checksums: dict[str, Any] = field(default_factory=dict)  # recorded: each source's checksum
    data: dict[str, Any] = field(default_factory=dict)  # recorded: datasets, tasks, label_space, metrics

    def __post_init__(self):
        cls = builder_class(self.builder)
        if self.graph is None:
            self.graph = cls.settings_class()
        elif not isinstance(self.graph, cls.settings_class):
            raise KgemoError(f"graph builder {self.builder!r} takes {cls.settings_class.__name__}, got "
                             f"{type(self.graph).__name__}")
        self.knowledge = knowledge_settings(self.knowledge)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "pipeline spec",
                  base_dir: str | Path | None = None) -> "PipelineSpec":
        """Read a saved spec (also those written before settings were typed: ``{"conceptnet": "default"}``,
        builder ``params`` with old option names). An encoder named ``./NAME`` is a folder inside the model folder
        (a shipped model carries its own fine-tuned encoder): it resolves against ``base_dir``."""
        if not isinstance(d, Mapping) or not isinstance(d.get("builder"), Mapping) or "name" not in d["builder"]:
            raise KgemoError(f"{source}: no input pipeline recorded (builder missing); save models with "
                             "kgemo.models.save_model(model, path, pipeline.spec())")
        name = d["builder"]["name"]
        graph = builder_class(name).settings_class.from_dict(d["builder"].get("params") or {}, source,
                                                             "builder params", warn_renamed=False)
        encoder = str(d.get("encoder", "default"))
        if encoder.startswith("./") and base_dir is not None:
            encoder = str(Path(base_dir) / encoder[2:])
        return cls(encoder=encoder, builder=name, graph=graph,
                   knowledge=knowledge_settings(d.get("knowledge") or {}, source),
                   encoder_id=d.get("encoder_id"), encoder_dim=d.get("encoder_dim"),
                   knowledge_checksums=dict(d.get("knowledge_checksums") or {}), data=dict(d.get("data") or {}))

    def to_dict(self) -> dict[str, Any]:
        cls = builder_class(self.builder)
        return {"encoder": self.encoder, "encoder_id": self.encoder_id, "encoder_dim": self.encoder_dim,
                "builder": {"name": self.builder, "version": cls.version, "params": self.graph.to_dict()},
                "knowledge": {k: s.to_dict() for k, s in self.knowledge.items()},
                "knowledge_checksums": dict(self.knowledge_checksums), "data": dict(self.data)}


class InputPipeline:
    """Encoder + knowledge + graph builder: conversations in, graphs (with features attached per batch) out.

    Build it with :meth:`from_spec`; the constructor takes already loaded parts (tests, benchmarks).

    Args:
        builder: a :class:`~kgemo.graphs.GraphBuilder`.
        encoder: a sentence encoder (``.id``, ``.dim``, ``.encode``; ``.encode_conversations`` when its inputs
            depend on the conversation, as a fine-tuned encoder's do).
        knowledge: loaded knowledge sources by name (what ``builder.knowledge`` asks for).
        knowledge_settings: their typed settings (or paths), recorded in the spec.
        encoder_name: how the encoder was named (``"default"``, an HF name or a path), recorded in the spec.
    """

    def __init__(self, builder: GraphBuilder, encoder, knowledge: Mapping[str, Any] | None = None,
                 knowledge_settings: Mapping[str, Any] | None = None, encoder_name: str = "default"):
        self.builder, self.encoder = builder, encoder
        self.knowledge = dict(knowledge or {})
        self.knowledge_settings = _settings_of(knowledge_settings, self.knowledge)
        self.encoder_name = str(encoder_name)
        missing = [k for k in builder.knowledge if k not in self.knowledge]
        if missing:
            raise KgemoError(f"graph builder {builder.name!r} needs knowledge {missing}; add e.g. "
                             f"knowledge: {{{missing[0]}: default}} to the config")
        self._transform: Any = None
        self._concepts: ConceptTable | None = None

    @classmethod
    def from_spec(cls, spec: PipelineSpec | Mapping[str, Any], device: str | None = None, encoder: Any = None,
                  encoder_batch_size: int | None = None) -> "InputPipeline":
        """The pipeline a spec describes — the one way to make one (trainer, evaluate, exporter, annotator).

        Args:
            spec: a :class:`PipelineSpec` or its saved dict.
            device: where the encoder runs (default: CUDA when available).
            encoder: use this encoder instead of the one the spec names (it must give the same features; tests
                pass a tiny one).
            encoder_batch_size: texts per encoder batch.

        Raises:
            KgemoError: the encoder's width differs from the one the spec recorded.
        """
        if not isinstance(spec, PipelineSpec):
            spec = PipelineSpec.from_dict(spec)
        if encoder is None:
            from .encoders import SentenceEncoder

            options = {} if encoder_batch_size is None else {"batch_size": int(encoder_batch_size)}
            encoder = SentenceEncoder(spec.encoder, device=device, **options)
        builder = builder_class(spec.builder)(spec.graph)
        pipe = cls(builder, encoder, load_knowledge(spec.knowledge, encoder), spec.knowledge, spec.encoder)
        if spec.encoder_dim is not None and int(spec.encoder_dim) != int(encoder.dim):
            raise KgemoError(f"the model was trained on {spec.encoder_dim}-d features of {spec.encoder!r}, but "
                             f"encoder {pipe.encoder_name!r} gives {encoder.dim}-d features")
        if spec.encoder_id and spec.encoder_id != encoder.id:
            log.warning("encoder %s has id %s, but the model was trained with %s; predictions may differ",
                        pipe.encoder_name, encoder.id, spec.encoder_id)
        return pipe

    def spec(self, data: Mapping[str, Any] | None = None) -> PipelineSpec:
        """The spec that rebuilds this pipeline, with the encoder's and the knowledge's identity recorded."""
        return PipelineSpec(encoder=self.encoder_name, builder=self.builder.name, graph=self.builder.settings,
                            knowledge=self.knowledge_settings, encoder_id=self.encoder.id,
                            encoder_dim=int(self.encoder.dim),
                            knowledge_checksums={k: getattr(v, "checksum", None) for k, v in self.knowledge.items()},
                            data=dict(data or {}))

    @property
    def concepts(self) -> ConceptTable | None:
        """The concept embeddings (encoded by this pipeline's encoder) when the builder uses ConceptNet: the cached
        full table, or the concepts met so far (annotation on a fresh install); ``None`` without ConceptNet."""
        if self._concepts is None and "conceptnet" in self.builder.knowledge:
            self._concepts = ConceptTable(self.knowledge["conceptnet"], self.encoder)
        return self._concepts

    def builder_knowledge(self) -> dict[str, Any]:
        """What the builder is given: the loaded sources, ``concept_vectors`` (ids → embeddings) with
        ConceptNet, for concept selection by relatedness, and ``text_vectors`` (texts → embeddings) with COMET, for
        generated tails."""
        out = dict(self.knowledge)
        if self.concepts is not None:
            out["concept_vectors"] = self.concepts.vectors
        if "comet" in self.knowledge:
            out["text_vectors"] = self.text_vectors  # generated tails are embedded in the utterances' space
        return out

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of free texts (COMET's generated tails) by this pipeline's encoder: ``[n, dim]`` float32."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, int(self.encoder.dim)), dtype=np.float32)
        return np.asarray(self.encoder.encode(texts, show_progress=False), dtype=np.float32)

    @property
    def transform(self) -> Any:
        """Per-batch feature attachment (concept and/or ATOMIC tail embeddings), or ``None`` when the graphs
        carry all their features."""
        if self._transform is None:
            parts: list[Any] = []
            if self.concepts is not None:
                parts.append(self.concepts)
            if "atomic" in self.builder.knowledge:
                parts.append(NodeFeatures(self.knowledge["atomic"].tail_embeddings(), ("event",), "tid"))
            self._transform = parts[0] if len(parts) == 1 else ComposeFeatures(parts) if parts else None
        return self._transform

    def model_dims(self) -> dict[str, int]:
        """The input widths a model config takes from the pipeline (``input_dim``; ``concept_dim`` and
        ``num_relations`` with ConceptNet; ``event_dim`` with ATOMIC; ``comet_dim`` with the event graph: COMET's
        state width when the graph records relation states, else 0)."""
        dims = {"input_dim": int(self.encoder.dim)}
        if "conceptnet" in self.knowledge:
            dims["concept_dim"] = int(self.encoder.dim)  # concept texts are embedded by the pipeline's encoder
            dims["num_relations"] = len(self.knowledge["conceptnet"].relations)
        if "atomic" in self.knowledge:
            dims["event_dim"] = int(self.knowledge["atomic"].encoder.dim)
        if hasattr(self.builder.settings, "states"):  # the event graph: COMET relation states, or none (0)
            comet = self.knowledge.get("comet")
            dims["comet_dim"] = int(comet.dim) if comet is not None and self.builder.settings.states else 0
        return dims

    def fill_widths(self, model_config: Any) -> Any:
        """A copy of ``model_config`` with every input width it has set from this pipeline."""
        names = {f.name for f in dataclasses.fields(model_config)}
        return dataclasses.replace(model_config, **{k: v for k, v in self.model_dims().items() if k in names})

    def check_model(self, model: Any) -> None:
        """Refuse a model whose input widths differ from this pipeline's (another encoder, another KB)."""
        config = model.config
        for key, value in self.model_dims().items():
            have = getattr(config, key, None)
            if have is not None and int(have) != value:
                raise KgemoError(f"model {model.name!r} takes {key}={have}, but the input pipeline gives {value} "
                                 f"(encoder {self.encoder_name!r}); use the encoder and knowledge it was trained "
                                 "with")

    def encode(self, conversations: Sequence[Conversation], batch_size: int | None = None) -> list[np.ndarray]:
        """Sentence features per conversation (no cache): the encoder's own conversation inputs when it has them
        (a fine-tuned encoder reads the speaker and past turns), else each utterance's text."""
        encode_conversations = getattr(self.encoder, "encode_conversations", None)
        if encode_conversations is not None:
            return list(encode_conversations(list(conversations), batch_size=batch_size, show_progress=False))
        texts = [u.text for c in conversations for u in c.utterances]
        feats = self.encoder.encode(texts, batch_size=batch_size)
        bounds = np.cumsum([0] + [len(c) for c in conversations])
        return [feats[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def graphs(self, conversations: Sequence[Conversation], label_spaces: Mapping[str, LabelSpace],
               features: Sequence[np.ndarray] | None = None, cache_key: Mapping[str, Any] | None = None,
               progress: bool | None = None, desc: str | None = None) -> list[HeteroData]:
        """Graphs for ``conversations``; with ``cache_key`` (which must identify the conversations, e.g. their
        files' checksums) they are cached on disk together with the builder, encoder and knowledge identity —
        unless the builder says caching does not pay (``builder.cache``)."""
        def build():
            feats = features if features is not None else self.encode(conversations)
            if self.concepts is not None and len(conversations) > 64 \
                    and getattr(self.builder.settings, "selection", None) == "score":
                self.concepts.full_table()  # one cached table beats thousands of small encoder calls
            return self.builder.build_many(conversations, feats, label_spaces, self.builder_knowledge(), progress,
                                           desc)

        if cache_key is None or not self.builder.cache:
            return build()
        key = {"inputs": dict(cache_key), "pipeline": self.spec().to_dict(),
               "labels": {t: s.to_dict() for t, s in label_spaces.items()}}
        return GraphCache().get_or_build({"key": sha256_json(key), **key}, build)

    def __repr__(self) -> str:
        return (f"InputPipeline(encoder={self.encoder_name!r}, builder={self.builder!r}, "
                f"knowledge={sorted(self.knowledge)})")


def _settings_of(given: Mapping[str, Any] | None, loaded: Mapping[str, Any]) -> dict[str, Settings]:
    """Typed settings for the loaded sources; a source loaded by hand without settings is recorded by its path."""
    settings = knowledge_settings(given or {})
    for name, obj in loaded.items():
        if name not in settings:
            path = getattr(obj, "path", None) or getattr(getattr(obj, "table", None), "path", None)
            settings.update(knowledge_settings({name: str(path) if path is not None else "custom"}))
    return settings


def load_model_and_pipeline(path: str | Path, device: str | None = None, encoder: Any = None
                            ) -> tuple[Any, InputPipeline, PipelineSpec]:
    """A saved model folder with the input pipeline its spec describes, widths checked: ``(model, pipeline,
    spec)`` — what ``kgemo evaluate``, the annotator, the exporter and the benchmarks load a model with.

    Args:
        path: a model folder (``config.json`` + ``model.safetensors`` + ``labels.json``).
        device: where the encoder runs (default: CUDA when available).
        encoder: an encoder to use instead of the one the spec names (tests).
    """
    from .models import load_model

    path = Path(path)
    model, saved = load_model(path)
    spec = PipelineSpec.from_dict(saved, source=str(path / "config.json"), base_dir=path)
    pipeline = InputPipeline.from_spec(spec, device, encoder=encoder)
    pipeline.check_model(model)
    return model, pipeline, spec
