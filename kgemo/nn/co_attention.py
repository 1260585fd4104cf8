"""DCR-Net's co-attention: the nodes of one task attend over the nodes of the other task (bipartite edges)."""
from __future__ import annotations

import math

from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

__all__ = ["CoAttention"]


class CoAttention(MessagePassing):
    r"""Multi-head scaled dot-product attention from target nodes to source nodes of another type, added residually.

    For a target node :math:`i` (e.g. a sentiment node) and its source neighbours :math:`j` (e.g. the act
    nodes of the same dialogue, the ``(act, cross, sentiment)`` edges):

    .. math::
        \alpha^k_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i)}
            \frac{(\mathbf{W}^k_q \mathbf{h}_i)^\top (\mathbf{W}^k_k \mathbf{g}_j)}{\sqrt{d}}, \qquad
        \mathbf{h}'_i = \mathbf{h}_i + \mathbf{W}_o \big\Vert_{k=1}^{H} \sum_{j \in \mathcal{N}(i)}
            \alpha^k_{ij}\, \mathbf{W}^k_v \mathbf{g}_j

    DCR-Net's co-attention relation layer (Qin et al., AAAI 2020) is
    :math:`\mathbf{S}' = \mathbf{S} + \mathrm{softmax}(\mathbf{S}\mathbf{A}^\top)\mathbf{A}` and the same with the
    roles swapped, over all utterances of the dialogue; this is that attention on the graph's cross-task edges,
    with learned projections and several heads. Cost is linear in the number of edges.

    Args:
        hidden: width of both node types, divisible by ``heads``.
        heads: attention heads.
        dropout: dropout on the attention weights and the update.

    Shapes:
        - **input:** h_dst :math:`(N_d, \text{hidden})`, h_src :math:`(N_s, \text{hidden})`, edge_index
          :math:`(2, E)` (src → dst).
        - **output:** :math:`(N_d, \text{hidden})`.
    """

    def __init__(self, hidden: int, heads: int = 4, dropout: float = 0.1):
        super().__init__(aggr="sum", node_dim=0)
        if hidden % heads:
            raise ValueError(f"hidden={hidden} is not divisible by heads={heads}")
        self.hidden, self.heads, self.dropout = hidden, heads, dropout
        self.q = nn.Linear(hidden, hidden)
        self.kv = nn.Linear(hidden, 2 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        for lin in (self.q, self.kv, self.out):
            lin.reset_parameters()

    def forward(self, h_dst: Tensor, h_src: Tensor, edge_index: Tensor) -> Tensor:
        H, D = self.heads, self.hidden // self.heads
        q = self.q(h_dst).view(-1, H, D)                                          # [N_d, H, D]
        k, v = self.kv(h_src).view(-1, 2, H, D).unbind(1)                          # 2 × [N_s, H, D]
        out = self.propagate(edge_index, q=q, k=k, v=v, size=(h_src.size(0), h_dst.size(0)))  # [N_d, H, D]
        out = self.out(out.reshape(-1, self.hidden))
        return h_dst + nn.functional.dropout(out, self.dropout, self.training)   # [N_d, hidden]

    def message(self, q_i: Tensor, k_j: Tensor, v_j: Tensor, index: Tensor, ptr, size_i) -> Tensor:
        score = (q_i * k_j).sum(-1) / math.sqrt(q_i.size(-1))                    # [E, H]
        alpha = softmax(score, index, ptr, size_i)
        alpha = nn.functional.dropout(alpha, self.dropout, self.training)
        return alpha.unsqueeze(-1) * v_j                                          # [E, H, D]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hidden}, heads={self.heads})"
