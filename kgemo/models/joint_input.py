"""The utterance input shared by the joint act + sentiment models (Co-GAT, DCR-Net): their options, the
sentence-features + hashed-words input layer, and the check that a model was given the act and one affect task."""
from __future__ import annotations

import dataclasses
from typing import Mapping

import torch
from torch import Tensor, nn

from ..data.labels import LabelSpace
from ..errors import KgemoError
from ..nn import HashedWordBag
from .base import ModelConfig

__all__ = ["JointConfig", "UtteranceInput", "joint_tasks", "AFFECT_TASKS"]

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
        super().__post_init__()
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
