"""Relation-typed GRU update: COSMIC's state updates written as message passing."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing

__all__ = ["RelationGRU"]


class RelationGRU(MessagePassing):
    r"""Update node states with one GRU cell per relation type, fed by the messages of that relation.

    For relation types :math:`r_1, \dots, r_R` applied in order, with :math:`\mathcal{N}_r(i)` the sources that
    reach node :math:`i` through an edge of type :math:`r`:

    .. math::
        \mathbf{m}^{(r)}_i = \frac{1}{|\mathcal{N}_r(i)|} \sum_{j \in \mathcal{N}_r(i)} \mathbf{x}_j, \qquad
        \mathbf{h}^{(r)}_i = \begin{cases}
            \mathrm{GRUCell}_r\big(\mathbf{m}^{(r)}_i, \mathbf{h}^{(r-1)}_i\big) & |\mathcal{N}_r(i)| > 0 \\
            \mathbf{h}^{(r-1)}_i & \text{otherwise}
        \end{cases}

    with :math:`\mathbf{h}^{(0)} = \mathbf{h}`. This is how COSMIC (Ghosal et al., 2020) updates its states from
    COMET relations — e.g. the speaker's internal state from xReact/xEffect, a listener's from oReact/oEffect, the
    intent state from xIntent — each relation with its own GRU; here the relation features are source nodes and
    the edges say which state each one updates, so the same layer serves speakers and listeners.

    Args:
        in_channels: width of the relation (source) features.
        hidden: width of the states.
        relations: the relation names, in update order.

    Shapes:
        - **input:** x :math:`(|\mathcal{V}_s|, F)` source features, h :math:`(|\mathcal{V}_t|, H)` states,
          edge_index :math:`(2, E)` source → target, edge_type :math:`(E)` index into ``relations``.
        - **output:** :math:`(|\mathcal{V}_t|, H)`.
    """

    def __init__(self, in_channels: int, hidden: int, relations: Sequence[str]):
        super().__init__(aggr="mean", node_dim=0)
        self.in_channels, self.hidden, self.relations = in_channels, hidden, tuple(relations)
        self.cells = nn.ModuleList(nn.GRUCell(in_channels, hidden) for _ in self.relations)
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        for cell in self.cells:
            cell.reset_parameters()

    def forward(self, x: Tensor, h: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        size = (x.size(0), h.size(0))
        for r, cell in enumerate(self.cells):
            mask = edge_type == r
            if not mask.any():
                continue
            ei = edge_index[:, mask]
            m = self.propagate(ei, x=(x, None), size=size)                     # [N_t, F] mean message
            has = torch.zeros(h.size(0), dtype=torch.bool, device=h.device)
            has[ei[1]] = True
            h = torch.where(has.unsqueeze(-1), cell(m, h), h)                  # only nodes that got a message
        return h

    def message(self, x_j: Tensor) -> Tensor:
        return x_j

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_channels}, {self.hidden}, relations={list(self.relations)})"
