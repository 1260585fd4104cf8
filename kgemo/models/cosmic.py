"""``cosmic``: COSMIC (Ghosal et al., Findings of EMNLP 2020) on kgemo's event graph."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter, to_dense_batch

from ..atomic_relations import COSMIC_RELATIONS
from ..data.labels import LabelSpace
from ..errors import KgemoError
from ..nn import CommonsenseGRU, KnowledgeSelector
from ..nn.commonsense_gru import ATTENTIONS
from .base import ModelConfig, UtteranceStateModel, register_model, task_heads, utterance_input

__all__ = ["COSMIC", "CosmicConfig", "relation_candidates", "reverse_turns"]

#: Knowledge sources of the event graph, in the order the selectors see them.
SOURCES = ("event", "generated")


@dataclasses.dataclass
class CosmicConfig(ModelConfig):
    INPUT_WIDTHS = ModelConfig.INPUT_WIDTHS + ("event_dim", "comet_dim")

    name: str = "cosmic"
    event_dim: int | None = None   # width of the tail embeddings (ATOMIC table / generated): from the pipeline
    comet_dim: int | None = None   # width of COMET's relation states on the graph; 0 = the graph records none
    state_size: int = 100          # context, internal, external and intent states (COSMIC's repo: 150)
    emotion_size: int = 150        # emotion state, per direction (COSMIC's repo: 450)
    knowledge_size: int = 100      # width of each relation feature fed to the GRUs (COSMIC: COMET's 768)
    attention_dim: int = 64        # the tail attention's scorer
    attention: str = "general"     # the context attention over earlier context states: "general" (g_j' W u_t,
                                   # query-dependent), "simple" (w' g_j, one learned score per state: the official
                                   # --attention default, and its MELD / DailyDialog runs) or "general2"
                                   # (tanh(g_j' (W u_t + b)): the official IEMOCAP / EmoryNLP scripts' default)
    listener_state: bool = True    # listeners' states take oEffect / oReact (COSMIC's --active-listener)
    bidirectional: bool = True     # a second recurrence over the reversed turns, concatenated (the official model)
    residual: bool = True          # add the projected utterance to the classifier input (the repo's --residual)
    use_knowledge: bool = True     # False: every relation feature is zero — the same model without commonsense
    knowledge_dropout: float | None = None  # dropout on each relation feature (None: the model's dropout)

    def __post_init__(self):
        super().__post_init__()
        if self.attention not in ATTENTIONS:
            raise KgemoError(f"cosmic: attention must be one of {list(ATTENTIONS)}, got {self.attention!r}")


def relation_candidates(batch, relation: str, features: Mapping[str, Tensor] | None = None
                        ) -> list[tuple[Tensor, Tensor, Tensor] | None]:
    """The event graph's candidate tails of ``relation`` per source (``event`` = retrieved ATOMIC tails,
    ``generated`` = COMET's), as :class:`~kgemo.nn.KnowledgeSelector` takes them; ``None`` for an absent source.
    ``features`` replaces the sources' node features (e.g. projected once for all relations)."""
    out: list[tuple[Tensor, Tensor, Tensor] | None] = []
    for source in SOURCES:
        key = (source, relation, "utterance")
        if key in batch.edge_types and "x" in batch[source]:
            e = batch[key]
            x = features[source] if features is not None else batch[source].x
            out.append((x, e.edge_index, e.score))
        else:
            out.append(None)
    return out


def reverse_turns(x: Tensor, mask: Tensor) -> Tensor:
    """Reverse each conversation's real turns in a padded ``[B, T, ...]`` tensor (padding stays at the end); its
    own inverse."""
    lengths = mask.sum(1, keepdim=True)                                       # [B, 1]
    t = torch.arange(mask.size(1), device=mask.device).unsqueeze(0)            # [1, T]
    idx = torch.where(t < lengths, lengths - 1 - t, t)                        # [B, T]
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.dim() - 2))).expand_as(x))


@register_model
class COSMIC(UtteranceStateModel):
    r"""COSMIC in kgemo: ATOMIC relation features per utterance from the event graph, COSMIC's party-state GRUs.

    Read top to bottom, for utterance :math:`i`:

    1. :math:`\mathbf{u}_i = \mathrm{GELU}(\mathbf{W}_{in}\mathbf{x}_i)` (the shared utterance input).
    2. For each of COSMIC's relations :math:`r \in` (xIntent, xEffect, xReact, oEffect, oReact), message passing
       along the ``(event, r, utterance)`` edges (and ``(generated, r, utterance)`` with COMET tails):
       :class:`~kgemo.nn.KnowledgeSelector` attends over the utterance's tails with :math:`\mathbf{u}_i` as query
       and the retrieval similarity as prior, :math:`\mathbf{k}^r_i = \sum_j \alpha_j \mathbf{W}_v \mathbf{P}
       \mathbf{x}_j` (:math:`\mathbf{P}`: one projection of the tail embeddings shared by the relations).
       COSMIC feeds COMET's hidden state of (utterance, r) instead; with a COMET checkpoint and ``states: true`` in
       the graph settings, :math:`\mathbf{W}_s \mathbf{s}^r_i` is added (the paper's feature), and without tails it
       is the whole feature. The offline default, ATOMIC retrieval, is what ``RetrievedComet`` returns for the
       utterance (its state is a similarity-weighted mean of the same tails; here the weights are learned).
    3. :class:`~kgemo.nn.CommonsenseGRU`: per turn, the speaker's external / internal / intent states take
       xReact / xEffect / xIntent, every listener's take oReact / oEffect (listeners: every other party of the
       conversation — the event graph's ``(speaker, listens, utterance)`` edges), and the emotion state
       :math:`\mathbf{e}_i` reads the speaker's states. The context state attends over the earlier ones with the
       score ``attention`` names (``general``: queried by the utterance; ``simple``: the official default).
    4. **Context direction, as in the paper's code**: bidirectional — a second recurrence runs over the reversed
       turns and :math:`[\mathbf{e}^{\rightarrow}_i; \mathbf{e}^{\leftarrow}_i]` is classified (``bidirectional:
       false`` gives the causal, past-only model). The window of the graph's context edges is not used: the
       recurrence sees the whole conversation.
    5. :math:`\mathbf{h}_i = \mathrm{ReLU}(\mathbf{W}_o[\mathbf{e}^{\rightarrow}_i; \mathbf{e}^{\leftarrow}_i])
       + \mathbf{u}_i` (``residual``), one linear head per task.

    ``explain`` returns, per relation, :math:`\alpha` of every (tail → utterance) edge: ``event_weight/<relation>``
    (retrieved) and ``generated_weight/<relation>``; over each utterance's tails of one relation they sum to 1.
    """

    name = "cosmic"
    graph_builder = "event"
    knowledge = ("atomic",)
    config_class = CosmicConfig
    relations = COSMIC_RELATIONS

    def __init__(self, config: CosmicConfig, label_spaces: Mapping[str, LabelSpace]):
        super().__init__(config, label_spaces)
        c = config
        self.utt_in = utterance_input(c)
        # Tails are projected once for all five relations (a tail node serves several); the selectors work in the
        # projected space — five 384-d projections per node cost more than the whole turn loop.
        self.tails_in = nn.Linear(c.event_dim, c.knowledge_size)
        self.select = nn.ModuleDict({
            r: KnowledgeSelector(c.hidden, c.knowledge_size, c.knowledge_size, c.attention_dim, sources=len(SOURCES))
            for r in self.relations})
        self.state_in = (nn.ModuleDict({r: nn.Linear(c.comet_dim, c.knowledge_size) for r in self.relations})
                         if c.comet_dim else None)
        self.knowledge_dropout = nn.Dropout(c.dropout if c.knowledge_dropout is None else c.knowledge_dropout)
        directions = 2 if c.bidirectional else 1
        self.rnn = nn.ModuleList(CommonsenseGRU(c.hidden, c.knowledge_size, c.state_size, c.emotion_size,
                                                c.listener_state, c.dropout, c.attention)
                                 for _ in range(directions))
        self.out = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(directions * c.emotion_size, c.hidden), nn.ReLU(),
                                 nn.Dropout(c.dropout))
        self.heads = task_heads(c.hidden, label_spaces)

    def _knowledge(self, batch, u: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Relation features ``{relation: [N, K]}`` and the tail weights behind them."""
        n = u.size(0)
        feats, evidence = {}, {}
        states = batch["utterance"].get("relation_state") if self.state_in is not None else None
        if states is not None and states.size(1) != len(self.relations):
            raise KgemoError(f"COSMIC: the graph's relation_state has {states.size(1)} relations, COSMIC uses "
                             f"{list(self.relations)} (graph relations must be these, in this order)")
        tails = {source: self.tails_in(batch[source].x) for source in SOURCES
                 if self.config.use_knowledge and source in batch.node_types and "x" in batch[source]}  # [M_s, K]
        for k, rel in enumerate(self.relations):
            if not self.config.use_knowledge:
                feats[rel] = u.new_zeros(n, self.config.knowledge_size)
                continue
            m, alphas, _ = self.select[rel](u, relation_candidates(batch, rel, tails))      # [N, K]
            if states is not None:
                m = m + self.state_in[rel](states[:, k])
            feats[rel] = self.knowledge_dropout(m)
            for source, alpha in zip(SOURCES, alphas):
                evidence[f"{source}_weight/{rel}"] = alpha.detach()
        return feats, evidence

    def _encode(self, batch) -> tuple[Tensor, dict[str, Any]]:
        utt = batch["utterance"]
        n = utt.x.size(0)
        index = utt.batch if "batch" in utt else utt.x.new_zeros(n, dtype=torch.long)
        u = self.utt_in(utt.x)                                                   # [N, H]
        feats, evidence = self._knowledge(batch, u)

        # Conversations as padded turn sequences: the recurrence walks turn positions, batched.
        u_d, mask = to_dense_batch(u, index)                                     # [B, T, H], [B, T]
        k_d = {r: to_dense_batch(v, index)[0] for r, v in feats.items()}        # {r: [B, T, K]}
        spk, _ = to_dense_batch(utt.speaker, index)                             # [B, T]
        parties = scatter(utt.speaker, index, 0, reduce="max") + 1               # [B]
        e = self.rnn[0](u_d, k_d, spk, mask, parties)                            # [B, T, E]
        if len(self.rnn) == 2:
            rev = {r: reverse_turns(v, mask) for r, v in k_d.items()}
            e_back = self.rnn[1](reverse_turns(u_d, mask), rev, reverse_turns(spk, mask), mask, parties)
            e = torch.cat([e, reverse_turns(e_back, mask)], -1)                # [B, T, 2E]
        h = self.out(e[mask])                                                    # [N, H]
        if self.config.residual:
            h = h + u
        return h, evidence
