"""Multi-head graph attention with a residual connection (Co-GAT's speaker-aware and co-interactive layers)."""
from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.nn import GATConv

__all__ = ["ResidualGAT"]


class ResidualGAT(nn.Module):
    r"""GAT layer (Veličković et al., 2018) whose heads are concatenated back to the input width, plus a residual.

    .. math::
        \alpha^k_{ij} = \operatorname{softmax}_{j \in \mathcal{N}(i)} \mathrm{LeakyReLU}_{0.2}\big(
            \mathbf{a}^{k\top} [\mathbf{W}^k \mathbf{h}_i \Vert \mathbf{W}^k \mathbf{h}_j]\big), \qquad
        \mathbf{h}'_i = \mathbf{h}_i + \mathrm{Dropout}\Big(\mathrm{ELU}\Big(\big\Vert_{k=1}^{H}
            \sum_{j \in \mathcal{N}(i)} \alpha^k_{ij} \mathbf{W}^k \mathbf{h}_j\Big)\Big)

    Co-GAT's official code stacks eight concatenated ``hidden``-wide heads and a single-head output GAT in every
    such block; here each head is ``hidden / H`` wide, so one block costs one attention pass instead of two
    (``H`` times less memory per edge), and the residual keeps Co-GAT's :math:`\mathbf{h} + \mathrm{GAT}(\mathbf{h})`
    form. Self-loops are whatever the graph holds (none are added).

    Args:
        hidden: input and output width, divisible by ``heads``.
        heads: attention heads :math:`H`.
        dropout: dropout on the input and the output.
        attention_dropout: dropout on the attention weights.

    Shapes:
        - **input:** h :math:`(N, \text{hidden})`, edge_index :math:`(2, E)` (j → i).
        - **output:** :math:`(N, \text{hidden})`.
    """

    def __init__(self, hidden: int, heads: int = 8, dropout: float = 0.1, attention_dropout: float = 0.1):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden={hidden} is not divisible by heads={heads}")
        self.hidden, self.heads = hidden, heads
        self.drop = nn.Dropout(dropout)
        self.gat = GATConv(hidden, hidden // heads, heads=heads, dropout=attention_dropout, add_self_loops=False)
        self.reset_parameters()

    def reset_parameters(self):
        self.gat.reset_parameters()

    def forward(self, h: Tensor, edge_index: Tensor, return_attention_weights: bool = False):
        if return_attention_weights:
            out, (ei, att) = self.gat(self.drop(h), edge_index, return_attention_weights=True)
            return h + self.drop(nn.functional.elu(out)), (ei, att)               # [N, hidden], ([2, E], [E, H])
        return h + self.drop(nn.functional.elu(self.gat(self.drop(h), edge_index)))  # [N, hidden]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hidden}, heads={self.heads})"
