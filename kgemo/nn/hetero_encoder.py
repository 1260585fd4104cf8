"""A generic heterogeneous GNN over any kgemo graph: PyG ``HeteroConv`` of ``GATConv`` or ``HGTConv`` layers."""
from __future__ import annotations

from typing import Mapping, Sequence

from torch import Tensor, nn
from torch_geometric.nn import GATConv, HeteroConv, HGTConv
from torch_geometric.typing import EdgeType, Metadata

__all__ = ["HeteroGraphEncoder"]


class HeteroGraphEncoder(nn.Module):
    r"""Project every node type to ``hidden``, then ``layers`` rounds of heterogeneous message passing.

    * ``conv="gat"`` — one ``GATConv`` per edge type, summed per destination type (PyG ``HeteroConv``):

      .. math::
          \mathbf{h}^{(l+1)}_i = \mathrm{ELU}\Big(\mathbf{h}^{(l)}_i + \sum_{r=(s, \cdot, t)}
          \mathrm{GAT}_r\big(\mathbf{h}^{(l)}_{s}, \mathbf{h}^{(l)}_{t}\big)_i\Big)

    * ``conv="hgt"`` — PyG's ``HGTConv`` (Hu et al., 2020): type-specific keys, queries, values and
      relation-specific attention and message matrices, with residual connection.

    Node types without input features are skipped (they neither send nor receive). Useful as a knowledge-graph
    encoder for new methods and for ablations over any builder's schema.

    Args:
        in_dims: node type → input width.
        metadata: ``(node_types, edge_types)`` of the graphs (``data.metadata()``).
        hidden: output width (divisible by ``heads``).
        layers: message-passing rounds.
        conv: ``"gat"`` or ``"hgt"``.
        heads: attention heads.
        dropout: dropout on attention (GAT) and between layers.

    Shapes:
        - **input:** ``x_dict`` {type: :math:`(N_t, F_t)`}, ``edge_index_dict`` {edge type: :math:`(2, E_r)`}.
        - **output:** {type: :math:`(N_t, \text{hidden})`}.
    """

    def __init__(self, in_dims: Mapping[str, int], metadata: Metadata, hidden: int = 128, layers: int = 2,
                 conv: str = "gat", heads: int = 4, dropout: float = 0.1):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden={hidden} is not divisible by heads={heads}")
        if conv not in ("gat", "hgt"):
            raise ValueError(f"conv must be 'gat' or 'hgt', got {conv!r}")
        node_types = [t for t in metadata[0] if t in in_dims]
        edge_types: Sequence[EdgeType] = [e for e in metadata[1] if e[0] in in_dims and e[2] in in_dims]
        self.conv, self.dropout = conv, dropout
        self.proj = nn.ModuleDict({t: nn.Linear(in_dims[t], hidden) for t in node_types})
        if conv == "gat":
            self.convs = nn.ModuleList(
                HeteroConv({e: GATConv((-1, -1), hidden // heads, heads=heads, dropout=dropout,
                                       add_self_loops=False) for e in edge_types}, aggr="sum")
                for _ in range(layers))
        else:
            self.convs = nn.ModuleList(HGTConv(hidden, hidden, (node_types, list(edge_types)), heads=heads)
                                       for _ in range(layers))

    def forward(self, x_dict: Mapping[str, Tensor], edge_index_dict: Mapping[EdgeType, Tensor]
                ) -> dict[str, Tensor]:
        h = {t: self.proj[t](x) for t, x in x_dict.items() if t in self.proj}          # {type: [N_t, H]}
        edges = {e: ei for e, ei in edge_index_dict.items() if e[0] in h and e[2] in h}
        for conv in self.convs:
            out = conv(h, edges)
            if self.conv == "gat":  # residual + ELU; types that received nothing keep their state
                out = {t: nn.functional.elu(h[t] + out[t]) if t in out else h[t] for t in h}
            else:
                out = {t: out[t] if out.get(t) is not None else h[t] for t in h}
            h = {t: nn.functional.dropout(v, self.dropout, self.training) for t, v in out.items()}
        return h
