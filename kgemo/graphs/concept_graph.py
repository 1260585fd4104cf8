"""``concept`` graph: the conversation graph plus word tokens linked to ConceptNet concepts (KET, CKE-Net).

Schema card: graphs/concept.md. Token and concept nodes carry ConceptNet ids (``kid``), not features: the
features are rows of the KB's concept-embedding table, attached per batch by
:class:`~kgemo.graphs.concept_features.ConceptFeatures`, so cached graphs stay small and one table serves all.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch_geometric.data import HeteroData

from ..data.conversation import Conversation
from ..data.labels import LabelSpace
from ..errors import KgemoError
from .base import register_builder
from .conversation_graph import ConversationGraphBuilder, ConversationGraphSettings

__all__ = ["ConceptGraphBuilder", "ConceptGraphSettings"]


@dataclass
class ConceptGraphSettings(ConversationGraphSettings):
    """Options of the ``concept`` graph (the conversation graph's, plus the concepts and how they are chosen)."""

    RENAMED = {"k": "concepts_per_token"}

    concepts_per_token: int = 8   # ConceptNet neighbours linked to each token (after selection)
    max_tokens: int = 32          # concept-bearing tokens kept per utterance, in order of appearance
    self_concept: bool = False    # the token's own concept is one of its candidates (KET's official code)
    selection: str = "confidence"  # how candidates are ranked: "confidence" (ConceptNet weight) or "score" (below)
    candidates_per_token: int = 32  # neighbours examined per token before selection ("score" only)
    select_relatedness: float = 1.0  # score weight of cos(concept, utterance + past context) in the encoder space
    select_confidence: float = 0.0   # score weight of the ConceptNet confidence (÷ the token's largest)
    select_affect: float = 0.0       # score weight of the concept's affect intensity (KET's, in [0, 1])
    min_score: float | None = None   # drop candidates scoring below this (None: keep the top ones, whatever)
    min_relatedness: float | None = None  # drop candidates less related than this, whatever the score weights
                                          # (e.g. rank by confidence, but only among concepts about the context)
    context_turns: int = 2           # past turns averaged with the utterance into the relatedness context

    def __post_init__(self):
        super().__post_init__()
        self.concepts_per_token, self.max_tokens = int(self.concepts_per_token), int(self.max_tokens)
        self.candidates_per_token, self.context_turns = int(self.candidates_per_token), int(self.context_turns)
        self.self_concept = bool(self.self_concept)
        if self.concepts_per_token < 1 or self.max_tokens < 1:
            raise KgemoError(f"concepts_per_token and max_tokens must be >= 1, got {self.concepts_per_token}, "
                             f"{self.max_tokens}")
        if self.selection not in ("confidence", "score"):
            raise KgemoError(f"selection must be 'confidence' or 'score', got {self.selection!r}")
        if self.selection == "score" and self.candidates_per_token < self.concepts_per_token:
            raise KgemoError(f"candidates_per_token ({self.candidates_per_token}) must be >= concepts_per_token "
                             f"({self.concepts_per_token})")
        if self.context_turns < 0:
            raise KgemoError(f"context_turns must be >= 0, got {self.context_turns}")


def relatedness_context(features: np.ndarray, turns: int) -> np.ndarray:
    r"""Unit vectors :math:`\hat{\mathbf{r}}_i \propto \sum_{j=i-T}^{i} \mathbf{x}_j / \lVert\mathbf{x}_j\rVert`: each
    utterance with its ``turns`` preceding ones (past only: what a listener knows when the utterance is said)."""
    x = np.asarray(features, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    c = np.cumsum(np.concatenate([np.zeros((1, x.shape[1]), np.float32), x]), axis=0)
    n = len(x)
    lo = np.maximum(np.arange(n) - turns, 0)
    r = c[np.arange(n) + 1] - c[lo]
    return r / np.maximum(np.linalg.norm(r, axis=1, keepdims=True), 1e-12)


@register_builder
class ConceptGraphBuilder(ConversationGraphBuilder):
    r"""Conversation graph + ``token`` and ``concept`` nodes from a :class:`~kgemo.knowledge.ConceptNetKB`.

    For every utterance, its words are normalised to ConceptNet concepts (stopwords and unknown words dropped;
    each concept once per utterance, at most ``max_tokens``). Every such token links to the top
    ``concepts_per_token`` ConceptNet
    neighbours of its concept (edge weight ≥ the KB's threshold, sorted by weight). Concept nodes are shared by
    all tokens of the conversation that reach them.

    Node types (in addition to :class:`ConversationGraphBuilder`'s):
        * ``utterance``: also ``knowledge_cut`` [N], whether the utterance had more than ``max_tokens`` distinct
          concept-bearing words (knowledge was looked up for the first ones only).
        * ``token``: ``kid`` [T] the token's own concept id, ``vad`` [T, 3] its NRC-VAD valence, arousal,
          dominance (neutral 0.5s when unknown), ``vad_known`` [T].
        * ``concept``: ``kid`` [C] concept ids, unique within the conversation.

    Edge types:
        * ``(token, in, utterance)``.
        * ``(concept, linked, token)``: ``weight`` [E] ConceptNet confidence divided by the largest confidence among
          the token's concepts (KET's per-token normalisation, in (0, 1]), ``affect`` [E] KET affect intensity
          :math:`\lVert[V - 0.5, A / 2]\rVert_2` min-max normalised over the KB, ``relation`` [E] relation id,
          ``vad_known`` [E] whether the concept's VAD came from the lexicon (else neutral 0.5s), ``is_self`` [E]
          whether the edge is the token's own concept (``self_concept``; weight 1, relation 0).

    Args:
        settings: :class:`ConceptGraphSettings`, or the same as keywords.
    """

    name = "concept"
    # Bump when the output changes for the same inputs — including changes to the KB's token normalisation
    # (kgemo.knowledge.text), which the KB checksum does not cover. 2: verb stems prefer "hope" over "hop";
    # 3: token VAD; 4: concept VAD, self edges and selection; 5: utterance.knowledge_cut.
    version = "5"
    cache = True  # KB lookups: reading the cache back is ~5x faster than building (scripts/benchmark.py train)
    knowledge = ("conceptnet",)
    settings_class = ConceptGraphSettings

    def build(self, conv: Conversation, features: np.ndarray, label_spaces: Mapping[str, LabelSpace],
              knowledge: Mapping[str, Any] | None = None) -> HeteroData:
        data = super().build(conv, features, label_spaces, knowledge)
        kb = (knowledge or {}).get("conceptnet")
        if kb is None:
            raise KgemoError("the 'concept' graph builder needs knowledge={'conceptnet': ConceptNetKB}")
        k, max_tokens = self.settings.concepts_per_token, self.settings.max_tokens

        # Tokens: concept ids per utterance, unique within the utterance, order kept.
        tok_kid, tok_utt = [], []
        cut = np.zeros(len(conv), dtype=bool)
        for i, utt in enumerate(conv.utterances):
            ids = np.asarray(kb.lookup(kb.tokenize(utt.text)), dtype=np.int64)
            ids = ids[ids >= 0]
            _, first = np.unique(ids, return_index=True)
            cut[i] = len(first) > max_tokens
            ids = ids[np.sort(first)][:max_tokens]
            tok_kid.append(ids)
            tok_utt.append(np.full(len(ids), i, dtype=np.int64))
        data["utterance"].knowledge_cut = torch.from_numpy(cut)  # the annotator warns about these
        tok_kid = np.concatenate(tok_kid) if tok_kid else np.zeros(0, np.int64)
        tok_utt = np.concatenate(tok_utt) if tok_utt else np.zeros(0, np.int64)
        data["token"].kid = torch.from_numpy(tok_kid)
        data["token"].num_nodes = len(tok_kid)
        data["token"].vad = torch.from_numpy(np.asarray(kb.vad(tok_kid), dtype=np.float32).reshape(-1, 3))
        data["token"].vad_known = torch.from_numpy(np.asarray(kb.vad_known(tok_kid), dtype=bool))
        data["token", "in", "utterance"].edge_index = torch.stack(
            [torch.arange(len(tok_kid)), torch.from_numpy(tok_utt)])

        concept_kid, tok_of_edge, weight, relation, is_self = self._select(kb, knowledge or {}, features, tok_kid,
                                                                           tok_utt)
        c_uniq, c_index = np.unique(concept_kid, return_inverse=True)
        data["concept"].kid = torch.from_numpy(c_uniq.astype(np.int64))
        data["concept"].num_nodes = len(c_uniq)
        data["concept"].vad = torch.from_numpy(np.asarray(kb.vad(c_uniq), dtype=np.float32).reshape(-1, 3))
        data["concept"].vad_known = torch.from_numpy(np.asarray(kb.vad_known(c_uniq), dtype=bool))
        e = data["concept", "linked", "token"]
        e.edge_index = torch.from_numpy(np.stack([c_index.reshape(-1), tok_of_edge]).astype(np.int64))
        e.weight = torch.from_numpy(weight.astype(np.float32))
        e.affect = torch.from_numpy(np.asarray(kb.affect(concept_kid), dtype=np.float32))
        e.vad_known = torch.from_numpy(np.asarray(kb.vad_known(concept_kid), dtype=bool))
        e.relation = torch.from_numpy(relation.astype(np.int64))
        e.is_self = torch.from_numpy(is_self)
        return data

    def _select(self, kb, knowledge: Mapping[str, Any], features: np.ndarray, tok_kid: np.ndarray,
                tok_utt: np.ndarray):
        """The concept edges: (concept id, token, normalised confidence, relation, is_self) per edge."""
        st = self.settings
        k = st.concepts_per_token
        scored = st.selection == "score"
        width = st.candidates_per_token if scored else k
        # Neighbours of each distinct token concept, looked up once (vectorised over the conversation).
        uniq, inverse = np.unique(tok_kid, return_inverse=True)
        if len(uniq):
            nb = kb.neighbours(uniq, width)
            concept, mask = np.asarray(nb.concept)[inverse], np.asarray(nb.mask)[inverse]       # [T, width]
            weight, relation = np.asarray(nb.weight)[inverse], np.asarray(nb.relation)[inverse]
        else:
            concept = relation = np.zeros((0, width), np.int64)
            weight, mask = np.zeros((0, width), np.float32), np.zeros((0, width), bool)
        weight = weight.astype(np.float32)
        if scored and mask.any():
            vectors = knowledge.get("concept_vectors")
            if vectors is None:
                raise KgemoError("selection='score' needs the concept embeddings as knowledge['concept_vectors'] "
                                 "(the input pipeline passes them)")
            ids, slot = np.unique(concept[mask], return_inverse=True)
            g = np.asarray(vectors(ids), dtype=np.float32)
            g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
            r = relatedness_context(features, st.context_turns)[tok_utt]                      # [T, d]
            rel = np.zeros(concept.shape, np.float32)
            rel[mask] = np.einsum("ed,ed->e", g[slot.reshape(-1)], r[np.nonzero(mask)[0]])
            conf = weight / np.maximum(np.where(mask, weight, 0).max(axis=1, keepdims=True), 1e-12)
            aff = np.where(mask, np.asarray(kb.affect(np.where(mask, concept, -1).reshape(-1))).reshape(mask.shape),
                           0.0)
            score = st.select_relatedness * rel + st.select_confidence * conf + st.select_affect * aff
            if st.min_score is not None:
                mask = mask & (score >= st.min_score)
            if st.min_relatedness is not None:
                mask = mask & (rel >= st.min_relatedness)
            score = np.where(mask, score, -np.inf)
            order = np.argsort(-score, axis=1, kind="stable")[:, :k]                           # [T, k]
            take = lambda a: np.take_along_axis(a, order, axis=1)  # noqa: E731
            concept, mask, weight, relation = take(concept), take(mask), take(weight), take(relation)
        # Confidence ÷ the largest among the token's kept concepts, in (0, 1] (KET's per-token normalisation).
        row_max = np.where(mask, weight, 0).max(axis=1, initial=0.0)
        weight = weight / np.maximum(row_max, 1e-12)[:, None]
        token_idx = np.broadcast_to(np.arange(len(tok_kid))[:, None], concept.shape)
        parts = [(concept[mask], token_idx[mask], weight[mask], relation[mask], np.zeros(int(mask.sum()), bool))]
        if st.self_concept and len(tok_kid):
            t = np.arange(len(tok_kid))
            parts.insert(0, (tok_kid, t, np.ones(len(t), np.float32), np.zeros(len(t), np.int64),
                             np.ones(len(t), bool)))
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(5))
