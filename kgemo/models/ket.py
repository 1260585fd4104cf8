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
        tok, con = batch["token"], batch["concept"]
        tok_utt = batch["token", "in", "utterance"].edge_index[1]
        link = batch["concept", "linked", "token"]
        n = u.x.size(0)

        # 1. Context representation r_i: mean of x_j over past-and-self context edges.
        past = ctx.rel_pos >= 0
        r = scatter(u.x[ctx.edge_index[0, past]], ctx.edge_index[1, past], 0, dim_size=n, reduce="mean")  # [N, D]

        # 2. Concept knowledge per token, in the encoder space.
        k, alpha = self.concept_attention(con.x, con.x, r[tok_utt], link.edge_index, link.weight,
                                          link.affect, return_attention_weights=True)      # [T, D], [E]
        # 3-4. Token vectors [word; knowledge; centred VAD of the word], pooled per utterance.
        vad = (tok.vad - 0.5) * tok.vad_known.unsqueeze(-1).float()                        # [T, 3], 0 if unknown
        parts = [tok.x, k, vad] if self.config.word_vectors else [k, vad]
        if self.config.concept_affect:
            # s_t = Σ_c α_c (VAD_c − 0.5): the concepts' affect, weighted as the model attends to them. A channel this
            # narrow is the knowledge the sentence embedding lacks, and its gradient teaches α which concepts' valence
            # fits the emotion (what the evidence shows).
            cvad = (con.vad - 0.5) * con.vad_known.unsqueeze(-1).float()                   # [C, 3]
            src, dst = link.edge_index
            parts.append(scatter(alpha.unsqueeze(-1) * cvad[src], dst, 0, dim_size=tok.x.size(0), reduce="sum"))
        e = torch.cat(parts, -1)                                                           # [T, width]
        z, beta = self.token_pool(e, tok_utt, n)                                           # [N, width], [T]

        # 5. Fuse with the utterance embedding; context.
        h = self.utt_in(u.x) + self.knowledge_out(z)                                       # [N, H]
        h = self.context(h, ctx.edge_index, ctx.rel_pos, ctx.same_speaker)                 # [N, H]
        return h, {"concept_edge_weight": alpha, "token_weight": beta}
