"""Export any built graph to networkx, for inspection and drawing."""
from __future__ import annotations

import networkx as nx
import torch
from torch_geometric.data import HeteroData

__all__ = ["to_networkx"]


def _scalar_attrs(store, n: int) -> dict[str, torch.Tensor]:
    return {k: v for k, v in store.items()
            if isinstance(v, torch.Tensor) and v.dim() == 1 and v.size(0) == n and k != "batch"}


def to_networkx(data: HeteroData, names: dict[str, list[str]] | None = None) -> nx.MultiDiGraph:
    """A ``MultiDiGraph`` with nodes ``(node_type, index)`` and one edge per graph edge.

    Node and edge attributes are the per-node / per-edge scalar tensors of the store (``kid``, ``speaker``,
    ``weight``, ``rel_pos``...); edges carry ``type`` = the relation name. ``names`` optionally maps a node type to
    display labels (e.g. ``{"utterance": texts, "concept": concept strings}``), stored as the ``label`` attribute.
    Feature matrices (``x``) are not copied.
    """
    g = nx.MultiDiGraph()
    names = names or {}
    for nt in data.node_types:
        store = data[nt]
        n = store.num_nodes or 0
        attrs = _scalar_attrs(store, n)
        labels = names.get(nt)
        for i in range(n):
            a = {k: v[i].item() for k, v in attrs.items()}
            if labels is not None:
                a["label"] = labels[i]
            g.add_node((nt, i), node_type=nt, **a)
    for et in data.edge_types:
        store = data[et]
        ei = store.edge_index
        attrs = _scalar_attrs(store, ei.size(1))
        src, rel, dst = et
        for e in range(ei.size(1)):
            a = {k: v[e].item() for k, v in attrs.items()}
            g.add_edge((src, int(ei[0, e])), (dst, int(ei[1, e])), type=rel, **a)
    return g
