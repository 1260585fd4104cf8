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
from .base import KGModel, ModelConfig, register_model

__all__ = ["KET", "KETConfig"]


@dataclasses.dataclass
class KETConfig(ModelConfig):
    concept_dim: int = 384      # width of concept embeddings (must equal input_dim: relatedness is a cosine)
    lambda_init: float = 0.5    # initial mix between relatedness and affect (paper's code: 0.5)
    learn_lambda: bool = True   # learn the mix
    concentration: float = 1.0  # softmax sharpness over a token's concepts


@register_model
class KET(KGModel):
    r"""KET in kgemo: concept attention per word, word pooling per utterance, then the context transformer.

    Read top to bottom, for utterance :math:`i` with concept-bearing tokens :math:`t` and their ConceptNet
    neighbours :math:`c`:

    1. Context representation (KET's :math:`CR`): mean of the sentence features of utterance :math:`i` and its
       past context window, :math:`\mathbf{r}_i = \mathrm{mean}_{j \le i,\ i-j \le W}\ \mathbf{x}_j`.
    2. Knowledge per token with :class:`~kgemo.nn.KETConceptAttention`: the prior
       :math:`w_c = \lambda\, s_c |\cos(\mathbf{r}_i, \mathbf{g}_c)| + (1-\lambda)\,\mathrm{aff}_c`, softmax over
       the token's concepts, :math:`\mathbf{k}_t = \sum_c \alpha_c \mathbf{W}_g \mathbf{g}_c`.
    3. Token vector :math:`\mathbf{e}_t = \mathbf{W}_t[\mathbf{W}_g\mathbf{g}_t \Vert \mathbf{k}_t]` (the paper
       concatenates word and knowledge vectors and projects them).
    4. Utterance knowledge :math:`\mathbf{z}_i = \sum_t \beta_t \mathbf{e}_t` (attention pooling over the
       utterance's tokens; the paper's utterance-level self-attention).
    5. :math:`\mathbf{h}_i = \mathrm{ContextTransformer}(\mathbf{W}_f[\mathbf{W}_{in}\mathbf{x}_i \Vert
       \mathbf{z}_i])` and one linear head per task.

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
        self.utt_in = nn.Sequential(nn.Dropout(c.dropout), nn.Linear(c.input_dim, c.hidden), nn.GELU(),
                                    nn.Dropout(c.dropout))
        self.concept_in = nn.Sequential(nn.Linear(c.concept_dim, c.hidden), nn.GELU())
        self.concept_attention = KETConceptAttention(c.lambda_init, c.learn_lambda, c.concentration)
        self.token_mlp = nn.Sequential(nn.Linear(2 * c.hidden, c.hidden), nn.GELU(), nn.Dropout(c.dropout))
        self.token_pool = AttentionPooling(c.hidden)
        self.fuse = nn.Sequential(nn.Linear(2 * c.hidden, c.hidden), nn.GELU(), nn.Dropout(c.dropout))
        self.context = ContextTransformer(c.hidden, c.context_layers, c.heads, c.max_distance, c.dropout)
        self.heads = nn.ModuleDict({t: nn.Linear(c.hidden, len(s)) for t, s in label_spaces.items()})

    def _encode(self, batch) -> tuple[Tensor, dict[str, Any]]:
        u, ctx = batch["utterance"], batch["utterance", "context", "utterance"]
        tok, con = batch["token"], batch["concept"]
        tok_utt = batch["token", "in", "utterance"].edge_index[1]
        link = batch["concept", "linked", "token"]
        n = u.x.size(0)

        # 1. Context representation r_i: mean of x_j over past-and-self context edges.
        past = ctx.rel_pos >= 0
        r = scatter(u.x[ctx.edge_index[0, past]], ctx.edge_index[1, past], 0, dim_size=n, reduce="mean")  # [N, D]

        # 2. Concept knowledge per token.
        g_concept = self.concept_in(con.x)                                                 # [C, H]
        k, alpha = self.concept_attention(g_concept, con.x, r[tok_utt], link.edge_index, link.weight,
                                          link.affect, return_attention_weights=True)      # [T, H], [E]
        # 3-4. Token vectors, pooled per utterance.
        e = self.token_mlp(torch.cat([self.concept_in(tok.x), k], -1))                     # [T, H]
        z, beta = self.token_pool(e, tok_utt, n)                                           # [N, H], [T]

        # 5. Fuse with the utterance embedding; context.
        h = self.fuse(torch.cat([self.utt_in(u.x), z], -1))                                # [N, H]
        h = self.context(h, ctx.edge_index, ctx.rel_pos, ctx.same_speaker)                 # [N, H]
        return h, {"concept_edge_weight": alpha, "token_weight": beta}

    def forward(self, batch) -> dict[str, Tensor]:
        h, _ = self._encode(batch)
        return {t: head(h) for t, head in self.heads.items()}

    def explain(self, batch) -> dict[str, Any]:
        """``concept_edge_weight`` α per (concept → token) edge (sums to 1 over each token's concepts) and
        ``token_weight`` β per token (sums to 1 over each utterance's tokens)."""
        return self._encode(batch)[1]
