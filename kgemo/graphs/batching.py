"""Batching graphs: PyG ``Batch`` collation followed by per-batch feature attachment."""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch
from torch_geometric.data import Batch, HeteroData

__all__ = ["batches", "GraphLoader"]


def batches(graphs: Sequence[HeteroData], batch_size: int, transform=None, order: Sequence[int] | None = None
            ) -> Iterator[Batch]:
    """Collate ``graphs`` into PyG batches of ``batch_size`` conversations, then apply ``transform``."""
    order = list(range(len(graphs)) if order is None else order)
    for start in range(0, len(order), batch_size):
        batch = Batch.from_data_list([graphs[i] for i in order[start:start + batch_size]])
        yield transform(batch) if transform is not None else batch


class GraphLoader(torch.utils.data.DataLoader):
    """A ``DataLoader`` over a list of graphs that collates PyG batches and applies ``transform`` to each."""

    def __init__(self, graphs: Sequence[HeteroData], batch_size: int, shuffle: bool = False, transform=None,
                 **kwargs: Any):
        self.transform = transform
        super().__init__(list(graphs), batch_size=batch_size, shuffle=shuffle, collate_fn=self._collate, **kwargs)

    def _collate(self, items):
        batch = Batch.from_data_list(items)
        return self.transform(batch) if self.transform is not None else batch
