"""KET's context-aware affective graph attention, as a PyG ``MessagePassing`` layer."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.typing import Adj
from torch_geometric.utils import scatter, softmax

__all__ = ["KETConceptAttention"]


class KETConceptAttention(MessagePassing):
    r"""Concept attention with KET's relatedness × affect prior (Zhong et al., EMNLP 2019, arXiv:1909.10681,
    Sec. 3.3 "Dynamic Context-Aware Affective Graph Attention").

    For a token :math:`t` with ConceptNet concepts :math:`c \in \mathcal{N}(t)`, each carrying its ConceptNet
    confidence :math:`s_c` (normalised per token) and affect intensity
    :math:`\mathrm{aff}_c = \mathrm{minmax}(\lVert[V_c - 0.5, A_c / 2]\rVert_2)`:

    .. math::
        \mathrm{rel}_c &= s_c \cdot \lvert \cos(\mathbf{r}_t, \mathbf{g}_c) \rvert
            \quad\text{(``relatedness="code"``), or}\quad
            \mathrm{rel}_c = \operatorname{minmax}_{c' \in \mathcal{N}(t)}
            \lvert \cos(\mathbf{r}_t, \mathbf{g}_{c'}) \rvert \quad\text{(``"paper"``)} \\
        w_c &= \lambda\, \mathrm{rel}_c + (1 - \lambda)\, \mathrm{aff}_c \\
        \alpha_c &= \frac{\exp(\gamma\, w_c)}{\sum_{c' \in \mathcal{N}(t)} \exp(\gamma\, w_{c'})} \\
        \mathbf{k}_t &= \sum_{c \in \mathcal{N}(t)} \alpha_c\, \mathbf{v}_c

    where :math:`\mathbf{r}_t` is the context representation of the token's utterance and :math:`\mathbf{g}_c`
    the concept embedding (both in the same space, e.g. the frozen sentence encoder's), :math:`\mathbf{v}_c` the
    concept value vector (usually a projection of :math:`\mathbf{g}_c`), :math:`\gamma` the concentration factor
    and :math:`\lambda = \sigma(\theta)` a learned mixing weight.

    ``"code"`` is ``GraphAttention`` variant 2 of the official code (confidence times cosine, no min-max);
    ``"paper"`` is the paper's equation, the cosine min-max normalised over the token's concepts (the confidence
    then only chooses which concepts are candidates). The rest is equation (4)-(7) of the paper, with two
    deliberate differences: the softmax runs over the token's own concepts only (the official code's softmax
    also gives weight :math:`e^0` to every unconnected concept of the vocabulary), and :math:`\lambda` is one
    learned scalar rather than one per vocabulary entry. A token without concepts gets :math:`\mathbf{k}_t = 0`.

    Args:
        lambda_init: initial :math:`\lambda` (0.5 in the paper's code).
        relatedness: ``"code"`` or ``"paper"`` (see above).
        learn_lambda: learn :math:`\lambda` (else fixed at ``lambda_init``).
        concentration: :math:`\gamma`, the softmax sharpness.

    Shapes:
        - **input:** concept values :math:`(|\mathcal{V}_c|, F)`, concept embeddings
          :math:`(|\mathcal{V}_c|, D)`, token context :math:`(|\mathcal{V}_t|, D)`, edge index
          :math:`(2, |\mathcal{E}|)` concept → token, confidence and affect :math:`(|\mathcal{E}|)`.
        - **output:** :math:`(|\mathcal{V}_t|, F)`; with ``return_attention_weights`` also
          :math:`\alpha` of shape :math:`(|\mathcal{E}|)`.
    """

    def __init__(self, lambda_init: float = 0.5, learn_lambda: bool = True, concentration: float = 1.0,
                 relatedness: str = "code"):
        super().__init__(aggr="sum", node_dim=0)
        if relatedness not in ("code", "paper"):
            raise ValueError(f"relatedness must be 'code' or 'paper', got {relatedness!r}")
        self.relatedness = relatedness
        self.lambda_init = float(lambda_init)
        self.learn_lambda = learn_lambda
        self.concentration = float(concentration)
        logit = torch.logit(torch.tensor(self.lambda_init).clamp(1e-4, 1 - 1e-4))
        if learn_lambda:
            self.lambda_logit = torch.nn.Parameter(logit.clone())
        else:
            self.register_buffer("lambda_logit", logit.clone())
        self.reset_parameters()

    def reset_parameters(self):
        super().reset_parameters()
        with torch.no_grad():
            self.lambda_logit.fill_(torch.logit(torch.tensor(self.lambda_init).clamp(1e-4, 1 - 1e-4)))

    @property
    def lam(self) -> Tensor:
        return torch.sigmoid(self.lambda_logit)

    def edge_scores(self, concept_emb: Tensor, token_context: Tensor, edge_index: Adj, confidence: Tensor,
                    affect: Tensor) -> Tensor:
        """:math:`w_c` per edge (before the softmax)."""
        src, dst = edge_index
        # Normalise per node, then one dot product per edge: the same cosine as F.cosine_similarity on the gathered
        # [E, D] rows without their per-edge norms (~1.7x faster; this runs once per perturbed copy in occlusion).
        cos = torch.einsum("ed,ed->e", F.normalize(token_context, dim=-1, eps=1e-8)[dst],
                           F.normalize(concept_emb, dim=-1, eps=1e-8)[src]).abs()
        if self.relatedness == "code":
            relatedness = confidence * cos
        else:  # min-max over each token's concepts; a token with one concept (or equal ones) gets 0
            n = token_context.size(0)
            lo = scatter(cos, dst, 0, dim_size=n, reduce="min")[dst]
            hi = scatter(cos, dst, 0, dim_size=n, reduce="max")[dst]
            relatedness = (cos - lo) / (hi - lo).clamp_min(1e-8)
        return self.lam * relatedness + (1 - self.lam) * affect

    def forward(self, concept_value: Tensor, concept_emb: Tensor, token_context: Tensor, edge_index: Adj,
                confidence: Tensor, affect: Tensor, return_attention_weights: bool = False):
        num_tokens = token_context.size(0)
        # Prior per edge, then the softmax over each token's concepts.
        w = self.edge_scores(concept_emb, token_context, edge_index, confidence, affect)
        alpha = softmax(self.concentration * w, edge_index[1], num_nodes=num_tokens)
        out = self.propagate(edge_index, x=(concept_value, None), alpha=alpha, size=(concept_value.size(0),
                                                                                       num_tokens))
        return (out, alpha) if return_attention_weights else out

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return alpha.unsqueeze(-1) * x_j

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(lambda={self.lam.item():.3f}, learn_lambda={self.learn_lambda}, "
                f"concentration={self.concentration}, relatedness={self.relatedness!r})")
