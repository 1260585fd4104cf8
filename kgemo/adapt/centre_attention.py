"""Attention from centre nodes (own and other domain) into utterance nodes: the propagation step of the cluster
graph."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

from .centre_graph import RELATIONS

__all__ = ["CentreAttention", "CentreAttentionLayer"]


class CentreAttention(MessagePassing):
    r"""Multi-head attention of an utterance over itself and its linked centres, with a learned bias per relation.

    .. math::
        \alpha^k_{ij} = \operatorname{softmax}_{j \in \{i\} \cup \mathcal{C}(i)}\Big(
            \frac{(\mathbf{W}^k_q \mathbf{h}_i)^\top (\mathbf{W}^k_k \mathbf{x}_j + \mathbf{e}^k_{r_{ij}})}{\sqrt{d}}
            + b^k_{r_{ij}}\Big), \qquad
        \mathbf{m}_i = \mathbf{W}_o \big\Vert_{k=1}^{H} \sum_{j} \alpha^k_{ij}\,
            (\mathbf{W}^k_v \mathbf{x}_j + \mathbf{e}'^k_{r_{ij}})

    with :math:`r_{ij}` ∈ {self, own_domain, cross_domain} (:data:`~kgemo.adapt.centre_graph.RELATIONS`) and
    :math:`\mathcal{C}(i)` the centres :func:`~kgemo.adapt.centre_graph` linked to utterance i. The relation
    embeddings let the model treat a centre of the other domain differently from one of its own — Chen et al.'s
    GCN does the same with separate learned intra- and inter-domain adjacency weights.

    Args:
        hidden: width of utterances and centres (divisible by ``heads``).
        heads: attention heads.
        dropout: dropout on the attention weights.

    Shapes:
        - **input:** h :math:`(N, F)` utterances, x :math:`(M, F)` centres, edge_index :math:`(2, E)` centre →
          utterance, relation :math:`(E)` (1 or 2; self-loops, relation 0, are added here).
        - **output:** :math:`(N, F)`.
    """

    def __init__(self, hidden: int, heads: int = 4, dropout: float = 0.1):
        super().__init__(aggr="sum", node_dim=0)
        if hidden % heads:
            raise ValueError(f"hidden={hidden} is not divisible by heads={heads}")
        self.hidden, self.heads, self.dropout = hidden, heads, dropout
        self.q = nn.Linear(hidden, hidden)
        self.kv = nn.Linear(hidden, 2 * hidden)
        self.rel = nn.Embedding(len(RELATIONS), 2 * hidden)
        self.bias = nn.Embedding(len(RELATIONS), heads)
        self.out = nn.Linear(hidden, hidden)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        self.q.reset_parameters()
        self.kv.reset_parameters()
        self.out.reset_parameters()
        nn.init.normal_(self.rel.weight, std=0.02)
        nn.init.zeros_(self.bias.weight)

    def forward(self, h: Tensor, x: Tensor, edge_index: Tensor, relation: Tensor) -> Tensor:
        H, D, n = self.heads, self.hidden // self.heads, h.size(0)
        # Sources: the utterances themselves (for the self-loops) followed by the centres.
        src_x = torch.cat([h, x.to(h.dtype)], 0)                                       # [N + M, F]
        loops = torch.arange(n, device=h.device)
        ei = torch.cat([torch.stack([loops, loops]), torch.stack([edge_index[0] + n, edge_index[1]])], 1)
        rel = torch.cat([torch.zeros(n, dtype=torch.long, device=h.device), relation.long()])
        q = self.q(h).view(-1, H, D)                                                   # [N, H, D]
        k, v = self.kv(src_x).view(-1, 2, H, D).unbind(1)                              # 2 × [N + M, H, D]
        rk, rv = self.rel(rel).view(-1, 2, H, D).unbind(1)                             # 2 × [E', H, D]
        out = self.propagate(ei, q=q, k=k, v=v, rk=rk, rv=rv, bias=self.bias(rel), size=(src_x.size(0), n))
        return self.out(out.reshape(n, self.hidden))                                   # [N, F]

    def message(self, q_i: Tensor, k_j: Tensor, v_j: Tensor, rk: Tensor, rv: Tensor, bias: Tensor, index: Tensor,
                ptr, size_i) -> Tensor:
        score = (q_i * (k_j + rk)).sum(-1) / math.sqrt(q_i.size(-1)) + bias          # [E, H]
        alpha = softmax(score, index, ptr, size_i)
        alpha = nn.functional.dropout(alpha, self.dropout, self.training)
        return alpha.unsqueeze(-1) * (v_j + rv)                                        # [E, H, D]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hidden}, heads={self.heads})"


class CentreAttentionLayer(nn.Module):
    r"""Pre-norm residual block around :class:`CentreAttention` that starts as the identity.

    .. math::
        \mathbf{h}' = \mathbf{h} + \mathrm{CentreAttn}\big(\mathrm{LN}(\mathbf{h}), \mathrm{LN}(\mathbf{x})\big),
        \qquad \mathbf{h}'' = \mathbf{h}' + \mathrm{FFN}\big(\mathrm{LN}(\mathbf{h}')\big)

    The attention's output projection and the FFN's last layer start at zero, so a new block passes the utterance
    states through unchanged: a model started from a trained source-only model (``train.init_from``) predicts
    exactly what that model did at its first step, and learns from there how much to take from the centres.

    Shapes:
        - **input:** as :class:`CentreAttention`.
        - **output:** :math:`(N, F)`.
    """

    def __init__(self, hidden: int, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.attn = CentreAttention(hidden, heads, dropout)
        self.norm1 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(2 * hidden, hidden))
        self.norm2 = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.reset_parameters()

    def reset_parameters(self):
        self.attn.reset_parameters()
        self.ffn[0].reset_parameters()
        for layer in (self.attn.out, self.ffn[3]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, h: Tensor, x: Tensor, edge_index: Tensor, relation: Tensor) -> Tensor:
        h = h + self.drop(self.attn(self.norm1(h), self.norm1(x), edge_index, relation))    # [N, F]
        return h + self.drop(self.ffn(self.norm2(h)))
