"""Transformer over a conversation's context edges (windowed, speaker- and distance-aware)."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

__all__ = ["ContextAttention", "ContextTransformer", "ContextTransformerLayer"]


class ContextAttention(MessagePassing):
    r"""Multi-head dot-product attention over graph edges with a learned relative-position / speaker bias.

    .. math::
        \alpha^k_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i)}\Big(
            \frac{(\mathbf{W}^k_q \mathbf{h}_i)^\top (\mathbf{W}^k_k \mathbf{h}_j)}{\sqrt{d}}
            + b^k_{\,r_{ij}, s_{ij}}\Big), \qquad
        \mathbf{h}'_i = \mathbf{W}_o \big\Vert_{k=1}^{H} \sum_{j \in \mathcal{N}(i)} \alpha^k_{ij}\,
            \mathbf{W}^k_v \mathbf{h}_j

    where :math:`r_{ij} = i - j` (clipped to :math:`\pm R`) and :math:`s_{ij}` says whether the two utterances have
    the same speaker; :math:`b` is one scalar per head and (distance, same-speaker) pair, the T5-style relative
    bias. Cost is linear in the number of edges (the window), not quadratic in the conversation length.

    Args:
        hidden: model width, divisible by ``heads``.
        heads: attention heads.
        max_distance: :math:`R`.
        dropout: dropout on the attention weights.

    Shapes:
        - **input:** h :math:`(N, F)`, edge_index :math:`(2, E)` (j → i), rel_pos :math:`(E)`,
          same_speaker :math:`(E)`.
        - **output:** :math:`(N, F)`.
    """

    def __init__(self, hidden: int, heads: int = 4, max_distance: int = 16, dropout: float = 0.1):
        super().__init__(aggr="sum", node_dim=0)
        if hidden % heads:
            raise ValueError(f"hidden={hidden} is not divisible by heads={heads}")
        self.hidden, self.heads, self.max_distance, self.dropout = hidden, heads, max_distance, dropout
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.bias = nn.Embedding(2 * (2 * max_distance + 1), heads)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        self.qkv.reset_parameters()
        self.out.reset_parameters()
        nn.init.zeros_(self.bias.weight)

    def bucket(self, rel_pos: Tensor, same_speaker: Tensor) -> Tensor:
        rel = rel_pos.clamp(-self.max_distance, self.max_distance) + self.max_distance
        return rel * 2 + same_speaker.long()

    def forward(self, h: Tensor, edge_index: Tensor, rel_pos: Tensor, same_speaker: Tensor) -> Tensor:
        H, D = self.heads, self.hidden // self.heads
        q, k, v = self.qkv(h).view(-1, 3, H, D).unbind(1)                      # 3 × [N, H, D]
        bias = self.bias(self.bucket(rel_pos, same_speaker))                    # [E, H]
        out = self.propagate(edge_index, q=q, k=k, v=v, bias=bias)              # [N, H, D]
        return self.out(out.reshape(-1, self.hidden))

    def message(self, q_i: Tensor, k_j: Tensor, v_j: Tensor, bias: Tensor, index: Tensor, ptr, size_i) -> Tensor:
        score = (q_i * k_j).sum(-1) / math.sqrt(q_i.size(-1)) + bias            # [E, H]
        alpha = softmax(score, index, ptr, size_i)
        alpha = nn.functional.dropout(alpha, self.dropout, self.training)
        return alpha.unsqueeze(-1) * v_j                                         # [E, H, D]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hidden}, heads={self.heads}, max_distance={self.max_distance})"


class ContextTransformerLayer(nn.Module):
    r"""Post-norm transformer block around :class:`ContextAttention`.

    .. math::
        \mathbf{h}' = \mathrm{LN}\big(\mathbf{h} + \mathrm{Attn}(\mathbf{h})\big), \qquad
        \mathbf{h}'' = \mathrm{LN}\big(\mathbf{h}' + \mathrm{FFN}(\mathbf{h}')\big)
    """

    def __init__(self, hidden: int, heads: int = 4, max_distance: int = 16, dropout: float = 0.1):
        super().__init__()
        self.attn = ContextAttention(hidden, heads, max_distance, dropout)
        self.norm1 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(2 * hidden, hidden))
        self.norm2 = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor, edge_index: Tensor, rel_pos: Tensor, same_speaker: Tensor) -> Tensor:
        h = self.norm1(h + self.drop(self.attn(h, edge_index, rel_pos, same_speaker)))  # [N, hidden]
        return self.norm2(h + self.drop(self.ffn(h)))


class ContextTransformer(nn.Module):
    r"""A stack of :class:`ContextTransformerLayer` over ``(utterance, context, utterance)`` edges.

    Args:
        hidden: model width.
        layers: number of blocks (0 = identity).
        heads: attention heads.
        max_distance: relative positions beyond this share one bias.
        dropout: dropout.

    Shapes:
        - **input:** h :math:`(N, \text{hidden})`, edge_index :math:`(2, E)`, rel_pos :math:`(E)`,
          same_speaker :math:`(E)`.
        - **output:** :math:`(N, \text{hidden})`; with ``targets``, only those rows are the stack's output.
    """

    def __init__(self, hidden: int, layers: int = 2, heads: int = 4, max_distance: int = 16,
                 dropout: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(ContextTransformerLayer(hidden, heads, max_distance, dropout)
                                    for _ in range(layers))

    def forward(self, h: Tensor, edge_index: Tensor, rel_pos: Tensor, same_speaker: Tensor,
                targets: Tensor | None = None) -> Tensor:
        """``targets``: node ids whose output is wanted (occlusion reads one utterance per copy). Each layer then
        passes only the messages into the nodes the layers above still need — the targets, then their sources,
        and so on down — so only the targets' rows are exact; the rest are left half-computed."""
        if targets is None:
            for layer in self.layers:
                h = layer(h, edge_index, rel_pos, same_speaker)
            return h
        need = torch.zeros(h.size(0), dtype=torch.bool, device=h.device)
        need[targets] = True
        edges = []
        for _ in self.layers:                       # from the last layer down
            keep = need[edge_index[1]]
            edges.append(keep)
            need = need.clone()
            need[edge_index[0, keep]] = True
        for layer, keep in zip(self.layers, reversed(edges)):
            h = layer(h, edge_index[:, keep], rel_pos[keep], same_speaker[keep])
        return h
