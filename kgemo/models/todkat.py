"""``todkat``: TODKAT (Zhu et al., ACL 2021) — topic-driven, knowledge-aware ERC — on kgemo's event graph."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from ..atomic_relations import TODKAT_RELATIONS
from ..data.labels import LabelSpace
from ..errors import KgemoError
from ..nn import ContextTransformer, KnowledgeSelector, TopicLayer
from .base import ModelConfig, UtteranceStateModel, register_model, task_heads, utterance_input
from .cosmic import SOURCES, relation_candidates

__all__ = ["TODKAT", "TodkatConfig", "winners"]


@dataclasses.dataclass
class TodkatConfig(ModelConfig):
    INPUT_WIDTHS = ModelConfig.INPUT_WIDTHS + ("event_dim",)

    name: str = "todkat"
    event_dim: int | None = None   # width of the tail embeddings (ATOMIC table / generated): from the pipeline
    relations: list[str] = dataclasses.field(default_factory=lambda: list(TODKAT_RELATIONS))  # TODKAT's three
    topics: int = 16               # K topic vectors of the topic layer
    attention_dim: int = 64        # the selector's scorer
    use_knowledge: bool = True     # False: no ATOMIC / COMET knowledge (the topic layer stays)
    use_topic: bool = True         # False: no topic layer (selection queries and fusion without a topic)
    knowledge_dropout: float = 0.0  # dropout on each selected-knowledge vector k^r before fusion (as KET's; the
                                    # retrieved tails are loose matches, and without it the model overfits them)
    fusion: str = "early"          # "early": fuse, then the context model; "late": the context model, then fuse
                                   # (TODKAT's decoder attends to the knowledge after its dialogue encoder)

    def __post_init__(self):
        super().__post_init__()
        if self.fusion not in ("early", "late"):
            raise KgemoError(f"todkat: fusion must be 'early' or 'late', got {self.fusion!r}")


def winners(alphas: list[Tensor], dsts: list[Tensor], n: int) -> tuple[Tensor, Tensor]:
    """The selector's choice per utterance: ``(source [N], edge [N])`` — the source index (0 = retrieved ATOMIC
    tails, 1 = COMET generations) and the edge (within that source's edges of the relation) with the largest
    weight; -1 where the utterance had no candidate."""
    alpha = torch.cat(alphas)
    dst = torch.cat(dsts)
    none = torch.full((n,), -1, dtype=torch.long, device=alpha.device)
    if alpha.numel() == 0:
        return none, none.clone()
    source = torch.cat([torch.full_like(a, s, dtype=torch.long) for s, a in enumerate(alphas)])
    local = torch.cat([torch.arange(a.numel(), device=a.device) for a in alphas])
    best = torch.full((n,), -1.0, dtype=alpha.dtype, device=alpha.device).scatter_reduce(
        0, dst, alpha, reduce="amax", include_self=True)
    top = torch.nonzero(alpha == best[dst]).squeeze(-1)                       # edges that reach the maximum
    first = torch.full((n,), alpha.numel(), dtype=torch.long, device=alpha.device).scatter_reduce(
        0, dst[top], top, reduce="amin", include_self=True)                   # the first such edge per utterance
    has = first < alpha.numel()
    pick = first.clamp(max=alpha.numel() - 1)
    return torch.where(has, source[pick], none), torch.where(has, local[pick], none)


@register_model
class TODKAT(UtteranceStateModel):
    r"""TODKAT in kgemo: a topic layer, a per-relation knowledge selector, attention fusion and a context encoder.

    Read top to bottom, for utterance :math:`i` of conversation :math:`c`:

    1. :math:`\mathbf{u}_i = \mathrm{GELU}(\mathbf{W}_{in}\mathbf{x}_i)` (the shared utterance input).
    2. **Topic** (:class:`~kgemo.nn.TopicLayer`): a mixture :math:`\boldsymbol{\theta}_i` over :math:`K` learned
       topic vectors inferred from :math:`[\mathbf{x}_i; \bar{\mathbf{x}}_c]` — the utterance and its
       conversation's mean feature (the event graph's ``topic`` node) — giving :math:`\mathbf{t}_i`. When the graph is
       ``past_only``, :math:`\bar{\mathbf{x}}` is the mean of turns :math:`\le i` (the builder gives each utterance
       its own topic node), so no later turn reaches utterance :math:`i`. The paper puts
       a VAE topic layer inside a fine-tuned RoBERTa with its own reconstruction objective; kgemo's encoder is
       frozen (or fine-tuned separately) and the trainer has one loss, so the topic layer is a simplex bottleneck
       trained by the emotion loss (docs/commonsense.md).
    3. **Knowledge selection** (:class:`~kgemo.nn.KnowledgeSelector`, one per relation: xIntent, xReact, oReact):
       a pointer-network-style softmax over *all* the utterance's candidate tails of the relation — the retrieved
       ATOMIC tails (FAISS top-k heads, ``(event, r, utterance)`` edges) and, with a COMET provider, the generated
       ones (``(generated, r, utterance)``) — queried by :math:`[\mathbf{u}_i; \mathbf{t}_i]`:
       :math:`\mathbf{k}^r_i = \sum_j \alpha_j \mathbf{W}_v \mathbf{x}_j`, :math:`\sum_j \alpha_j = 1`. The
       argmax is the selected tail and its source (:func:`winners`). ``knowledge_dropout`` acts on
       :math:`\mathbf{k}^r_i` in training.
    4. **Fusion**: multi-head attention with query :math:`\mathbf{u}_i` over
       :math:`[\mathbf{u}_i, \mathbf{k}^{1}_i, \dots, \mathbf{k}^{R}_i, \mathbf{t}_i]` gives :math:`\mathbf{f}_i`;
       :math:`\mathbf{h}^{(0)}_i = \mathbf{u}_i + \mathbf{W}_f \mathbf{f}_i` with :math:`\mathbf{W}_f`
       zero-initialised (training starts from the no-knowledge model).
    5. **Context**: the shared :class:`~kgemo.nn.ContextTransformer` over the conversation (TODKAT's transformer
       over the dialogue; bidirectional, windowed — as the ``no_knowledge`` ablation, so the two differ only in
       steps 2–4), and one linear head per task. With ``fusion: late`` steps 4 and 5 swap: the context model reads
       :math:`\mathbf{u}`, and its output :math:`\mathbf{c}_i` queries the fusion,
       :math:`\mathbf{h}_i = \mathbf{c}_i + \mathbf{W}_f \mathbf{f}_i` — as TODKAT's decoder attends to the
       knowledge after its dialogue encoder.

    ``explain`` returns ``event_weight/<relation>`` and ``generated_weight/<relation>`` (:math:`\alpha` per
    tail → utterance edge; per utterance and relation they sum to 1 over both sources),
    ``selected_source/<relation>`` and ``selected_edge/<relation>`` (the winner, -1 without candidates),
    ``fusion_weight`` :math:`[N, R + 2]` (utterance, each relation, topic) and ``topic_mixture``
    :math:`[N, K]`.
    """

    name = "todkat"
    graph_builder = "event"
    knowledge = ("atomic",)
    config_class = TodkatConfig

    def __init__(self, config: TodkatConfig, label_spaces: Mapping[str, LabelSpace]):
        super().__init__(config, label_spaces)
        c = config
        h = c.hidden
        self.relations = tuple(c.relations)
        self.utt_in = utterance_input(c)
        self.topic = TopicLayer(2 * c.input_dim, c.topics, h, c.dropout) if c.use_topic else None
        query = 2 * h if c.use_topic else h
        self.select = nn.ModuleDict({
            r: KnowledgeSelector(query, c.event_dim, h, c.attention_dim, sources=len(SOURCES))
            for r in self.relations}) if c.use_knowledge else None
        self.knowledge_dropout = nn.Dropout(c.knowledge_dropout)
        self.fusion = nn.MultiheadAttention(h, c.heads, dropout=c.dropout, batch_first=True)
        self.fusion_out = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(h, h))
        nn.init.zeros_(self.fusion_out[1].weight)
        nn.init.zeros_(self.fusion_out[1].bias)
        self.context = ContextTransformer(h, c.context_layers, c.heads, c.max_distance, c.dropout)
        self.heads = task_heads(h, label_spaces)

    def _encode(self, batch) -> tuple[Tensor, dict[str, Any]]:
        utt, ctx = batch["utterance"], batch["utterance", "context", "utterance"]
        n = utt.x.size(0)
        u = self.utt_in(utt.x)                                                   # [N, H]
        evidence: dict[str, Any] = {}
        slots = [u]

        # 2. Topic of the utterance within its conversation. The graph decides what the topic sees: one node per
        # conversation (its mean), or with past_only one node per utterance (the mean of the turns so far).
        if self.topic is not None:
            about = batch["topic", "about", "utterance"].edge_index
            conv = utt.x.new_zeros(utt.x.shape)
            conv[about[1]] = batch["topic"].x[about[0]]                         # [N, D] the utterance's topic input
            t, theta = self.topic(torch.cat([utt.x, conv], -1))                 # [N, H], [N, K]
            evidence["topic_mixture"] = theta.detach()
            query = torch.cat([u, t], -1)
        else:
            t, query = None, u

        # 3. Per relation, one distribution over the candidate tails of every source.
        if self.select is not None:
            for rel in self.relations:
                cands = relation_candidates(batch, rel)
                k, alphas, _ = self.select[rel](query, cands)                  # [N, H]
                slots.append(self.knowledge_dropout(k))
                for source, alpha in zip(SOURCES, alphas):
                    evidence[f"{source}_weight/{rel}"] = alpha.detach()
                dsts = [c[1][1] if c is not None else u.new_zeros(0, dtype=torch.long) for c in cands]
                src, edge = winners([a.detach() for a in alphas], dsts, n)
                evidence[f"selected_source/{rel}"], evidence[f"selected_edge/{rel}"] = src, edge
        if t is not None:
            slots.append(t)

        # 4-5. Attention fusion of the utterance, its selected knowledge and topic (a zero-initialised residual), and
        # the conversation context — fusion first ("early"), or the context first and then fusion ("late").
        def fuse(q: Tensor) -> Tensor:
            tokens = torch.stack([q, *slots[1:]], 1)                             # [N, S, H]
            f, w = self.fusion(q.unsqueeze(1), tokens, tokens, need_weights=True)  # [N, 1, H], [N, 1, S]
            evidence["fusion_weight"] = w.squeeze(1).detach()
            return q + self.fusion_out(f.squeeze(1))                             # [N, H]

        if self.config.fusion == "early":
            return self.context(fuse(u), ctx.edge_index, ctx.rel_pos, ctx.same_speaker), evidence
        return fuse(self.context(u, ctx.edge_index, ctx.rel_pos, ctx.same_speaker)), evidence
