"""Mean of learned embeddings of hashed words per utterance (the hashing trick: no vocabulary to ship)."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import scatter

__all__ = ["HashedWordBag"]


class HashedWordBag(nn.Module):
    r"""Bag-of-words utterance vectors from hashed word ids.

    .. math::
        \mathbf{w}_i = \frac{1}{|T_i|} \sum_{t \in T_i} \mathbf{E}\big[h(t) \bmod B\big]

    with :math:`T_i` the words of utterance :math:`i` (``(word, in, utterance)`` edges), :math:`h` a stable
    32-bit hash stored on the graph and :math:`B` buckets. During training each word is dropped with probability
    ``word_dropout`` (Co-GAT's code similarly replaces rare words by UNK at random), so no single word decides.
    An utterance left without words gets the zero vector.

    Args:
        buckets: embedding rows :math:`B`; collisions are shared rows.
        dim: embedding width.
        word_dropout: probability of dropping a word while training.

    Shapes:
        - **input:** hashes :math:`(T)` int64, token_to_utterance :math:`(T)` utterance index of each word,
          num_utterances :math:`N`.
        - **output:** :math:`(N, \text{dim})`.
    """

    def __init__(self, buckets: int = 32768, dim: int = 64, word_dropout: float = 0.1):
        super().__init__()
        self.buckets, self.dim, self.word_dropout = buckets, dim, word_dropout
        self.embedding = nn.Embedding(buckets, dim)
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.normal_(self.embedding.weight, std=0.1)

    def forward(self, hashes: Tensor, token_to_utterance: Tensor, num_utterances: int) -> Tensor:
        if self.training and self.word_dropout > 0:
            keep = torch.rand(hashes.shape, device=hashes.device) >= self.word_dropout
            hashes, token_to_utterance = hashes[keep], token_to_utterance[keep]
        vectors = self.embedding(hashes % self.buckets)                                   # [T, dim]
        return scatter(vectors, token_to_utterance, 0, dim_size=num_utterances, reduce="mean")  # [N, dim]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(buckets={self.buckets}, dim={self.dim})"
