"""The input pipeline shared by training, evaluation and annotation: conversations → model-ready graphs.

It owns the three things that turn text into a graph — the sentence encoder, the knowledge sources and the graph
builder — and records them as a JSON ``spec`` that is saved inside every model folder, so that the annotator
rebuilds exactly the inputs a model was trained on.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np
from torch_geometric.data import HeteroData

from ..data.conversation import Conversation
from ..data.labels import LabelSpace
from ..errors import KgemoError
from ..storage import sha256_json
from .base import GraphBuilder, get_builder
from .concept_features import ComposeFeatures, ConceptFeatures, NodeFeatures
from .graph_cache import GraphCache

__all__ = ["InputPipeline", "load_knowledge"]

log = logging.getLogger(__name__)


def load_knowledge(spec: Mapping[str, str], encoder: Any = None) -> dict[str, Any]:
    """``{"conceptnet": "default" | path, "atomic": "default" | path}`` → the loaded sources.

    ``encoder`` is given to the ATOMIC retriever, so that utterance features and ATOMIC heads share one space (the
    event graph queries ATOMIC with the utterance features).
    """
    out: dict[str, Any] = {}
    for source, where in spec.items():
        if source == "conceptnet":
            from ..knowledge import ConceptNetKB

            out[source] = ConceptNetKB.load(where)
        elif source == "atomic":
            from ..knowledge import AtomicRetriever

            out[source] = AtomicRetriever.load(where, encoder=encoder)
        else:
            raise KgemoError(f"unknown knowledge source {source!r}; known: conceptnet, atomic")
    return out


class InputPipeline:
    """Encoder + knowledge + graph builder.

    Args:
        builder: a :class:`~kgemo.graphs.GraphBuilder`.
        encoder: a sentence encoder (``.id``, ``.dim``, ``.encode``).
        knowledge: loaded knowledge sources by name (what ``builder.knowledge`` asks for).
        knowledge_spec: how they were named (``{"conceptnet": "default"}``), recorded in the spec.
        encoder_name: how the encoder was named (``"default"``, an HF name or a path), recorded in the spec.
    """

    def __init__(self, builder: GraphBuilder, encoder, knowledge: Mapping[str, Any] | None = None,
                 knowledge_spec: Mapping[str, str] | None = None, encoder_name: str = "default"):
        self.builder, self.encoder = builder, encoder
        self.knowledge = dict(knowledge or {})
        self.knowledge_spec = dict(knowledge_spec or {})
        self.encoder_name = encoder_name
        missing = [k for k in builder.knowledge if k not in self.knowledge]
        if missing:
            raise KgemoError(f"graph builder {builder.name!r} needs knowledge {missing}; add e.g. "
                             f"knowledge: {{{missing[0]}: default}} to the config")
        self._transform: NodeFeatures | ComposeFeatures | None = None

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], device: str | None = None) -> "InputPipeline":
        from ..encoders import SentenceEncoder

        encoder = SentenceEncoder(spec.get("encoder", "default"), device=device)
        kspec = spec.get("knowledge", {})
        builder = get_builder(spec["builder"]["name"], **spec["builder"].get("params", {}))
        pipe = cls(builder, encoder, load_knowledge(kspec, encoder), kspec, spec.get("encoder", "default"))
        expected = spec.get("encoder_id")
        if expected and expected != encoder.id:
            log.warning("encoder %s has id %s, but the model was trained with %s; predictions may differ",
                        pipe.encoder_name, encoder.id, expected)
        return pipe

    def spec(self) -> dict[str, Any]:
        return {"encoder": self.encoder_name, "encoder_id": self.encoder.id, "encoder_dim": self.encoder.dim,
                "builder": {"name": self.builder.name, "version": self.builder.version,
                            "params": self.builder.params},
                "knowledge": self.knowledge_spec,
                "knowledge_checksums": {k: getattr(v, "checksum", None) for k, v in self.knowledge.items()}}

    @property
    def transform(self) -> NodeFeatures | ComposeFeatures | None:
        """Per-batch feature attachment (concept and/or ATOMIC tail embeddings), or ``None`` when the graphs
        carry all their features."""
        if self._transform is None:
            parts: list[NodeFeatures] = []
            if "conceptnet" in self.builder.knowledge:
                parts.append(ConceptFeatures(self.knowledge["conceptnet"].concept_embeddings(self.encoder)))
            if "atomic" in self.builder.knowledge:
                parts.append(NodeFeatures(self.knowledge["atomic"].tail_embeddings(), ("event",), "tid"))
            self._transform = parts[0] if len(parts) == 1 else ComposeFeatures(parts) if parts else None
        return self._transform

    def model_dims(self) -> dict[str, int]:
        """Input sizes a model config needs (``input_dim``; ``concept_dim`` and ``num_relations`` with ConceptNet;
        ``event_dim`` with ATOMIC)."""
        dims = {"input_dim": int(self.encoder.dim)}
        if "conceptnet" in self.knowledge:
            dims["concept_dim"] = int(self.encoder.dim)  # concept texts are embedded by the pipeline's encoder
            dims["num_relations"] = len(self.knowledge["conceptnet"].relations)
        if "atomic" in self.knowledge:
            dims["event_dim"] = int(self.knowledge["atomic"].encoder.dim)
        return dims

    def encode(self, conversations: Sequence[Conversation], batch_size: int | None = None) -> list[np.ndarray]:
        """Sentence features per conversation (one encoder call for all texts; no cache)."""
        texts = [u.text for c in conversations for u in c.utterances]
        feats = self.encoder.encode(texts, batch_size=batch_size)
        out, start = [], 0
        for c in conversations:
            out.append(feats[start:start + len(c)])
            start += len(c)
        return out

    def graphs(self, conversations: Sequence[Conversation], label_spaces: Mapping[str, LabelSpace],
               features: Sequence[np.ndarray] | None = None, cache_key: Mapping[str, Any] | None = None,
               progress: bool | None = None, desc: str | None = None) -> list[HeteroData]:
        """Graphs for ``conversations``; with ``cache_key`` (which must identify the conversations, e.g. their
        files' checksums) they are cached on disk together with the builder, encoder and knowledge identity —
        unless the builder says caching does not pay (``builder.cache``)."""
        def build():
            feats = features if features is not None else self.encode(conversations)
            return self.builder.build_many(conversations, feats, label_spaces, self.knowledge, progress, desc)

        if cache_key is None or not self.builder.cache:
            return build()
        key = {"inputs": dict(cache_key), "pipeline": self.spec(),
               "labels": {t: s.to_dict() for t, s in label_spaces.items()}}
        return GraphCache().get_or_build({"key": sha256_json(key), **key}, build)
