"""``ket``: Knowledge-Enriched Transformer (Zhong et al., EMNLP 2019) on kgemo's concept graph."""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

from ..data.labels import LabelSpace
from ..errors import KgemoError
from ..nn import AttentionPooling, ContextTransformer, KETConceptAttention
from .base import ModelConfig, UtteranceStateModel, register_model, task_heads, utterance_input

__all__ = ["KET", "KETConfig"]


@dataclasses.dataclass
class KETConfig(ModelConfig):
    INPUT_WIDTHS = ModelConfig.INPUT_WIDTHS + ("concept_dim",)

    name: str = "ket"
    concept_dim: int | None = None  # width of concept embeddings, from the pipeline (= input_dim: relatedness is a cosine)
    lambda_init: float = 0.5    # initial mix between relatedness and affect (paper's code: 0.5)
    learn_lambda: bool = True   # learn the mix
    concentration: float = 1.0  # softmax sharpness over a token's concepts
    relatedness: str = "code"   # "code": confidence × |cos| (official code); "paper": |cos| min-max per token
    word_vectors: bool = True   # token vector holds the word's own embedding g_t (else only knowledge and VAD)
    knowledge_dropout: float | None = None  # dropout on the pooled knowledge vector (None = the model's dropout)
    concept_affect: bool = False  # token vector also holds its concepts' attention-weighted VAD (an affect channel)


@register_model
class KET(UtteranceStateModel):
    r"""KET in kgemo: concept attention per word, word pooling per utterance, then the context transformer.

    Read top to bottom, for utterance :math:`i` with concept-bearing tokens :math:`t` and their ConceptNet
    neighbours :math:`c`:

    1. Context representation (KET's :math:`CR`): mean of the sentence features of utterance :math:`i` and its
       past context window, :math:`\mathbf{r}_i = \mathrm{mean}_{j \le i,\ i-j \le W}\ \mathbf{x}_j`.
    2. Knowledge per token with :class:`~kgemo.nn.KETConceptAttention`: the prior
       :math:`w_c = \lambda\, s_c |\cos(\mathbf{r}_i, \mathbf{g}_c)| + (1-\lambda)\,\mathrm{aff}_c`, softmax over
       the token's concepts, :math:`\mathbf{k}_t = \sum_c \alpha_c \mathbf{g}_c`.
    3. Token vector :math:`\mathbf{e}_t = [\mathbf{g}_t \Vert \mathbf{k}_t \Vert \mathbf{a}_t]` (the paper
       concatenates word and knowledge vectors; :math:`\mathbf{a}_t` = the word's own NRC-VAD minus 0.5, zero
       when unknown, so the word's affect is a feature and not only the attention prior). With
       ``word_vectors=False`` the word's own embedding is left out: the utterance's sentence embedding already
       carries the words, and :math:`\mathbf{e}_t = [\mathbf{k}_t \Vert \mathbf{a}_t]` is knowledge only.
       With ``concept_affect`` it also holds :math:`\mathbf{s}_t = \sum_c \alpha_c (\mathrm{VAD}_c - 0.5)`, the
       affect of the concepts as attended (KET's "affective" attention made a feature the classifier reads).
    4. Utterance knowledge :math:`\mathbf{z}_i = \sum_t \beta_t \mathbf{e}_t` (attention pooling over the
       utterance's tokens; the paper's utterance-level self-attention).
    5. :math:`\mathbf{h}_i = \mathrm{ContextTransformer}(\mathbf{W}_{in}\mathbf{x}_i + \mathbf{W}_z
       \mathbf{z}_i)` with :math:`\mathbf{W}_z` initialised to zero, and one linear head per task.

    Differences from the paper, on purpose: word vectors are frozen sentence-encoder embeddings of the words'
    concepts (not trained GloVe), the utterance also keeps its sentence embedding :math:`\mathbf{x}_i`, and the
    context model is the shared :class:`~kgemo.nn.ContextTransformer` (windowed, bidirectional unless the graph
    is built with ``past_only``) rather than KET's encoder-decoder. Without knowledge this is exactly
    :class:`~kgemo.models.NoKnowledge`.
    """

    name = "ket"
    graph_builder = "concept"
    knowledge = ("conceptnet",)
    config_class = KETConfig

    def __init__(self, config: KETConfig, label_spaces: Mapping[str, LabelSpace]):
        super().__init__(config, label_spaces)
        c = config
        if c.concept_dim != c.input_dim:
            raise KgemoError(f"KET: concept_dim ({c.concept_dim}) must equal input_dim ({c.input_dim}); "
                             "use the same encoder for utterances and concepts")
        self.utt_in = utterance_input(c)
        # Word and concept vectors stay in the frozen encoder space up to the pooled utterance knowledge: the only
        # learned maps on the word side are the attention scorer and one output projection (a trained projection
        # per word overfit MELD's 10k utterances).
        self.concept_attention = KETConceptAttention(c.lambda_init, c.learn_lambda, c.concentration, c.relatedness)
        width = (2 if c.word_vectors else 1) * c.concept_dim + 3 + (3 if c.concept_affect else 0)  # e_t
        self.token_pool = AttentionPooling(width, score_hidden=64)
        # Knowledge enters as a residual through a zero-initialised projection: training starts from the
        # no-knowledge model and only moves away from it where the concepts help.
        drop = c.dropout if c.knowledge_dropout is None else c.knowledge_dropout
        self.knowledge_out = nn.Sequential(nn.Dropout(drop), nn.Linear(width, c.hidden))
        nn.init.zeros_(self.knowledge_out[1].weight)
        nn.init.zeros_(self.knowledge_out[1].bias)
        self.context = ContextTransformer(c.hidden, c.context_layers, c.heads, c.max_distance, c.dropout)
        self.heads = task_heads(c.hidden, label_spaces)

    def _encode(self, batch) -> tuple[Tensor, dict[str, Any]]:
        """States ``h`` [N, H] and the evidence: ``concept_edge_weight`` α per (concept → token) edge (sums to 1
        over each token's concepts) and ``token_weight`` β per token (sums to 1 over each utterance's tokens)."""
        u, ctx = batch["utterance"], batch["utterance", "context", "utterance"]
        link = batch["concept", "linked", "token"]
        tok_utt = batch["token", "in", "utterance"].edge_index[1]
        r = self._context_representation(batch)
        z, alpha, beta = self._knowledge(batch, r[tok_utt], tok_utt, u.x.size(0), link.edge_index, link.weight,
                                         link.affect)
        # 5. Fuse with the utterance embedding; context.
        h = self.utt_in(u.x) + self.knowledge_out(z)                                       # [N, H]
        h = self.context(h, ctx.edge_index, ctx.rel_pos, ctx.same_speaker)                 # [N, H]
        return h, {"concept_edge_weight": alpha, "token_weight": beta}

    @staticmethod
    def _context_representation(batch) -> Tensor:
        """1. r_i: mean of x_j over past-and-self context edges, [N, D]."""
        u, ctx = batch["utterance"], batch["utterance", "context", "utterance"]
        past = ctx.rel_pos >= 0
        return scatter(u.x[ctx.edge_index[0, past]], ctx.edge_index[1, past], 0, dim_size=u.x.size(0),
                       reduce="mean")

    def _knowledge(self, batch, token_context: Tensor, groups: Tensor, num_groups: int, edge_index: Tensor,
                   weight: Tensor, affect: Tensor, tokens: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Steps 2–4: the pooled knowledge ``z`` [num_groups, width] of token groups (an utterance's tokens),
        with α per edge and β per token. ``tokens`` maps the rows here to the graph's token nodes (occlusion
        scores copies of an utterance's tokens; None = every token node, in order)."""
        tok, con = batch["token"], batch["concept"]
        tok_x, tok_vad, tok_known = ((tok.x, tok.vad, tok.vad_known) if tokens is None
                                     else (tok.x[tokens], tok.vad[tokens], tok.vad_known[tokens]))
        # 2. Concept knowledge per token, in the encoder space.
        k, alpha = self.concept_attention(con.x, con.x, token_context, edge_index, weight, affect,
                                          return_attention_weights=True)                    # [T, D], [E]
        # 3-4. Token vectors [word; knowledge; centred VAD of the word], pooled per utterance.
        vad = (tok_vad - 0.5) * tok_known.unsqueeze(-1).float()                            # [T, 3], 0 if unknown
        parts = [tok_x, k, vad] if self.config.word_vectors else [k, vad]
        if self.config.concept_affect:
            # s_t = Σ_c α_c (VAD_c − 0.5): the concepts' affect, weighted as the model attends to them. A channel this
            # narrow is the knowledge the sentence embedding lacks, and its gradient teaches α which concepts' valence
            # fits the emotion (what the evidence shows).
            cvad = (con.vad - 0.5) * con.vad_known.unsqueeze(-1).float()                   # [C, 3]
            src, dst = edge_index
            parts.append(scatter(alpha.unsqueeze(-1) * cvad[src], dst, 0, dim_size=tok_x.size(0), reduce="sum"))
        e = torch.cat(parts, -1)                                                           # [T, width]
        z, beta = self.token_pool(e, groups, num_groups)                                   # [G, width], [T]
        return z, alpha, beta

    def occluded_logits(self, batch, drops: Tensor, rows: Tensor | None = None) -> dict[str, Tensor]:
        r"""Logits ``[M, N, classes]`` per task of ``M`` copies of one conversation's graph, copy ``m`` without the
        concept edges where ``drops[m]`` (``[M, E]`` over ``(concept, linked, token)`` edges) is True — equal to
        ``forward`` on the copies (occlusion, kgemo.annotate.occlusion), computed in two stages. With ``rows``
        (``[M]``), only utterance ``rows[m]`` of copy ``m`` is computed: ``[M, classes]``.

        Removing edges into an utterance's tokens changes only that utterance's knowledge vector
        :math:`\mathbf{z}_i` (steps 2–4 never mix utterances), so the knowledge is computed once for the whole
        graph and again only for the (copy, utterance) pairs a drop touches; the context layers then run on
        the ``M`` copies of the fused states."""
        u, ctx = batch["utterance"], batch["utterance", "context", "utterance"]
        link = batch["concept", "linked", "token"]
        tok_utt = batch["token", "in", "utterance"].edge_index[1]
        n, m_copies = u.x.size(0), drops.size(0)
        src, dst = link.edge_index
        r = self._context_representation(batch)
        z, _, _ = self._knowledge(batch, r[tok_utt], tok_utt, n, link.edge_index, link.weight, link.affect)
        h0 = self.utt_in(u.x) + self.knowledge_out(z)                                      # [N, H]

        # The (copy, utterance) pairs to recompute, and for each a copy of the utterance's tokens ("rows").
        edge_utt = tok_utt[dst]
        touched = torch.zeros(m_copies, n, dtype=torch.bool, device=h0.device)
        copy_idx, edge_idx = drops.nonzero(as_tuple=True)
        touched[copy_idx, edge_utt[edge_idx]] = True
        pair_copy, pair_utt = touched.nonzero(as_tuple=True)                               # [P]
        if pair_copy.numel():
            pair_of = torch.full((m_copies, n), -1, dtype=torch.long, device=h0.device)
            pair_of[pair_copy, pair_utt] = torch.arange(pair_copy.numel(), device=h0.device)
            # rows: every token of each pair's utterance
            tok_pairs = pair_of[:, tok_utt]                                                # [M, T]
            row_copy, row_tok = (tok_pairs >= 0).nonzero(as_tuple=True)
            row_pair = tok_pairs[row_copy, row_tok]
            row_of = torch.full((m_copies, tok_utt.numel()), -1, dtype=torch.long, device=h0.device)
            row_of[row_copy, row_tok] = torch.arange(row_tok.numel(), device=h0.device)
            # edges: each row's concept edges the copy keeps
            edge_rows = row_of[:, dst]                                                     # [M, E]
            keep = (edge_rows >= 0) & ~drops
            e_copy, e_idx = keep.nonzero(as_tuple=True)
            edges = torch.stack([src[e_idx], edge_rows[e_copy, e_idx]])
            z_pair, _, _ = self._knowledge(batch, r[tok_utt[row_tok]], row_pair, pair_copy.numel(), edges,
                                           link.weight[e_idx], link.affect[e_idx], tokens=row_tok)
            h_pair = self.utt_in(u.x[pair_utt]) + self.knowledge_out(z_pair)
        h = h0.unsqueeze(0).repeat(m_copies, 1, 1)                                         # [M, N, H]
        if pair_copy.numel():
            h[pair_copy, pair_utt] = h_pair
        copies = torch.arange(m_copies, device=h0.device) * n
        targets = None if rows is None else copies + rows.to(h0.device)
        h = self.context(h.reshape(m_copies * n, -1),
                         ctx.edge_index.repeat(1, m_copies) + copies.repeat_interleave(ctx.edge_index.size(1)),
                         ctx.rel_pos.repeat(m_copies), ctx.same_speaker.repeat(m_copies), targets=targets)
        if targets is not None:
            return {t: head(h[targets]) for t, head in self.heads.items()}
        return {t: head(h).view(m_copies, n, -1) for t, head in self.heads.items()}
