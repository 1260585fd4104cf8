"""``event`` graph: the conversation graph plus the ATOMIC events of each utterance and a topic node.

Schema card: graphs/event.md. The graph for COSMIC- and TODKAT-style models (:mod:`kgemo.models.cosmic`,
:mod:`kgemo.models.todkat`): commonsense events about each utterance (what the speaker intends, how they and the
others react) as typed edges into the utterance, the listeners of each turn, and a topic node (the conversation's, or
with ``past_only`` one per utterance over the turns so far).

Two sources of events, each its own node type so a model can tell them apart (TODKAT's selector does):

* ``event`` — ATOMIC tails retrieved by nearest heads (:meth:`AtomicRetriever.search_vectors`, the utterance
  features as queries). They carry ATOMIC tail ids (``tid``), not features: one table of tail embeddings
  (:meth:`~kgemo.knowledge.AtomicRetriever.tail_embeddings`) is attached per batch by
  :class:`~kgemo.graphs.NodeFeatures`, as the concept graph does for ConceptNet.
* ``generated`` — tails from a COMET provider (``knowledge["comet"]``: a ``CometGenerator`` checkpoint or the
  ``RetrievedComet`` stand-in) with their embeddings stored (``x``; generated text is not in any table), from the
  ``text_vectors`` callable the input pipeline passes (its own sentence encoder).

With ``states`` the builder also records COMET's hidden state per utterance and relation (``relation_state``),
COSMIC's own relation features. Builders stay pure: providers come in through ``knowledge``; this module imports
neither :mod:`kgemo.knowledge` nor :mod:`kgemo.encoders`.
"""
from __future__ import annotations

import bisect
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

__all__ = ["EventGraphBuilder", "EventGraphSettings", "listener_edges", "running_mean"]


@dataclass
class EventGraphSettings(ConversationGraphSettings):
    """Options of the ``event`` graph (the conversation graph's, plus the ATOMIC events)."""

    RENAMED = {"k": "tails_per_relation"}

    tails_per_relation: int = 3      # ATOMIC tails kept per utterance and relation (retrieved; generated: beams kept)
    relations: list[str] = field(default_factory=lambda: list(COSMIC_RELATIONS))  # ATOMIC relations (COSMIC's five)
    candidates: int | None = None    # nearest heads examined per utterance; None = max(8 * tails_per_relation, 32)
    retrieved: bool = True           # ATOMIC retrieval: `event` nodes (tail ids) from the nearest heads
    generated: bool = False          # COMET tails: `generated` nodes with stored embeddings (needs knowledge comet)
    states: bool = False             # COMET relation states per utterance, `relation_state` (needs knowledge comet)
    num_beams: int = 5               # COMET beam size for generated tails (1 = greedy: one tail)
    state_pool: str = "last"         # COMET state: "last" input token (COSMIC) or "mean" over input tokens

    def __post_init__(self):
        super().__post_init__()
        self.tails_per_relation = int(self.tails_per_relation)
        self.relations = [str(r) for r in self.relations]
        if not self.relations:
            raise KgemoError("the 'event' graph builder needs at least one ATOMIC relation")
        if self.tails_per_relation < 1:
            raise KgemoError(f"tails_per_relation must be >= 1, got {self.tails_per_relation}")
        self.candidates = None if self.candidates is None else int(self.candidates)
        self.retrieved, self.generated, self.states = bool(self.retrieved), bool(self.generated), bool(self.states)
        self.num_beams = int(self.num_beams)
        if self.num_beams < 1:
            raise KgemoError(f"num_beams must be >= 1, got {self.num_beams}")
        if self.state_pool not in ("last", "mean"):
            raise KgemoError(f"state_pool must be 'last' or 'mean', got {self.state_pool!r}")
        if not (self.retrieved or self.generated or self.states):
            raise KgemoError("the 'event' graph needs at least one of retrieved, generated or states")


def listener_edges(speakers: np.ndarray) -> torch.Tensor:
    """``(speaker, listens, utterance)`` edges: every party of the conversation except the one speaking turn i.

    COSMIC's roles per turn: the speaker's states take the ``x*`` relations of the utterance, every other party's
    (the listeners') take the ``o*`` relations. Parties are the conversation's speakers (ids ``0..P-1``).

    Returns:
        ``[2, N * (P - 1)]`` (party, utterance) pairs, by utterance then party.
    """
    n, parties = len(speakers), int(speakers.max()) + 1 if len(speakers) else 0
    party = np.tile(np.arange(parties), n)
    utt = np.repeat(np.arange(n), parties)
    keep = party != speakers[utt]
    return torch.from_numpy(np.stack([party[keep], utt[keep]])).long()


def running_mean(x: np.ndarray) -> np.ndarray:
    """Row i: the mean of rows ``0..i`` (the past-only topic input); accumulated in float64, returned as float32."""
    counts = np.arange(1, len(x) + 1, dtype=np.float64)[:, None]
    return (np.cumsum(x, axis=0, dtype=np.float64) / counts).astype(np.float32)


def _index_of(sorted_texts: list[str], text: str) -> int:
    """Position of ``text`` in a sorted list (the ATOMIC table keeps its heads sorted), -1 if absent."""
    j = bisect.bisect_left(sorted_texts, text)
    return j if j < len(sorted_texts) and sorted_texts[j] == text else -1


@register_builder
class EventGraphBuilder(ConversationGraphBuilder):
    r"""Conversation graph + ATOMIC events per utterance (retrieved and/or generated) + listeners + ``topic``.

    Retrieval (``retrieved``): each utterance's feature is the query of
    :meth:`~kgemo.knowledge.AtomicRetriever.search_vectors` (TODKAT's retrieval: walk the nearest ATOMIC heads, keep
    up to ``tails_per_relation`` distinct tails per relation; a tail's score is the cosine similarity
    :math:`s = \cos(\mathbf{x}_i, \mathbf{h})` of its head to the utterance). The features must therefore come
    from the retriever's encoder, which is what the training and annotation pipelines do. An event node is one
    tail text, shared by every utterance and relation of the conversation that retrieved it.

    Generation (``generated`` / ``states``): ``knowledge["comet"].generate(texts, relations, k, num_beams)`` and
    ``.relation_states(texts, relations, pool)``; both are cached by the provider (SQLite), so a dataset prepared
    with ``kgemo kb build comet --dataset NAME`` generates nothing here. Generated tails are embedded with
    ``knowledge["text_vectors"]`` (L2-normalised, like the ATOMIC tail table).

    Node types (in addition to :class:`ConversationGraphBuilder`'s):
        * ``event``: ``tid`` [E] the tail's id in the ATOMIC table (features: ``tail_embeddings()[tid]``).
        * ``generated`` (with ``generated``): ``x`` [G, d] embeddings of the distinct generated tails.
        * ``topic``: ``x`` the input of a topic layer — one node [1, d], the conversation's mean utterance
          feature; with ``past_only`` one node per utterance [N, d], node :math:`i` the mean of utterances
          :math:`0..i` (a causal model must not see later turns through its topic either).
        * ``utterance`` gains ``relation_state`` [N, R, d_comet] with ``states`` (relations in ``relations`` order).

    Edge types:
        * ``(event, <relation>, utterance)`` for each relation in ``relations`` (with ``retrieved``): ``score``
          [E_r] head similarity, ``rank`` [E_r] 0 = the best tail of that utterance and relation, ``head`` [E_r]
          the ATOMIC head id it came from (``table.heads[head]``).
        * ``(generated, <relation>, utterance)`` (with ``generated``): ``rank`` [G_r] beam rank, ``score`` [G_r]
          :math:`1/(1+\text{rank})`.
        * ``(speaker, listens, utterance)``: every party of the conversation but the speaker of the turn.
        * ``(topic, about, utterance)``: the topic node to every utterance (``past_only``: node i to utterance i).

    Args:
        settings: :class:`EventGraphSettings`, or the same as keywords.
    """

    name = "event"
    version = "3"  # 3: past-only topics (graphs with past_only: false are as in version 2)
    cache = True  # MELD test: builds at ~350 conversations/s (ATOMIC search), reads back at ~5,900/s (17x)
    knowledge = ("atomic",)
    settings_class = EventGraphSettings

    def build(self, conv: Conversation, features: np.ndarray, label_spaces: Mapping[str, LabelSpace],
              knowledge: Mapping[str, Any] | None = None) -> HeteroData:
        data = super().build(conv, features, label_spaces, knowledge)
        knowledge = knowledge or {}
        s = self.settings
        feats = np.asarray(features, dtype=np.float32)
        if s.retrieved:
            self._retrieved(data, conv, feats, knowledge)
        if s.generated or s.states:
            comet = knowledge.get("comet")
            if comet is None:
                raise KgemoError("the 'event' graph with generated or states needs knowledge={'comet': ...} (a "
                                 "CometGenerator or RetrievedComet; config: knowledge: {comet: PATH or retrieval})")
            if s.generated:
                self._generated(data, conv, comet, knowledge.get("text_vectors"))
            if s.states:
                states = comet.relation_states(conv.texts, s.relations, pool=s.state_pool)   # [N, R, d_comet]
                data["utterance"].relation_state = torch.from_numpy(np.asarray(states, dtype=np.float32))

        speakers = data["utterance"].speaker.numpy()
        data["speaker", "listens", "utterance"].edge_index = listener_edges(speakers)
        turns = torch.arange(len(conv))
        if s.past_only:
            # Utterance i's topic from turns 0..i only: the context edges are past-only, and a topic over the whole
            # conversation would hand every utterance the future anyway.
            data["topic"].x = torch.from_numpy(running_mean(feats))
            data["topic", "about", "utterance"].edge_index = torch.stack([turns, turns])
        else:
            data["topic"].x = torch.from_numpy(feats.mean(axis=0, keepdims=True))
            data["topic", "about", "utterance"].edge_index = torch.stack([torch.zeros_like(turns), turns])
        return data

    def _retrieved(self, data: HeteroData, conv: Conversation, feats: np.ndarray, knowledge: Mapping[str, Any]):
        retriever = knowledge.get("atomic")
        if retriever is None:
            raise KgemoError("the 'event' graph builder needs knowledge={'atomic': AtomicRetriever}")
        if feats.shape[1] != retriever.encoder.dim:
            raise KgemoError(f"dialogue {conv.id}: {feats.shape[1]}-d utterance features cannot query ATOMIC heads "
                             f"embedded by {retriever.encoder.id} ({retriever.encoder.dim}-d); use the same encoder")
        relations = self.settings.relations
        hits = retriever.search_vectors(feats, self.settings.tails_per_relation, relations, self.settings.candidates)

        # One event node per distinct tail; edges grouped by relation.
        uniq = sorted({h.tail for per_utt in hits for rel in relations for h in per_utt.get(rel, [])})
        node_of = {t: i for i, t in enumerate(uniq)}
        data["event"].tid = torch.from_numpy(retriever.table.tail_ids(uniq))
        data["event"].num_nodes = len(uniq)
        heads = retriever.table.heads
        for rel in relations:
            src, dst, score, rank, head = [], [], [], [], []
            for i, per_utt in enumerate(hits):
                for r, h in enumerate(per_utt.get(rel, [])):
                    src.append(node_of[h.tail])
                    dst.append(i)
                    score.append(h.score)
                    rank.append(r)
                    head.append(_index_of(heads, h.head))
            e = data["event", rel, "utterance"]
            e.edge_index = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
            e.score = torch.tensor(score, dtype=torch.float32)
            e.rank = torch.tensor(rank, dtype=torch.long)
            e.head = torch.tensor(head, dtype=torch.long)

    def _generated(self, data: HeteroData, conv: Conversation, comet: Any, text_vectors: Any):
        if text_vectors is None:
            raise KgemoError("the 'event' graph with generated tails needs knowledge['text_vectors'] (texts → "
                             "embeddings; the input pipeline passes its sentence encoder)")
        s = self.settings
        gens = comet.generate(conv.texts, s.relations, k=s.tails_per_relation, num_beams=s.num_beams)
        uniq = sorted({t for per_utt in gens for rel in s.relations for t in per_utt.get(rel, [])})
        node_of = {t: i for i, t in enumerate(uniq)}
        vec = np.asarray(text_vectors(uniq), dtype=np.float32) if uniq else np.zeros((0, data["utterance"].x.size(1)),
                                                                                    np.float32)
        vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        data["generated"].x = torch.from_numpy(vec)
        for rel in s.relations:
            src, dst, rank = [], [], []
            for i, per_utt in enumerate(gens):
                for r, tail in enumerate(per_utt.get(rel, [])):
                    src.append(node_of[tail])
                    dst.append(i)
                    rank.append(r)
            e = data["generated", rel, "utterance"]
            e.edge_index = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
            e.rank = torch.tensor(rank, dtype=torch.long)
            e.score = 1.0 / (1.0 + e.rank.float())
