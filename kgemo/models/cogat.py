"""``cogat``: Co-GAT (Qin et al., AAAI 2021) — joint dialog act recognition and sentiment classification."""
from __future__ import annotations

import dataclasses
from typing import Mapping

from torch import Tensor, nn

from ..data.labels import LabelSpace
from ..nn import CoInteractiveGAT, ConversationLSTM, ResidualGAT
from .base import KGModel, register_model, task_heads
from .joint_input import JointConfig, UtteranceInput, joint_tasks

__all__ = ["CoGAT", "CoGATConfig"]

@dataclasses.dataclass
class CoGATConfig(JointConfig):
    """Co-GAT's options; of the shared ones, ``context_layers`` is the number of stacked co-interactive layers
    (Co-GAT's ``gat_layer``) and ``max_distance`` is unused (the graph's ``window`` bounds the context)."""

    name: str = "cogat"
    heads: int = 8                   # attention heads of every GAT (Co-GAT: 8)
    dropout: float = 0.3             # dropout on node states
    attention_dropout: float = 0.1   # dropout on attention weights (Co-GAT's gat_dropout_rate)
    speaker_layers: int = 1          # speaker-aware GAT blocks over (utterance, speaker_link, utterance); 0 = none
    shared_lstm: bool = True         # BiLSTM over the utterance sequence before the speaker GAT


@register_model
class CoGAT(KGModel):
    r"""Co-GAT on kgemo's ``co_interactive`` graph.

    Read top to bottom, for a dialogue with frozen sentence features :math:`\mathbf{x}_i`:

    1. Utterance input (:class:`UtteranceInput`): :math:`\mathbf{h}^{(0)}_i = \mathrm{GELU}(\mathrm{LN}(\mathbf{W}_{in}
       \mathbf{x}_i))` and a vector :math:`\mathbf{w}_i` of the utterance's hashed words; then a BiLSTM over the
       utterance sequence with a residual,
       :math:`\mathbf{h}^{(1)} = \mathbf{h}^{(0)} + \mathrm{BiLSTM}(\mathbf{h}^{(0)})`
       (:class:`~kgemo.nn.ConversationLSTM`).
    2. Speaker-aware GAT over ``(utterance, speaker_link, utterance)`` (Mastodon's reply links, DailyDialog's
       i ↔ i+2 links): :math:`\mathbf{e} = \mathrm{ResidualGAT}(\mathbf{h}^{(1)})`
       (:class:`~kgemo.nn.ResidualGAT`).
    3. One BiLSTM per task with a residual: :math:`\mathbf{a} = \mathbf{e}' + \mathrm{BiLSTM}_a(\mathbf{e}')` with
       :math:`\mathbf{e}' = \mathbf{e} + \mathbf{w}` (the act branch reads the words, ``word_branch="act"``), and
       :math:`\mathbf{s} = \mathbf{e} + \mathrm{BiLSTM}_s(\mathbf{e})`, placed on the ``act`` and ``sentiment``
       nodes.
    4. ``context_layers`` co-interactive graph attention layers over the 2N task nodes, one softmax over each
       node's own-task context and the other task's nodes (:class:`~kgemo.nn.CoInteractiveGAT`).
    5. Two linear classifiers: act from the act nodes, sentiment (DailyDialog: emotion) from the sentiment
       nodes. The trainer sums the two cross-entropies (``train.task_weights`` weighs them), as Co-GAT does.

    Differences from the official code, on purpose: utterances are encoded by the frozen packaged sentence
    encoder and a bag of hashed words, followed by the dialogue-level BiLSTM (Co-GAT runs a word BiLSTM with
    max-pooling per utterance; docs/joint.md says why the words are needed); GAT heads are ``hidden / heads``
    wide and concatenated, one attention pass per layer (Co-GAT stacks 8 full-width heads and an output GAT);
    after the co-interactive layers the classifiers read the node states directly (Co-GAT adds a linear / LSTM
    layer and a residual from the encoder).
    """

    name = "cogat"
    graph_builder = "co_interactive"
    knowledge = ()
    config_class = CoGATConfig

    def __init__(self, config: CoGATConfig, label_spaces: Mapping[str, LabelSpace]):
        super().__init__(config, label_spaces)
        self.act_task, self.affect_task = joint_tasks(self.name, label_spaces)
        c = config
        self.utt_in = UtteranceInput(c)
        self.drop = nn.Dropout(c.dropout)
        self.shared = ConversationLSTM(c.hidden, c.hidden) if c.shared_lstm else None
        self.speaker = nn.ModuleList(ResidualGAT(c.hidden, c.heads, c.dropout, c.attention_dropout)
                                     for _ in range(c.speaker_layers))
        self.act_lstm = ConversationLSTM(c.hidden, c.hidden)
        self.affect_lstm = ConversationLSTM(c.hidden, c.hidden)
        self.co_interactive = CoInteractiveGAT(c.hidden, c.context_layers, c.heads, c.dropout, c.attention_dropout)
        self.heads = task_heads(c.hidden, label_spaces, c.dropout)

    def forward(self, batch) -> dict[str, Tensor]:
        u = batch["utterance"]
        conv = getattr(u, "batch", None)                                          # [N] conversation of each node
        h, words = self.utt_in(batch)                                             # [N, hidden] each
        if self.shared is not None:
            h = h + self.shared(self.drop(h), conv)                               # [N, hidden]
        links = batch["utterance", "speaker_link", "utterance"].edge_index
        for gat in self.speaker:
            h = gat(h, links)                                                     # [N, hidden]
        a = h if words is None else h + words                                    # act branch reads the words
        act = a + self.act_lstm(self.drop(a), conv)                               # [N, hidden] on act nodes
        affect = h + self.affect_lstm(self.drop(h), conv)                         # [N, hidden] on sentiment nodes
        out = self.co_interactive({"act": act, "sentiment": affect}, batch.edge_index_dict)
        return {self.act_task: self.heads[self.act_task](out["act"]),             # [N, acts]
                self.affect_task: self.heads[self.affect_task](out["sentiment"])}  # [N, sentiments]
