"""``affect_prior``: the no-knowledge model plus the NRC-VAD affect of each utterance's words as direct features.

Knowledge as a prior rather than as extra input the model must learn to weigh: KET and CKE-Net attend over
ConceptNet neighbours, which a model trained on a few dozen conversations cannot learn to use; here the lexicon's
valence, arousal and dominance of the words enter as ten fixed numbers per utterance (docs/learning-curves.md).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ..data.labels import LabelSpace
from ..nn import ContextTransformer
from .base import ModelConfig, UtteranceStateModel, register_model, task_heads, utterance_input

__all__ = ["AffectPrior", "AffectPriorConfig", "utterance_affect"]

AFFECT_DIM = 10


@dataclasses.dataclass
class AffectPriorConfig(ModelConfig):
    name: str = "affect_prior"
    affect_scale: float = 4.0       # the statistics (in [-0.5, 0.5] around the neutral 0.5) times this: about unit
                                    # scale, like the encoder's features


def utterance_affect(vad: Tensor, known: Tensor, token_utt: Tensor, num_utterances: int) -> Tensor:
    r"""Per utterance, from its words the lexicon knows: mean, min and max of valence, arousal and dominance,
    centred on the lexicon's neutral 0.5, and the share of its words the lexicon knows.

    .. math::
        \mathbf{a}_i = \big[\operatorname{mean}_{t \in K_i} (\mathbf{v}_t - 0.5),\ \min_{t \in K_i}(\mathbf{v}_t - 0.5),
        \ \max_{t \in K_i}(\mathbf{v}_t - 0.5),\ |K_i| / |T_i|\big]

    with :math:`T_i` the utterance's word tokens and :math:`K_i \subseteq T_i` those with a lexicon VAD; an
    utterance without any gets zeros.

    Shapes:
        vad [T, 3], known [T] bool, token_utt [T] → [N, 10].
    """
    centred = vad - 0.5
    k = known.to(vad.dtype)
    n_known = torch.zeros(num_utterances, dtype=vad.dtype, device=vad.device).index_add_(0, token_utt, k)
    n_all = torch.zeros_like(n_known).index_add_(0, token_utt, torch.ones_like(k))
    mean = torch.zeros(num_utterances, 3, dtype=vad.dtype, device=vad.device).index_add_(
        0, token_utt, centred * k[:, None]) / n_known.clamp(min=1)[:, None]
    idx, fill = token_utt[:, None].expand(-1, 3), torch.finfo(vad.dtype).max
    low = torch.full((num_utterances, 3), fill, dtype=vad.dtype, device=vad.device).scatter_reduce(
        0, idx, torch.where(known[:, None], centred, fill), "amin")
    high = torch.full((num_utterances, 3), -fill, dtype=vad.dtype, device=vad.device).scatter_reduce(
        0, idx, torch.where(known[:, None], centred, -fill), "amax")
    has = (n_known > 0)[:, None]
    return torch.cat([mean, torch.where(has, low, 0.0), torch.where(has, high, 0.0),
                      (n_known / n_all.clamp(min=1))[:, None]], dim=1)


@register_model
class AffectPrior(UtteranceStateModel):
    r"""Utterance features and word affect → projection → :class:`~kgemo.nn.ContextTransformer` → linear heads.

    .. math::
        \mathbf{h}^{(0)}_i = \mathrm{Dropout}(\mathrm{GELU}(\mathbf{W}_{in}\mathbf{x}_i))
        + \mathbf{W}_a (s\,\mathbf{a}_i), \quad \mathbf{h}_i = \mathrm{ContextTransformer}(\mathbf{h}^{(0)})_i, \quad
        \hat{\mathbf{y}}^{task}_i = \mathbf{W}_{task}\mathbf{h}_i

    with :math:`\mathbf{a}_i` from :func:`utterance_affect` and :math:`s` ``affect_scale``. It reads the
    ``concept`` graph's tokens only (their VAD), so it shares KET's cached graphs; with :math:`\mathbf{W}_a = 0` it
    is :class:`~kgemo.models.NoKnowledge`, its ablation.
    """

    name = "affect_prior"
    graph_builder = "concept"
    knowledge = ("conceptnet",)
    config_class = AffectPriorConfig

    def __init__(self, config: AffectPriorConfig, label_spaces: Mapping[str, LabelSpace]):
        super().__init__(config, label_spaces)
        c = config
        self.utt_in = utterance_input(c)
        # Zero at the start, so training starts from the no-knowledge model: a random W_a (or a bias) would add one
        # offset to every utterance that outweighs the projected sentence features (~0.05 per dimension) and that a
        # few dozen conversations cannot train away.
        self.affect_in = nn.Linear(AFFECT_DIM, c.hidden, bias=False)
        nn.init.zeros_(self.affect_in.weight)
        self.context = ContextTransformer(c.hidden, c.context_layers, c.heads, c.max_distance, c.dropout)
        self.heads = task_heads(c.hidden, label_spaces)

    def _encode(self, batch) -> tuple[Tensor, dict[str, Any]]:
        u, ctx = batch["utterance"], batch["utterance", "context", "utterance"]
        tok = batch["token"]
        tokens, utts = batch["token", "in", "utterance"].edge_index
        token_utt = torch.empty_like(utts).index_copy_(0, tokens, utts)                  # [T] each token's utterance
        affect = utterance_affect(tok.vad, tok.vad_known, token_utt, u.num_nodes)        # [N, 10]
        h = self.utt_in(u.x) + self.affect_in(self.config.affect_scale * affect)          # [N, hidden]
        h = self.context(h, ctx.edge_index, ctx.rel_pos, ctx.same_speaker)                # [N, hidden]
        return h, {}                                                                      # no evidence
