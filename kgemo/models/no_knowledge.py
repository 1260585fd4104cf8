"""``no_knowledge``: the shared encoder and context model with no knowledge — every method's ablation."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from torch import Tensor

from ..data.labels import LabelSpace
from ..nn import ContextTransformer
from .base import ModelConfig, UtteranceStateModel, register_model, task_heads, utterance_input

__all__ = ["NoKnowledge", "NoKnowledgeConfig"]


@dataclasses.dataclass
class NoKnowledgeConfig(ModelConfig):
    """Only the shared options of :class:`~kgemo.models.base.ModelConfig`."""

    name: str = "no_knowledge"


@register_model
class NoKnowledge(UtteranceStateModel):
    r"""Utterance features → projection → :class:`~kgemo.nn.ContextTransformer` → one linear head per task.

    .. math::
        \mathbf{h}^{(0)}_i = \mathrm{Dropout}(\mathrm{GELU}(\mathbf{W}_{in}\mathbf{x}_i)), \quad
        \mathbf{h}_i = \mathrm{ContextTransformer}(\mathbf{h}^{(0)})_i, \quad
        \hat{\mathbf{y}}^{task}_i = \mathbf{W}_{task}\mathbf{h}_i

    The KET and CKE-Net models use exactly this encoder and context model and add a knowledge branch, so the
    difference between them and this model is the knowledge.
    """

    name = "no_knowledge"
    graph_builder = "conversation"
    knowledge = ()
    config_class = NoKnowledgeConfig

    def __init__(self, config: NoKnowledgeConfig, label_spaces: Mapping[str, LabelSpace]):
        super().__init__(config, label_spaces)
        c = config
        self.utt_in = utterance_input(c)
        self.context = ContextTransformer(c.hidden, c.context_layers, c.heads, c.max_distance, c.dropout)
        self.heads = task_heads(c.hidden, label_spaces)

    def _encode(self, batch) -> tuple[Tensor, dict[str, Any]]:
        u, ctx = batch["utterance"], batch["utterance", "context", "utterance"]
        h = self.utt_in(u.x)                                                  # [N, hidden]
        h = self.context(h, ctx.edge_index, ctx.rel_pos, ctx.same_speaker)    # [N, hidden]
        return h, {}                                                          # no evidence
