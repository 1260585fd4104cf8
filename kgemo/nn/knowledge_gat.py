"""Bipartite GAT from concepts to tokens that also attends to the token itself (CKE-Net / KI-Net)."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv

__all__ = ["KnowledgeGAT"]


class KnowledgeGAT(nn.Module):
    r"""Token knowledge vectors by graph attention over the token's ConceptNet concepts and itself.

    With :math:`\mathcal{N}(t)` the token's concepts, each edge carrying features :math:`\mathbf{e}_{ct}`
    (ConceptNet confidence, affect intensity, relation embedding):

    .. math::
        \alpha_{ct} = \operatorname{softmax}_{c \in \mathcal{N}(t) \cup \{t\}}
            \mathrm{LeakyReLU}\big(\mathbf{a}^\top [\mathbf{W}\mathbf{x}_t \Vert \mathbf{W}\mathbf{x}_c \Vert
            \mathbf{W}_e \mathbf{e}_{ct}]\big), \qquad
        \mathbf{k}_t = \big\Vert_{h=1}^{H} \sum_{c} \alpha^h_{ct} \mathbf{W}^h \mathbf{x}_c

    implemented with PyG's ``GATConv`` on the node set concepts ∪ tokens, where the token's self edge carries a
    learned "self" relation and confidence 1. Following KI-Net (Xie et al., 2021), including the token itself
    lets the attention fall back to the word when its concepts are off-topic.

    Args:
        in_dim: width of token and concept features.
        out_dim: output width (divisible by ``heads``).
        num_relations: ConceptNet relation vocabulary size (one more id is used for "self").
        heads: attention heads.
        dropout: attention dropout.

    Shapes:
        - **input:** x_concept :math:`(C, F)`, x_token :math:`(T, F)`, edge_index :math:`(2, E)` concept → token,
          confidence, affect :math:`(E)`, relation :math:`(E)`.
        - **output:** :math:`(T, \text{out\_dim})`; with ``return_attention_weights`` also the attention of each
          concept edge, averaged over heads, :math:`(E)`.
    """

    def __init__(self, in_dim: int, out_dim: int, num_relations: int, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        if out_dim % heads:
            raise ValueError(f"out_dim={out_dim} is not divisible by heads={heads}")
        self.num_relations = num_relations
        self.rel_emb = nn.Embedding(num_relations + 1, 16)
        self.gat = GATConv(in_dim, out_dim // heads, heads=heads, dropout=dropout, edge_dim=18,
                           add_self_loops=False)

    def forward(self, x_concept: Tensor, x_token: Tensor, edge_index: Tensor, confidence: Tensor,
                affect: Tensor, relation: Tensor, return_attention_weights: bool = False):
        C, T = x_concept.size(0), x_token.size(0)
        arange = torch.arange(T, device=x_token.device)
        # Node set: concepts [0, C) then tokens [C, C+T); edges: concept → token and token → itself.
        x = torch.cat([x_concept, x_token], 0)
        ei = torch.cat([edge_index + torch.tensor([[0], [C]], device=edge_index.device),
                        torch.stack([arange + C, arange + C])], 1)
        conf = torch.cat([confidence, confidence.new_ones(T)])
        aff = torch.cat([affect, affect.new_zeros(T)])
        rel = torch.cat([relation, relation.new_full((T,), self.num_relations)])
        e = torch.cat([conf[:, None], aff[:, None], self.rel_emb(rel)], -1)  # [E + T, 18]
        out, (_, att) = self.gat(x, ei, e, return_attention_weights=True)
        out = out[C:]  # [T, out_dim]
        if return_attention_weights:
            return out, att[: edge_index.size(1)].mean(-1)
        return out
