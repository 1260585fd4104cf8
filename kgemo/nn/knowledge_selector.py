"""Pointer-style soft selection of an utterance's commonsense tails for one relation, across knowledge sources."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

__all__ = ["KnowledgeSelector"]


class KnowledgeSelector(nn.Module):
    r"""Choose, per utterance, among its candidate tails of one ATOMIC relation — from every source at once.

    For utterance :math:`i` with query :math:`\mathbf{q}_i` and candidates :math:`j \in \mathcal{C}(i)`, each
    from a source :math:`s(j)` (retrieved ATOMIC tails, COMET generations) with a prior :math:`p_j`:

    .. math::
        e_j = \mathbf{v}^\top \tanh\big(\mathbf{W}_q \mathbf{q}_i + \mathbf{W}_k \mathbf{x}_j
              + \mathbf{b}_{s(j)}\big) + \gamma_{s(j)}\, p_j, \qquad
        \alpha_j = \frac{\exp e_j}{\sum_{j' \in \mathcal{C}(i)} \exp e_{j'}}, \qquad
        \mathbf{m}_i = \sum_{j \in \mathcal{C}(i)} \alpha_j \mathbf{W}_v \mathbf{x}_j

    and :math:`\mathbf{m}_i = 0` when :math:`\mathcal{C}(i)` is empty. :math:`\alpha` is one distribution over all
    the utterance's candidates of the relation, whatever their source, so it *selects* (TODKAT's pointer-network
    selector between retrieved and generated knowledge; its argmax is the winning tail and source) and it weighs
    (COSMIC's relation feature from several tails). Additive scoring as in pointer networks (Vinyals et al., 2015);
    the prior lets the retrieval similarity speak from the first step (:math:`\gamma` starts at ``prior_init``).

    Args:
        query_dim: width of the queries (the utterance, or TODKAT's utterance + topic).
        key_dim: width of the candidates' features.
        out_dim: width of :math:`\mathbf{m}_i`.
        attention_dim: width of the additive scorer.
        sources: number of knowledge sources (each gets a bias :math:`\mathbf{b}_s` and a prior weight).
        prior_init: initial :math:`\gamma_s`.

    Shapes:
        - **input:** query :math:`(N, Q)`; candidates: one entry per source, ``(x (M_s, F), edge_index (2, E_s),
          prior (E_s) or None)`` or ``None`` for an absent source.
        - **output:** :math:`(N, \text{out\_dim})`; :math:`\alpha` per source :math:`(E_s)` (empty when absent);
          ``has`` :math:`(N)` bool, whether the utterance had any candidate.
    """

    def __init__(self, query_dim: int, key_dim: int, out_dim: int, attention_dim: int = 64, sources: int = 1,
                 prior_init: float = 1.0):
        super().__init__()
        self.query_dim, self.key_dim, self.out_dim = query_dim, key_dim, out_dim
        self.attention_dim, self.sources, self.prior_init = attention_dim, sources, prior_init
        self.query = nn.Linear(query_dim, attention_dim)
        self.key = nn.Linear(key_dim, attention_dim, bias=False)
        self.source_bias = nn.Parameter(torch.empty(sources, attention_dim))
        self.prior_weight = nn.Parameter(torch.empty(sources))
        self.score = nn.Linear(attention_dim, 1, bias=False)
        self.value = nn.Linear(key_dim, out_dim)
        self.reset_parameters()

    def reset_parameters(self):
        for lin in (self.query, self.key, self.score, self.value):
            lin.reset_parameters()
        nn.init.zeros_(self.source_bias)
        nn.init.constant_(self.prior_weight, self.prior_init)

    def forward(self, query: Tensor, candidates: Sequence) -> tuple[Tensor, list[Tensor], Tensor]:
        if len(candidates) != self.sources:
            raise ValueError(f"{type(self).__name__} was built for {self.sources} source(s), got {len(candidates)}")
        n = query.size(0)
        q = self.query(query)                                                  # [N, A]
        scores, values, dst, sizes = [], [], [], []
        for s, cand in enumerate(candidates):
            if cand is None:
                sizes.append(0)
                continue
            x, edge_index, prior = cand
            src, d = edge_index
            k = self.key(x)[src] + self.source_bias[s]                         # [E_s, A]
            e = self.score(torch.tanh(q[d] + k)).squeeze(-1)                   # [E_s]
            if prior is not None:
                e = e + self.prior_weight[s] * prior.to(e.dtype)
            scores.append(e)
            values.append(self.value(x)[src])                                  # [E_s, out]
            dst.append(d)
            sizes.append(d.numel())
        if not scores:  # no source in the graph at all
            empty = query.new_zeros(0)
            return query.new_zeros(n, self.out_dim), [empty] * self.sources, torch.zeros(
                n, dtype=torch.bool, device=query.device)
        e, d = torch.cat(scores), torch.cat(dst)
        alpha = softmax(e, d, num_nodes=n)                                     # one distribution per utterance
        out = scatter(alpha.unsqueeze(-1) * torch.cat(values), d, 0, dim_size=n, reduce="sum")  # [N, out]
        has = torch.zeros(n, dtype=torch.bool, device=query.device)
        has[d] = True
        return out, list(alpha.split(sizes)), has

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.query_dim}, {self.key_dim} -> {self.out_dim}, "
                f"attention_dim={self.attention_dim}, sources={self.sources})")
