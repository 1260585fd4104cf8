"""A small topic layer: a soft mixture over learned topic vectors (TODKAT's topic representation, kgemo's form)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["TopicLayer"]


class TopicLayer(nn.Module):
    r"""Infer a topic mixture from a text representation and return the mixed topic vector.

    .. math::
        \boldsymbol{\theta} = \mathrm{softmax}\big(\mathbf{W}_\theta\, \mathrm{Dropout}(\mathbf{x}) +
        \mathbf{b}_\theta\big) \in \Delta^{K-1}, \qquad \mathbf{t} = \boldsymbol{\theta}^\top \mathbf{T}

    with :math:`K` learned topic vectors :math:`\mathbf{T} \in \mathbb{R}^{K \times H}`. TODKAT (Zhu et al., ACL
    2021) infers a topic vector with a VAE inserted into a fine-tuned RoBERTa (reconstruction + KL objective); with
    a frozen sentence encoder and one task loss, kgemo keeps only the bottleneck: a :math:`K`-way simplex through
    which the topic must pass, trained by the emotion loss. The input is the utterance with its conversation
    (the event graph's ``topic`` node: the conversation's mean feature, or the mean of the turns so far in a
    ``past_only`` graph), so :math:`\boldsymbol{\theta}` describes *what the conversation is about* around the
    utterance; :math:`\boldsymbol{\theta}` is returned for inspection. Rows are independent: the layer mixes
    nothing across utterances.

    Args:
        in_dim: width of :math:`\mathbf{x}`.
        topics: :math:`K`.
        out_dim: width :math:`H` of the topic vectors.
        dropout: dropout on the input.

    Shapes:
        - **input:** x :math:`(N, F)`.
        - **output:** :math:`(N, H)` topic vectors and :math:`(N, K)` mixtures (rows sum to 1).
    """

    def __init__(self, in_dim: int, topics: int = 16, out_dim: int = 256, dropout: float = 0.0):
        super().__init__()
        if topics < 2:
            raise ValueError(f"a topic layer needs at least 2 topics, got {topics}")
        self.in_dim, self.topics, self.out_dim = in_dim, topics, out_dim
        self.dropout = nn.Dropout(dropout)
        self.infer = nn.Linear(in_dim, topics)
        self.topic_vectors = nn.Parameter(torch.empty(topics, out_dim))
        self.reset_parameters()

    def reset_parameters(self):
        self.infer.reset_parameters()
        nn.init.normal_(self.topic_vectors, std=self.out_dim ** -0.5)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        theta = torch.softmax(self.infer(self.dropout(x)), -1)               # [N, K]
        return theta @ self.topic_vectors, theta                             # [N, H], [N, K]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.in_dim}, topics={self.topics}, out_dim={self.out_dim})"

