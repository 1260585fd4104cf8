"""Domain discriminator behind a gradient reversal layer: DANN (Ganin et al., 2016) and CDAN / CDAN+E (Long et al.,
2018) conditioning, with a loss that weighs the two domains equally."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .gradient_reversal import grad_reverse

__all__ = ["DomainAdversary", "CONDITIONING"]

#: What the discriminator sees: the features (DANN), their outer product with the class probabilities (CDAN),
#: and the same with entropy weights that favour confident samples (CDAN+E).
CONDITIONING = ("none", "cdan", "cdan_e")


class DomainAdversary(nn.Module):
    r"""Gradient reversal → (conditioning) → MLP → one domain logit per sample; :meth:`loss` is its training loss.

    .. math::
        \mathbf{z}_i = \begin{cases} \mathbf{h}_i & \text{none (DANN)} \\
            \mathrm{vec}(\mathbf{p}_i \otimes \mathbf{h}_i) & \text{cdan, cdan\_e} \end{cases}, \qquad
        \hat d_i = \mathrm{MLP}(R_\lambda(\mathbf{z}_i))

    .. math::
        \mathcal{L}_{adv} = \sum_{d \in \{0, 1\}} \frac{1}{2} \sum_{i: d_i = d} \frac{w_i}{\sum_{j: d_j = d} w_j}
            \,\mathrm{BCE}(\hat d_i, d_i), \qquad w_i = \begin{cases} 1 & \text{none, cdan} \\
            1 + e^{-H(\mathbf{p}_i)} & \text{cdan\_e} \end{cases}

    :math:`R_\lambda` reverses the gradient (:func:`~kgemo.adapt.grad_reverse`), so minimising
    :math:`\mathcal{L}_{adv}` trains the MLP to tell the domains apart and the layers below to make them alike. The
    class probabilities :math:`\mathbf{p}` are detached (as in CDAN's code); so are the entropy weights (CDAN's code
    lets a reversed gradient reach the entropy; here the weights only choose which samples count). Each domain
    weighs one half whatever the number of its samples in the batch, so a batch that is 90% source still aligns.
    Samples of domain -1 (none: a DDP padding copy) are left out. Under DDP (``reduce``) both sums of each domain run
    over the global batch, so every process computes the one-process loss.

    Args:
        dim: feature width F.
        hidden: the MLP's hidden width (two hidden layers, ReLU, dropout, as DANN's and CDAN's discriminators).
        num_classes: C (needed by the cdan conditionings).
        conditioning: one of :data:`CONDITIONING`.
        dropout: dropout in the MLP.

    Shapes:
        - **input:** h :math:`(n, F)`, probs :math:`(n, C)` (cdan), domain :math:`(n)` in {0, 1} (-1: left out).
        - **output:** logits :math:`(n)`; loss: a scalar.
    """

    def __init__(self, dim: int, hidden: int = 256, num_classes: int | None = None, conditioning: str = "none",
                 dropout: float = 0.1):
        super().__init__()
        if conditioning not in CONDITIONING:
            raise ValueError(f"conditioning must be one of {CONDITIONING}, got {conditioning!r}")
        if conditioning != "none" and not num_classes:
            raise ValueError(f"conditioning {conditioning!r} needs num_classes")
        self.dim, self.hidden, self.conditioning = dim, hidden, conditioning
        self.num_classes = num_classes
        width = dim * num_classes if conditioning != "none" else dim
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1))

    def forward(self, h: Tensor, probs: Tensor | None = None, coeff: float = 1.0) -> Tensor:
        z = h
        if self.conditioning != "none":
            if probs is None:
                raise ValueError(f"conditioning {self.conditioning!r} needs the class probabilities")
            z = (probs.detach().unsqueeze(2) * h.unsqueeze(1)).flatten(1)            # [n, C * F]
        return self.mlp(grad_reverse(z, coeff)).squeeze(-1)                          # [n]

    def loss(self, h: Tensor, domain: Tensor, probs: Tensor | None = None, coeff: float = 1.0,
             sample_weight: Tensor | None = None, reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        """The domain loss; ``sample_weight`` [n] multiplies each sample's weight (e.g. importance weights that
        give the source the target's class proportions, as IWDAN does). ``reduce`` sums a tensor over the processes
        of a data-parallel group (value: the sum; gradient: this process's part), None in one process."""
        logits = self(h, probs, coeff)
        target = domain.to(logits.dtype)
        bce = F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")   # [n]
        if self.conditioning == "cdan_e":
            p = probs.detach().float().clamp_min(1e-8)
            w = 1.0 + torch.exp((p * p.log()).sum(-1))                          # 1 + e^{-H(p)}
        else:
            w = torch.ones_like(bce)
        if sample_weight is not None:
            w = w * sample_weight.detach().float()
        # per domain: the weighted BCE and the weight — this process's, or (reduce) every process's together
        sums = torch.stack([torch.stack([(w[m] * bce[m]).sum(), w[m].sum()]) for m in (domain == 0, domain == 1)])
        if reduce is not None:
            sums = reduce(sums)                                                     # [2, 2]
        total = bce.new_zeros(())
        for d in (0, 1):
            if sums[d, 1] > 0:
                total = total + 0.5 * sums[d, 0] / sums[d, 1]
        return total

    def extra_repr(self) -> str:
        return f"dim={self.dim}, hidden={self.hidden}, conditioning={self.conditioning!r}"
