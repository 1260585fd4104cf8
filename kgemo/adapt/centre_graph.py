"""The batch-time part of the cross-domain cluster graph: centre nodes and their edges to the utterances.

The ``cross_domain`` graph builder (:mod:`kgemo.graphs.cross_domain_graph`) makes the part that depends only on
the conversation (utterances, context edges, each utterance's domain) and is cached with the other graphs. The
centres change every training step (a moving average over the model's own features), so they cannot be cached:
the model attaches them to every batch with :func:`centre_graph`, inside its forward pass, where the current
centres live (as buffers). See ``graphs/cross_domain.md`` for the whole schema.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from .centres import ClassCentres

__all__ = ["centre_graph", "RELATIONS"]

#: Edge relations into an utterance, in the order of the ``relation`` ids of :func:`centre_graph`'s edges.
RELATIONS = ("self", "own_domain", "cross_domain")


def centre_graph(h: Tensor, domain: Tensor, centres: ClassCentres, own: int = 1, cross: int = 1) -> HeteroData:
    r"""Link each utterance to its ``own`` nearest centres of its own domain and its ``cross`` nearest centres of
    the other domain (Chen et al.: a sample and the other domain's centre nearest to it).

    Node types:
        * ``utterance``: ``x`` = ``h`` [N, F], ``domain`` [N].
        * ``centre``: every centre of every domain, ``x`` [D K, F] (detached copies of the buffers), ``domain``
          [D K], ``cls`` [D K] (the class each centre stands for).

    Edge types (centre → utterance), with ``distance`` [E] (euclidean, in the feature space):
        * ``(centre, own_domain, utterance)``: N · own edges.
        * ``(centre, cross_domain, utterance)``: N · cross edges.

    Args:
        h: utterance features [N, F] (the space the centres live in).
        domain: [N] 0 (source) or 1 (target).
        centres: the current :class:`~kgemo.adapt.ClassCentres`.
        own: nearest own-domain centres per utterance (0 = none).
        cross: nearest other-domain centres per utterance (0 = none).
    """
    g = HeteroData()
    n, K = h.size(0), centres.num_centres
    domain = domain.long()
    g["utterance"].x, g["utterance"].domain = h, domain
    g["centre"].x = centres.centres.detach().reshape(-1, centres.dim).to(h.dtype)               # [D K, F]
    g["centre"].domain = torch.arange(centres.num_domains, device=h.device).repeat_interleave(K)
    g["centre"].cls = centres.centre_class.repeat(centres.num_domains)
    dst = torch.arange(n, device=h.device)
    with torch.no_grad():
        for relation, k, dom in (("own_domain", own, domain), ("cross_domain", cross, 1 - domain)):
            k = min(int(k), K)
            if k <= 0:
                ei, dist = torch.zeros(2, 0, dtype=torch.long, device=h.device), h.new_zeros(0)
            else:
                idx, dist = centres.nearest(h.detach(), dom, k)                               # [N, k]
                src = (dom[:, None] * K + idx).reshape(-1)                                   # global centre id
                ei = torch.stack([src, dst.repeat_interleave(k)])
                dist = dist.reshape(-1).to(h.dtype)
            edge = g["centre", relation, "utterance"]
            edge.edge_index, edge.distance = ei, dist
    return g
