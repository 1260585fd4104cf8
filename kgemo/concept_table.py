"""Concept embeddings for a pipeline: the cached full table when there is one, else only the concepts met.

Training needs ``ConceptNetKB.concept_embeddings(encoder)`` — every concept of the KB encoded once and cached
(52k concepts for the bundled default: about a minute of MiniLM on two CPU cores). Annotating one short
conversation on a fresh install needs a few hundred of them, so :class:`ConceptTable` encodes the concepts a batch
needs (same encoder, same concept texts) and keeps them; once it has been asked for a large share of the KB it
computes and caches the full table, which later runs then load directly. The same table gives the graph builder
its concept vectors (concept selection by relatedness) and the model its concept features.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

__all__ = ["ConceptTable"]

log = logging.getLogger(__name__)


class ConceptTable:
    """A :class:`~kgemo.graphs.ConceptFeatures`-compatible transform filling ``x = table[kid]`` for token and
    concept nodes, encoding missing rows on demand.

    Args:
        kb: the knowledge base (``concepts``, ``concept_embeddings``).
        encoder: the pipeline's sentence encoder.
        full_fraction: once this share of the KB's concepts has been requested, compute and cache the full
            table instead of encoding piece by piece.
        node_types: the node types to fill.
    """

    def __init__(self, kb, encoder, full_fraction: float = 0.15, node_types: tuple[str, ...] = ("token", "concept")):
        self.kb, self.encoder = kb, encoder
        self.full_fraction = float(full_fraction)
        self.node_types = node_types
        self._full: torch.Tensor | None = None
        try:
            table = kb.concept_embeddings(encoder, compute=False)
        except TypeError:  # a KB without the cached-only option: encode on demand
            table = None
        if table is not None:
            self._full = torch.as_tensor(np.asarray(table, dtype=np.float32))
        self._row = np.full(len(kb.concepts), -1, dtype=np.int64)  # concept id → row of _store, -1 = not yet
        self._store: np.ndarray | None = None

    @property
    def complete(self) -> bool:
        """Whether the full table is loaded (no encoding on demand any more)."""
        return self._full is not None

    def _ensure(self, ids: np.ndarray) -> None:
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        missing = ids[self._row[ids] < 0]
        if not len(missing):
            return
        have = 0 if self._store is None else len(self._store)
        if have + len(missing) > self.full_fraction * len(self.kb.concepts):
            log.info("annotations reach %d concepts: encoding all %d concepts of the KB once (cached)",
                     have + len(missing), len(self.kb.concepts))
            self._full = torch.as_tensor(np.asarray(self.kb.concept_embeddings(self.encoder), dtype=np.float32))
            self._store = None
            return
        from .knowledge.text import concept_text

        emb = np.asarray(self.encoder.encode([concept_text(self.kb.concepts[i]) for i in missing],
                                             show_progress=False), dtype=np.float32)
        self._store = emb if self._store is None else np.concatenate([self._store, emb])
        self._row[missing] = np.arange(have, have + len(missing))

    def full_table(self) -> None:
        """Load (or compute and cache) the whole table now: before building or training on many graphs."""
        if self._full is None:
            self._full = torch.as_tensor(np.asarray(self.kb.concept_embeddings(self.encoder), dtype=np.float32))
            self._store = None

    def vectors(self, ids) -> np.ndarray:
        """Embeddings ``[n, d]`` (NumPy) of concept ids ``[n]``: the graph builder's ``concept_vectors``."""
        return self.lookup(torch.as_tensor(np.asarray(ids, dtype=np.int64))).numpy()

    def prepare(self, graphs) -> None:
        """Encode, in one call, every concept ``graphs`` will ask for (before batching)."""
        if self._full is not None:
            return
        ids = [g[nt].kid.numpy() for g in graphs for nt in self.node_types
               if nt in g.node_types and "kid" in g[nt]]
        if ids:
            self._ensure(np.concatenate(ids))

    def lookup(self, kid: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[n, d]`` of concept ids ``kid`` ``[n]``."""
        kid = kid.cpu()
        if self._full is None:
            self._ensure(kid.numpy())
        if self._full is not None:
            return self._full[kid]
        if self._store is None:  # nothing asked for yet (an input without any concept)
            return torch.zeros((0, int(self.encoder.dim)), dtype=torch.float32)
        return torch.from_numpy(self._store[self._row[kid.numpy()]])

    def __call__(self, data):
        if self._full is None:  # one encoder call for all node types of the batch
            self._ensure(np.concatenate([data[nt].kid.cpu().numpy() for nt in self.node_types
                                         if nt in data.node_types and "kid" in data[nt]] or [np.zeros(0, int)]))
        for nt in self.node_types:
            if nt in data.node_types and "kid" in data[nt]:
                data[nt].x = self.lookup(data[nt].kid)
        return data

    def __repr__(self) -> str:
        state = "full" if self._full is not None else f"{0 if self._store is None else len(self._store)} encoded"
        return f"ConceptTable({state})"
