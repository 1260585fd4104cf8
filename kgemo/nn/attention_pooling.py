"""Soft attention pooling of nodes into groups (tokens → their utterance)."""
from __future__ import annotations

from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

__all__ = ["AttentionPooling"]


class AttentionPooling(nn.Module):
    r"""Pool node vectors into groups with learned attention.

    .. math::
        \beta_t = \operatorname{softmax}_{t \in g} \big(\mathbf{w}^\top \tanh(\mathbf{W}\mathbf{x}_t)\big),
        \qquad \mathbf{z}_g = \sum_{t \in g} \beta_t \mathbf{x}_t

    Empty groups get :math:`\mathbf{z}_g = 0`. Same idea as PyG's ``AttentionalAggregation``, but the weights
    :math:`\beta` are returned so the annotator can show which tokens mattered.

    Args:
        dim: node width.
        score_hidden: width of the scorer's hidden layer (default ``dim``).

    Shapes:
        - **input:** x :math:`(T, F)`, index :math:`(T)` group of each node, ``num_groups``.
        - **output:** :math:`(G, F)` and :math:`\beta` :math:`(T)`.
    """

    def __init__(self, dim: int, score_hidden: int | None = None):
        super().__init__()
        hidden = score_hidden or dim
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1, bias=False))

    def forward(self, x: Tensor, index: Tensor, num_groups: int) -> tuple[Tensor, Tensor]:
        beta = softmax(self.score(x).squeeze(-1), index, num_nodes=num_groups)  # [T]
        return scatter(beta.unsqueeze(-1) * x, index, 0, dim_size=num_groups, reduce="sum"), beta
