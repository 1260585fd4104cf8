"""``dcrnet``: DCR-Net (Qin et al., AAAI 2020) — deep co-interactive relation network for acts and sentiment."""
from __future__ import annotations

import dataclasses
from typing import Mapping

from torch import Tensor, nn

from ..data.labels import LabelSpace
from ..nn import CoAttention, ConversationLSTM
from .base import KGModel, register_model, task_heads
from .joint_input import JointConfig, UtteranceInput, joint_tasks

__all__ = ["DCRNet", "DCRNetConfig"]


@dataclasses.dataclass
class DCRNetConfig(JointConfig):
    """DCR-Net's options; of the shared ones, ``context_layers`` is the number of stacked relation layers and
    ``max_distance`` is unused."""

    name: str = "dcrnet"
    heads: int = 4          # co-attention heads
    dropout: float = 0.3    # dropout on node states


class _RelationLayer(nn.Module):
    """One DCR-Net step: act BiLSTM and sentiment MLP, then co-attention both ways, each added residually."""

    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.act_lstm = ConversationLSTM(hidden, hidden)
        self.affect_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.act_from_affect = CoAttention(hidden, heads, dropout)
        self.affect_from_act = CoAttention(hidden, heads, dropout)
        self.act_norm, self.affect_norm = nn.LayerNorm(hidden), nn.LayerNorm(hidden)

    def forward(self, act: Tensor, affect: Tensor, conv: Tensor | None, edge_index_dict) -> tuple[Tensor, Tensor]:
        act = act + self.act_lstm(self.drop(act), conv)                          # [N, hidden]
        affect = affect + self.affect_mlp(self.drop(affect))                     # [N, hidden]
        a2s = edge_index_dict.get(("act", "cross", "sentiment"))
        s2a = edge_index_dict.get(("sentiment", "cross", "act"))
        # Both directions read the states from before this interaction (a simultaneous update).
        new_act = self.act_from_affect(act, affect, s2a) if s2a is not None else act
        new_affect = self.affect_from_act(affect, act, a2s) if a2s is not None else affect
        return self.act_norm(new_act), self.affect_norm(new_affect)


@register_model
class DCRNet(KGModel):
    r"""DCR-Net on kgemo's ``co_interactive`` graph (its cross-task edges; speaker links are not used).

    1. Shared encoder: :math:`\mathbf{h} = \mathbf{h}^{(0)} + \mathrm{BiLSTM}(\mathbf{h}^{(0)})`,
       :math:`\mathbf{h}^{(0)}_i = \mathrm{GELU}(\mathbf{W}_{in}\mathbf{x}_i)` (frozen sentence features).
    2. ``context_layers`` relation layers, starting from :math:`\mathbf{a} = \mathbf{s} = \mathbf{h}`:

       .. math::
           \mathbf{a} \leftarrow \mathbf{a} + \mathrm{BiLSTM}_a(\mathbf{a}), \quad
           \mathbf{s} \leftarrow \mathbf{s} + \mathrm{MLP}_s(\mathbf{s}), \quad
           \mathbf{a}' = \mathrm{LN}(\mathbf{a} + \mathrm{Att}(\mathbf{a} \to \mathbf{s})), \quad
           \mathbf{s}' = \mathrm{LN}(\mathbf{s} + \mathrm{Att}(\mathbf{s} \to \mathbf{a}))

       with :class:`~kgemo.nn.CoAttention` over the dialogue's other-task nodes (DCR-Net's co-attention relation
       layer, its best variant).
    3. Two linear classifiers; the trainer sums the cross-entropies.

    Differences from the paper, on purpose: frozen sentence features replace the word-level BiLSTM +
    self-attention utterance encoder; the co-attention has learned projections and several heads; layer norm
    after each interaction keeps stacked residuals in range.
    """

    name = "dcrnet"
    graph_builder = "co_interactive"
    knowledge = ()
    config_class = DCRNetConfig

    def __init__(self, config: DCRNetConfig, label_spaces: Mapping[str, LabelSpace]):
        super().__init__(config, label_spaces)
        self.act_task, self.affect_task = joint_tasks(self.name, label_spaces)
        c = config
        self.utt_in = UtteranceInput(c)
        self.drop = nn.Dropout(c.dropout)
        self.shared = ConversationLSTM(c.hidden, c.hidden)
        self.relations = nn.ModuleList(_RelationLayer(c.hidden, c.heads, c.dropout) for _ in range(c.context_layers))
        self.heads = task_heads(c.hidden, label_spaces, c.dropout)

    def forward(self, batch) -> dict[str, Tensor]:
        u = batch["utterance"]
        conv = getattr(u, "batch", None)                                          # [N] conversation of each node
        h, words = self.utt_in(batch)                                             # [N, hidden] each
        h = h + self.shared(self.drop(h), conv)                                   # [N, hidden]
        act, affect = (h if words is None else h + words), h                     # act branch reads the words
        edges = batch.edge_index_dict
        for layer in self.relations:
            act, affect = layer(act, affect, conv, edges)                         # 2 × [N, hidden]
        return {self.act_task: self.heads[self.act_task](act),                    # [N, acts]
                self.affect_task: self.heads[self.affect_task](affect)}           # [N, sentiments]
