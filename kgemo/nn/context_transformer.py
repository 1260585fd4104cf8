"""Transformer over a conversation's context edges (windowed, speaker- and distance-aware)."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import TransformerConv

__all__ = ["ContextTransformer", "ContextTransformerLayer"]


class ContextTransformerLayer(nn.Module):
    r"""One post-norm transformer block whose attention runs over graph edges (PyG ``TransformerConv``).

    .. math::
        \mathbf{h}'_i &= \mathrm{LN}\Big(\mathbf{h}_i + \mathbf{W}_o\,\big\Vert_{k=1}^{H}
            \sum_{j \in \mathcal{N}(i)} \alpha^k_{ij} \big(\mathbf{W}^k_v \mathbf{h}_j + \mathbf{W}^k_e
            \mathbf{e}_{ij}\big)\Big),\quad
        \alpha^k_{ij} = \operatorname{softmax}_j \frac{(\mathbf{W}^k_q \mathbf{h}_i)^\top
            (\mathbf{W}^k_k \mathbf{h}_j + \mathbf{W}^k_e \mathbf{e}_{ij})}{\sqrt{d}} \\
        \mathbf{h}''_i &= \mathrm{LN}\big(\mathbf{h}'_i + \mathrm{FFN}(\mathbf{h}'_i)\big)

    with :math:`\mathbf{e}_{ij}` the edge embedding (relative position and same-speaker flag). Attention cost is
    linear in the number of context edges, not quadratic in the conversation length.

    Args:
        hidden: model width; divisible by ``heads``.
        heads: attention heads.
        edge_dim: width of the edge embedding.
        dropout: dropout on attention weights and sub-layer outputs.
    """

    def __init__(self, hidden: int, heads: int = 4, edge_dim: int | None = None, dropout: float = 0.1):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden={hidden} is not divisible by heads={heads}")
        self.attn = TransformerConv(hidden, hidden // heads, heads=heads, dropout=dropout, edge_dim=edge_dim,
                                    root_weight=False)
        self.out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(2 * hidden, hidden))
        self.norm2 = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor, edge_index: Tensor, edge_attr: Tensor | None = None) -> Tensor:
        h = self.norm1(h + self.drop(self.out(self.attn(h, edge_index, edge_attr))))  # [N, hidden]
        return self.norm2(h + self.drop(self.ffn(h)))


class ContextTransformer(nn.Module):
    r"""A stack of :class:`ContextTransformerLayer` over ``(utterance, context, utterance)`` edges.

    Edges carry ``rel_pos`` = i − j (clipped to ±``max_distance``) and ``same_speaker``; both are embedded and
    summed into :math:`\mathbf{e}_{ij}`, so the model knows who spoke and how far back.

    Args:
        hidden: model width.
        layers: number of blocks (0 = identity).
        heads: attention heads.
        max_distance: relative positions beyond this share one embedding.
        dropout: dropout.

    Shapes:
        - **input:** h :math:`(N, \text{hidden})`, edge_index :math:`(2, E)`, rel_pos :math:`(E)`,
          same_speaker :math:`(E)`.
        - **output:** :math:`(N, \text{hidden})`.
    """

    def __init__(self, hidden: int, layers: int = 2, heads: int = 4, max_distance: int = 16,
                 dropout: float = 0.1):
        super().__init__()
        self.max_distance = max_distance
        self.rel_emb = nn.Embedding(2 * max_distance + 1, hidden)
        self.spk_emb = nn.Embedding(2, hidden)
        self.layers = nn.ModuleList(ContextTransformerLayer(hidden, heads, hidden, dropout) for _ in range(layers))

    def forward(self, h: Tensor, edge_index: Tensor, rel_pos: Tensor, same_speaker: Tensor) -> Tensor:
        if not self.layers:
            return h
        rel = rel_pos.clamp(-self.max_distance, self.max_distance) + self.max_distance
        e = self.rel_emb(rel) + self.spk_emb(same_speaker.long())  # [E, hidden]
        for layer in self.layers:
            h = layer(h, edge_index, e)
        return h
