"""Co-GAT's co-interactive graph layer: one graph attention over the act and sentiment nodes of a dialogue."""
from __future__ import annotations

from typing import Mapping

import torch
from torch import Tensor, nn

from .residual_gat import ResidualGAT

__all__ = ["CoInteractiveGAT", "TASK_NODES"]

#: The two task node types, in the order they are stacked.
TASK_NODES = ("act", "sentiment")


class CoInteractiveGAT(nn.Module):
    r"""Co-interactive graph attention (Qin et al., AAAI 2021, "Co-GAT"): act and sentiment nodes updated together.

    The node set is :math:`\mathcal{A} \cup \mathcal{S}` (one act and one sentiment node per utterance). The
    neighbourhood of a node is its task's context (``(act, context, act)`` / ``(sentiment, context,
    sentiment)`` edges, the cross-*utterance* connection) together with the other task's nodes (``(act, cross,
    sentiment)`` / ``(sentiment, cross, act)``, the cross-*task* connection), and one attention softmax runs
    over all of them, so each node decides how much to take from its own task's context and how much from the
    other task:

    .. math::
        \mathcal{N}(a_i) = \{a_j : (a_j \to a_i)\} \cup \{s_j : (s_j \to a_i)\}, \qquad
        [\mathbf{A}'; \mathbf{S}'] = \mathrm{ResidualGAT}\big([\mathbf{A}; \mathbf{S}], \mathcal{N}\big)

    (:class:`~kgemo.nn.ResidualGAT`). ``layers`` such updates are stacked, as Co-GAT's ``gat_layer``. Without the
    cross edges (the ablation graph) it reduces to one GAT per task over the dialogue context.

    Args:
        hidden: node width.
        layers: stacked co-interactive updates.
        heads: attention heads.
        dropout: dropout on node states.
        attention_dropout: dropout on attention weights.

    Shapes:
        - **input:** x_dict ``{"act": (N, hidden), "sentiment": (N, hidden)}``, edge_index_dict with any of the
          four ``(src, relation, dst)`` triples above (j → i, indices local to each node type).
        - **output:** the same ``x_dict`` keys and shapes.
    """

    def __init__(self, hidden: int, layers: int = 2, heads: int = 8, dropout: float = 0.1,
                 attention_dropout: float = 0.1):
        super().__init__()
        self.hidden = hidden
        self.layers = nn.ModuleList(ResidualGAT(hidden, heads, dropout, attention_dropout) for _ in range(layers))

    def reset_parameters(self):
        for layer in self.layers:
            layer.reset_parameters()

    @staticmethod
    def merge(x_dict: Mapping[str, Tensor], edge_index_dict: Mapping[tuple, Tensor]) -> tuple[Tensor, Tensor]:
        """Stack the task nodes (act first) and their edges into one homogeneous graph."""
        offset, start = {}, 0
        for nt in TASK_NODES:
            offset[nt] = start
            start += x_dict[nt].size(0)
        x = torch.cat([x_dict[nt] for nt in TASK_NODES], 0)                        # [2N, hidden]
        parts = [ei + torch.tensor([[offset[src]], [offset[dst]]], device=ei.device)
                 for (src, _, dst), ei in edge_index_dict.items() if src in offset and dst in offset]
        edge_index = torch.cat(parts, 1) if parts else x.new_zeros((2, 0), dtype=torch.long)
        return x, edge_index

    def forward(self, x_dict: Mapping[str, Tensor], edge_index_dict: Mapping[tuple, Tensor]) -> dict[str, Tensor]:
        x, edge_index = self.merge(x_dict, edge_index_dict)
        for layer in self.layers:
            x = layer(x, edge_index)                                               # [2N, hidden]
        act, sentiment = x.split([x_dict["act"].size(0), x_dict["sentiment"].size(0)])
        return {"act": act, "sentiment": sentiment}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hidden}, layers={len(self.layers)})"
