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
    """Options of the ``concept`` graph (the conversation graph's, plus the concepts)."""

    RENAMED = {"k": "concepts_per_token"}

    concepts_per_token: int = 8   # ConceptNet neighbours linked to each token, strongest first
    max_tokens: int = 32          # concept-bearing tokens kept per utterance, in order of appearance

    def __post_init__(self):
        super().__post_init__()
        self.concepts_per_token, self.max_tokens = int(self.concepts_per_token), int(self.max_tokens)
        if self.concepts_per_token < 1 or self.max_tokens < 1:
            raise KgemoError(f"concepts_per_token and max_tokens must be >= 1, got {self.concepts_per_token}, "
                             f"{self.max_tokens}")


@register_builder
class ConceptGraphBuilder(ConversationGraphBuilder):
    r"""Conversation graph + ``token`` and ``concept`` nodes from a :class:`~kgemo.knowledge.ConceptNetKB`.

    For every utterance, its words are normalised to ConceptNet concepts (stopwords and unknown words dropped;
    each concept once per utterance, at most ``max_tokens``). Every such token links to the top
    ``concepts_per_token`` ConceptNet
    neighbours of its concept (edge weight ≥ the KB's threshold, sorted by weight). Concept nodes are shared by
    all tokens of the conversation that reach them.

    Node types (in addition to :class:`ConversationGraphBuilder`'s):
        * ``token``: ``kid`` [T] the token's own concept id, ``vad`` [T, 3] its NRC-VAD valence, arousal,
          dominance (neutral 0.5s when unknown), ``vad_known`` [T].
        * ``concept``: ``kid`` [C] concept ids, unique within the conversation.

    Edge types:
        * ``(token, in, utterance)``.
        * ``(concept, linked, token)``: ``weight`` [E] ConceptNet confidence divided by the largest confidence among
          the token's concepts (KET's per-token normalisation, in (0, 1]), ``affect`` [E] KET affect intensity
          :math:`\lVert[V - 0.5, A / 2]\rVert_2` min-max normalised over the KB, ``relation`` [E] relation id,
          ``vad_known`` [E] whether the concept's VAD came from the lexicon (else neutral 0.5s).

    Args:
        settings: :class:`ConceptGraphSettings` (``concepts_per_token``, ``max_tokens``, ``window``,
            ``past_only``), or the same as keywords.
    """

    name = "concept"
    # Bump when the output changes for the same inputs — including changes to the KB's token normalisation
    # (kgemo.knowledge.text), which the KB checksum does not cover. 2: verb stems prefer "hope" over "hop"; 3: token VAD.
    version = "3"
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
        for i, utt in enumerate(conv.utterances):
            ids = np.asarray(kb.lookup(kb.tokenize(utt.text)), dtype=np.int64)
            ids = ids[ids >= 0]
            _, first = np.unique(ids, return_index=True)
            ids = ids[np.sort(first)][:max_tokens]
            tok_kid.append(ids)
            tok_utt.append(np.full(len(ids), i, dtype=np.int64))
        tok_kid = np.concatenate(tok_kid) if tok_kid else np.zeros(0, np.int64)
        tok_utt = np.concatenate(tok_utt) if tok_utt else np.zeros(0, np.int64)
        data["token"].kid = torch.from_numpy(tok_kid)
        data["token"].num_nodes = len(tok_kid)
        data["token"].vad = torch.from_numpy(np.asarray(kb.vad(tok_kid), dtype=np.float32).reshape(-1, 3))
        data["token"].vad_known = torch.from_numpy(np.asarray(kb.vad_known(tok_kid), dtype=bool))
        data["token", "in", "utterance"].edge_index = torch.stack(
            [torch.arange(len(tok_kid)), torch.from_numpy(tok_utt)])

        # Neighbours of each distinct token concept, looked up once (vectorised over the conversation).
        uniq, inverse = np.unique(tok_kid, return_inverse=True)
        if len(uniq):
            nb = kb.neighbours(uniq, k)
            nb_concept, nb_mask = np.asarray(nb.concept)[inverse], np.asarray(nb.mask)[inverse]
            nb_weight, nb_rel = np.asarray(nb.weight)[inverse], np.asarray(nb.relation)[inverse]
        else:
            nb_concept = nb_rel = np.zeros((0, k), np.int64)
            nb_weight, nb_mask = np.zeros((0, k), np.float32), np.zeros((0, k), bool)
        token_idx = np.repeat(np.arange(len(tok_kid)), nb_concept.shape[1]).reshape(nb_concept.shape)
        tok_of_edge = token_idx[nb_mask]
        concept_kid = nb_concept[nb_mask]
        weight = nb_weight.astype(np.float32)
        row_max = np.where(nb_mask, weight, 0).max(axis=1, initial=0.0)
        weight = (weight / np.maximum(row_max, 1e-12)[:, None])[nb_mask]
        relation = nb_rel[nb_mask]

        c_uniq, c_index = np.unique(concept_kid, return_inverse=True)
        data["concept"].kid = torch.from_numpy(c_uniq.astype(np.int64))
        data["concept"].num_nodes = len(c_uniq)
        e = data["concept", "linked", "token"]
        e.edge_index = torch.from_numpy(np.stack([c_index.reshape(-1), tok_of_edge]).astype(np.int64))
        e.weight = torch.from_numpy(weight.astype(np.float32))
        e.affect = torch.from_numpy(np.asarray(kb.affect(concept_kid), dtype=np.float32))
        e.vad_known = torch.from_numpy(np.asarray(kb.vad_known(concept_kid), dtype=bool))
        e.relation = torch.from_numpy(relation.astype(np.int64))
        return data
