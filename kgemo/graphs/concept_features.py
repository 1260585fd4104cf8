"""Attach rows of a knowledge table (concept or ATOMIC-tail embeddings) to the id-carrying nodes of a graph."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch_geometric.data import HeteroData

__all__ = ["NodeFeatures", "ConceptFeatures", "ComposeFeatures"]


class NodeFeatures:
    """A transform setting ``data[t].x = table[data[t].<id_attr>]`` for the node types that carry ids.

    Graphs store ids so that a cached dataset does not repeat a 384-d vector for every occurrence of a concept or
    event; one table (``ConceptNetKB.concept_embeddings(encoder)``, ``AtomicRetriever.tail_embeddings()``) serves
    training, evaluation and annotation.

    Args:
        table: [num_ids, d] embeddings (NumPy or tensor; kept as float32).
        node_types: the node types to fill.
        id_attr: the node attribute holding row ids of ``table``.
    """

    def __init__(self, table, node_types: tuple[str, ...], id_attr: str):
        self.table = torch.as_tensor(np.asarray(table, dtype=np.float32))
        self.node_types, self.id_attr = node_types, id_attr

    @property
    def dim(self) -> int:
        return self.table.shape[1]

    def __call__(self, data: HeteroData) -> HeteroData:
        for nt in self.node_types:
            if nt in data.node_types and self.id_attr in data[nt]:
                data[nt].x = self.table[data[nt][self.id_attr]]
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(table={tuple(self.table.shape)}, {self.node_types}, id_attr={self.id_attr!r})"


class ConceptFeatures(NodeFeatures):
    """ConceptNet concept embeddings on the concept graph's ``token`` and ``concept`` nodes (``kid`` ids)."""

    def __init__(self, table, node_types: tuple[str, ...] = ("token", "concept")):
        super().__init__(table, node_types, "kid")


class ComposeFeatures:
    """Apply several feature transforms in order (a graph with concepts and events needs both tables)."""

    def __init__(self, transforms: Sequence[Callable[[HeteroData], HeteroData]]):
        self.transforms = list(transforms)

    def __call__(self, data: HeteroData) -> HeteroData:
        for t in self.transforms:
            data = t(data)
        return data

    def __repr__(self) -> str:
        return f"ComposeFeatures({self.transforms!r})"
