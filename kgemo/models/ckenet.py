"""``ckenet``: CKE-Net / KI-Net (Xie et al., 2021) — GAT over ConceptNet concepts, fused with the dialogue."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter, softmax

from ..data.labels import LabelSpace
from ..nn import ContextTransformer, KnowledgeGAT
from .base import ModelConfig, UtteranceStateModel, register_model, task_heads, utterance_input

__all__ = ["CKENet", "CKENetConfig"]


@dataclasses.dataclass
class CKENetConfig(ModelConfig):
    INPUT_WIDTHS = ModelConfig.INPUT_WIDTHS + ("concept_dim", "num_relations")

    name: str = "ckenet"
    concept_dim: int | None = None     # width of concept embeddings, from the pipeline
    num_relations: int | None = None   # ConceptNet relation vocabulary size, from the pipeline's KB
    gat_heads: int = 4         # heads of the concept GAT


@register_model
class CKENet(UtteranceStateModel):
    r"""CKE-Net in kgemo: knowledge enters after the dialogue is encoded.

    1. Dialogue encoding :math:`\mathbf{d}_i = \mathrm{ContextTransformer}(\mathbf{W}_{in}\mathbf{x})_i` (as in
       :class:`~kgemo.models.NoKnowledge`).
    2. Token knowledge :math:`\mathbf{k}_t` by :class:`~kgemo.nn.KnowledgeGAT` over the token's concepts and
       itself, with edge features (ConceptNet confidence, affect intensity, relation).
    3. Fusion: the utterance state queries its tokens,
       :math:`\beta_t = \operatorname{softmax}_{t \in i}(\mathbf{d}_i^\top \mathbf{W}_q \mathbf{k}_t / \sqrt{H})`,
       :math:`\mathbf{z}_i = \sum_t \beta_t \mathbf{k}_t`, and
       :math:`\hat{\mathbf{y}}_i = \mathbf{W}_{task}\,\mathrm{GELU}(\mathbf{W}_o[\mathbf{d}_i \Vert \mathbf{z}_i])`.

    Text only (the paper also fuses audio). Concept vectors are frozen sentence-encoder embeddings.
    """

    name = "ckenet"
    graph_builder = "concept"
    knowledge = ("conceptnet",)
    config_class = CKENetConfig

    def __init__(self, config: CKENetConfig, label_spaces: Mapping[str, LabelSpace]):
        super().__init__(config, label_spaces)
        c = config
        self.utt_in = utterance_input(c)
        self.context = ContextTransformer(c.hidden, c.context_layers, c.heads, c.max_distance, c.dropout)
        self.gat = KnowledgeGAT(c.concept_dim, c.hidden, c.num_relations, c.gat_heads, c.dropout)
        self.query = nn.Linear(c.hidden, c.hidden, bias=False)
        self.out = nn.Sequential(nn.Linear(2 * c.hidden, c.hidden), nn.GELU(), nn.Dropout(c.dropout))
        self.heads = task_heads(c.hidden, label_spaces)

    def _encode(self, batch) -> tuple[Tensor, dict[str, Any]]:
        """States ``h`` [N, H] and the evidence: GAT attention per concept edge (head mean; with the self edge, a
        token's concept weights sum to ≤ 1) and ``token_weight`` β per token (sums to 1 over each utterance's
        tokens)."""
        u, ctx = batch["utterance"], batch["utterance", "context", "utterance"]
        tok, con = batch["token"], batch["concept"]
        tok_utt = batch["token", "in", "utterance"].edge_index[1]
        link = batch["concept", "linked", "token"]
        n = u.x.size(0)

        d = self.context(self.utt_in(u.x), ctx.edge_index, ctx.rel_pos, ctx.same_speaker)   # [N, H]
        k, alpha = self.gat(con.x, tok.x, link.edge_index, link.weight, link.affect, link.relation,
                            return_attention_weights=True)                                   # [T, H], [E]
        score = (self.query(d)[tok_utt] * k).sum(-1) / self.config.hidden ** 0.5            # [T]
        beta = softmax(score, tok_utt, num_nodes=n)
        z = scatter(beta.unsqueeze(-1) * k, tok_utt, 0, dim_size=n, reduce="sum")           # [N, H]
        return self.out(torch.cat([d, z], -1)), {"concept_edge_weight": alpha, "token_weight": beta}
