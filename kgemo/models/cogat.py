"""``cogat``: Co-GAT (Qin et al., AAAI 2021) — joint dialog act recognition and sentiment classification."""
from __future__ import annotations

import dataclasses
from typing import Mapping

import torch
from torch import Tensor, nn

from ..data.labels import LabelSpace
from ..errors import KgemoError
from ..nn import CoInteractiveGAT, ConversationLSTM, HashedWordBag, ResidualGAT
from .base import KGModel, ModelConfig, register_model, task_heads

__all__ = ["CoGAT", "CoGATConfig", "JointConfig", "UtteranceInput", "joint_tasks"]

#: Tasks the second ("sentiment") branch of a joint model can predict: Mastodon's sentiment, or DailyDialog's
#: 7-class emotion, which Co-GAT and DCR-Net use as the "sentiment" task on that dataset.
AFFECT_TASKS = ("sentiment", "emotion")


def joint_tasks(model: str, label_spaces: Mapping[str, LabelSpace]) -> tuple[str, str]:
    """``("act", affect_task)`` for a joint model's label spaces, or a :class:`KgemoError` saying what is wrong."""
    affect = [t for t in label_spaces if t in AFFECT_TASKS]
    if set(label_spaces) != {"act", *affect} or len(affect) != 1:
        raise KgemoError(f"{model} predicts two tasks, act and one of {AFFECT_TASKS}; got {list(label_spaces)} "
                         "(set data.tasks, e.g. [sentiment, act])")
    return "act", affect[0]


@dataclasses.dataclass
class JointConfig(ModelConfig):
    """Options of the joint act + sentiment models' utterance input (shared by Co-GAT and DCR-Net)."""

    word_dim: int = 64               # hashed bag-of-words channel width; 0 = sentence features only
    word_buckets: int = 16384        # embedding rows of the hashed words
    word_dropout: float = 0.1        # probability of dropping a word while training
    word_branch: str = "act"         # words feed the "act" branch only, or the "shared" encoder
    input_norm: bool = True          # LayerNorm after the input projection (unit-norm sentence features are tiny)

    def __post_init__(self):
        if self.word_branch not in ("act", "shared"):
            raise KgemoError(f"word_branch must be 'act' or 'shared', got {self.word_branch!r}")


class UtteranceInput(nn.Module):
    r"""Utterance vectors from the frozen sentence features, and a vector of the utterance's hashed words.

    .. math::
        \mathbf{h}^{(0)}_i = \mathrm{GELU}\big(\mathrm{LN}(\mathbf{W}_{in}\,\mathrm{Dropout}(\mathbf{x}_i))\big),
        \qquad
        \mathbf{w}_i = \mathrm{GELU}\big(\mathrm{LN}(\mathbf{W}_{w}\,\mathrm{WordBag}_i)\big)

    with the bag from :class:`~kgemo.nn.HashedWordBag` over the graph's ``word`` nodes. The sentence embedding
    carries the meaning (and sentiment), the words the surface cues that dialog acts are marked by (a question
    mark, "thanks", a link): on Mastodon a bag of words alone predicts acts far better than the sentence
    embedding, while adding the words to the sentiment branch makes it overfit. With ``word_branch="act"`` the
    models add :math:`\mathbf{w}` to the act branch only; with ``"shared"`` it is concatenated to
    :math:`\mathbf{x}` before :math:`\mathbf{W}_{in}` and ``forward`` returns no separate word vector.

    Shapes:
        - **input:** a batch of ``co_interactive`` graphs.
        - **output:** ``(h0 (N, hidden), w (N, hidden) or None)``.
    """

    def __init__(self, c: JointConfig):
        super().__init__()
        self.drop = nn.Dropout(c.dropout)
        self.words = HashedWordBag(c.word_buckets, c.word_dim, c.word_dropout) if c.word_dim > 0 else None
        self.shared_words = self.words is not None and c.word_branch == "shared"
        self.proj = nn.Linear(c.input_dim + (c.word_dim if self.shared_words else 0), c.hidden)
        self.norm = nn.LayerNorm(c.hidden) if c.input_norm else nn.Identity()
        if self.words is not None and not self.shared_words:
            self.word_proj = nn.Sequential(nn.Linear(c.word_dim, c.hidden), nn.LayerNorm(c.hidden), nn.GELU())

    def forward(self, batch) -> tuple[Tensor, Tensor | None]:
        u = batch["utterance"]
        x = self.drop(u.x)                                                          # [N, input_dim]
        bag = None
        if self.words is not None:
            if "word" not in batch.node_types:
                raise KgemoError("this model reads words: build its graphs with the co_interactive builder's "
                                 "words: true (or set the model's word_dim: 0)")
            to_utt = batch["word", "in", "utterance"].edge_index[1]
            bag = self.words(batch["word"].hash, to_utt, u.num_nodes)             # [N, word_dim]
        if self.shared_words:
            return nn.functional.gelu(self.norm(self.proj(torch.cat([x, bag], -1)))), None
        h0 = nn.functional.gelu(self.norm(self.proj(x)))                          # [N, hidden]
        return h0, (self.word_proj(bag) if bag is not None else None)             # [N, hidden]


@dataclasses.dataclass
class CoGATConfig(JointConfig):
    """Co-GAT's options; of the shared ones, ``context_layers`` is the number of stacked co-interactive layers
    (Co-GAT's ``gat_layer``) and ``max_distance`` is unused (the graph's ``window`` bounds the context)."""

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
