"""Attach ConceptNet concept embeddings to the ``token`` / ``concept`` nodes of a (batched) graph."""
from __future__ import annotations

import numpy as np
import torch
from torch_geometric.data import HeteroData

__all__ = ["ConceptFeatures"]


class ConceptFeatures:
    """A transform setting ``data[t].x = table[data[t].kid]`` for the node types that carry concept ids.

    Graphs store ids so that a cached dataset does not repeat a 384-d vector for every occurrence of a concept;
    one table (``ConceptNetKB.concept_embeddings(encoder)``) serves training, evaluation and annotation.

    Args:
        table: [num_concepts, d] concept embeddings (NumPy or tensor; kept as float32).
        node_types: the node types to fill.
    """

    def __init__(self, table, node_types: tuple[str, ...] = ("token", "concept")):
        self.table = torch.as_tensor(np.asarray(table, dtype=np.float32))
        self.node_types = node_types

    @property
    def dim(self) -> int:
        return self.table.shape[1]

    def __call__(self, data: HeteroData) -> HeteroData:
        for nt in self.node_types:
            if nt in data.node_types and "kid" in data[nt]:
                data[nt].x = self.table[data[nt].kid]
        return data

    def __repr__(self) -> str:
        return f"ConceptFeatures(table={tuple(self.table.shape)})"
