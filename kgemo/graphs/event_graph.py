"""``event`` graph: the conversation graph plus the ATOMIC events of each utterance and a topic node.

Schema card: graphs/event.md. The graph for COSMIC- and TODKAT-style models: commonsense events about each
utterance (what the speaker intends, how they and the others react) as typed edges into the utterance, and a
conversation-level topic node. Event nodes carry ATOMIC tail ids (``tid``), not features: one table of tail
embeddings (:meth:`~kgemo.knowledge.AtomicRetriever.tail_embeddings`) is attached per batch by
:class:`~kgemo.graphs.NodeFeatures`, as the concept graph does for ConceptNet.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
from torch_geometric.data import HeteroData

from ..atomic_relations import COSMIC_RELATIONS
from ..data.conversation import Conversation
from ..data.labels import LabelSpace
from ..errors import KgemoError
from .base import register_builder
from .conversation_graph import ConversationGraphBuilder, ConversationGraphSettings

__all__ = ["EventGraphBuilder", "EventGraphSettings"]


@dataclass
class EventGraphSettings(ConversationGraphSettings):
    """Options of the ``event`` graph (the conversation graph's, plus the ATOMIC events)."""

    RENAMED = {"k": "tails_per_relation"}

    tails_per_relation: int = 3      # ATOMIC tails kept per utterance and relation
    relations: list[str] = field(default_factory=lambda: list(COSMIC_RELATIONS))  # ATOMIC relations (COSMIC's five)
    candidates: int | None = None    # nearest heads examined per utterance; None = max(8 * tails_per_relation, 32)

    def __post_init__(self):
        super().__post_init__()
        self.tails_per_relation = int(self.tails_per_relation)
        self.relations = [str(r) for r in self.relations]
        if not self.relations:
            raise KgemoError("the 'event' graph builder needs at least one ATOMIC relation")
        if self.tails_per_relation < 1:
            raise KgemoError(f"tails_per_relation must be >= 1, got {self.tails_per_relation}")
        self.candidates = None if self.candidates is None else int(self.candidates)


@register_builder
class EventGraphBuilder(ConversationGraphBuilder):
    r"""Conversation graph + ``event`` nodes retrieved from ATOMIC per utterance + one ``topic`` node.

    Each utterance's feature is the query of :meth:`~kgemo.knowledge.AtomicRetriever.search_vectors` (TODKAT's
    retrieval: walk the nearest ATOMIC heads, keep up to ``tails_per_relation`` distinct tails per relation; a tail's score is
    the cosine similarity :math:`s = \cos(\mathbf{x}_i, \mathbf{h})` of its head to the utterance). The features
    must therefore come from the retriever's encoder, which is what the training and annotation pipelines do
    (they load the retriever with the pipeline's encoder). An event node is one tail text, shared by every
    utterance and relation of the conversation that retrieved it.

    Node types (in addition to :class:`ConversationGraphBuilder`'s):
        * ``event``: ``tid`` [E] the tail's id in the ATOMIC table (features: ``tail_embeddings()[tid]``).
        * ``topic``: one node, ``x`` [1, d] the mean utterance feature — the input of a topic layer.

    Edge types:
        * ``(event, <relation>, utterance)`` for each relation in ``relations``: ``score`` [E_r] head
          similarity, ``rank`` [E_r] 0 = the best tail of that utterance and relation.
        * ``(topic, about, utterance)``: the topic node to every utterance.

    Args:
        settings: :class:`EventGraphSettings` (``tails_per_relation``, ``relations``, ``candidates``, ``window``,
            ``past_only``), or the same as keywords.
    """

    name = "event"
    version = "1"
    cache = True  # MELD test: builds at ~350 conversations/s (ATOMIC search), reads back at ~5,900/s (17x)
    knowledge = ("atomic",)
    settings_class = EventGraphSettings

    def build(self, conv: Conversation, features: np.ndarray, label_spaces: Mapping[str, LabelSpace],
              knowledge: Mapping[str, Any] | None = None) -> HeteroData:
        data = super().build(conv, features, label_spaces, knowledge)
        retriever = (knowledge or {}).get("atomic")
        if retriever is None:
            raise KgemoError("the 'event' graph builder needs knowledge={'atomic': AtomicRetriever}")
        feats = np.asarray(features, dtype=np.float32)
        if feats.shape[1] != retriever.encoder.dim:
            raise KgemoError(f"dialogue {conv.id}: {feats.shape[1]}-d utterance features cannot query ATOMIC heads "
                             f"embedded by {retriever.encoder.id} ({retriever.encoder.dim}-d); use the same encoder")
        relations = self.settings.relations
        hits = retriever.search_vectors(feats, self.settings.tails_per_relation, relations, self.settings.candidates)

        # One event node per distinct tail; edges grouped by relation.
        tails = [h.tail for per_utt in hits for rel in relations for h in per_utt.get(rel, [])]
        uniq = sorted(set(tails))
        node_of = {t: i for i, t in enumerate(uniq)}
        tid = retriever.table.tail_ids(uniq)
        data["event"].tid = torch.from_numpy(tid)
        data["event"].num_nodes = len(uniq)
        for rel in relations:
            src, dst, score, rank = [], [], [], []
            for i, per_utt in enumerate(hits):
                for r, h in enumerate(per_utt.get(rel, [])):
                    src.append(node_of[h.tail])
                    dst.append(i)
                    score.append(h.score)
                    rank.append(r)
            e = data["event", rel, "utterance"]
            e.edge_index = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
            e.score = torch.tensor(score, dtype=torch.float32)
            e.rank = torch.tensor(rank, dtype=torch.long)

        data["topic"].x = torch.from_numpy(feats.mean(axis=0, keepdims=True))
        data["topic", "about", "utterance"].edge_index = torch.stack(
            [torch.zeros(len(conv), dtype=torch.long), torch.arange(len(conv))])
        return data
