"""Per-domain, per-class cluster centres kept by a moving average (Chen et al.'s cross-domain "cluster graphs")."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from .kmeans import kmeans, kmeans_pp

__all__ = ["ClassCentres"]


class ClassCentres(nn.Module):
    r"""``per_class`` centres for each of ``num_classes`` classes, in each of ``num_domains`` domains.

    Centre :math:`j` of a domain belongs to class :math:`\lfloor j / k \rfloor` (:math:`k` = ``per_class``), so a
    domain has :math:`K = C k` centres. They live in the feature space of a model (they are buffers: saved with the
    weights, never trained by gradient) and follow that space as it changes during training, by the moving average
    Chen et al. (2022) use for their cluster graphs:

    .. math::
        \mathbf{c}_{d,j} \leftarrow (1 - m)\,\mathbf{c}_{d,j} + m \cdot \frac{1}{|B_{d,j}|}
            \sum_{i \in B_{d,j}} \mathbf{x}_i \qquad \text{when } |B_{d,j}| \ge n_{min}

    where :math:`B_{d,j}` are the batch's samples of domain d assigned to centre j: a sample of class c goes to the
    nearest of class c's k centres (the class is a gold label in the source domain and a pseudo-label in the
    target domain — this module never sees which). Centres with too few samples in a batch keep their value.
    Under data parallelism (``reduce``) the sums and counts run over the global batch, every process's share: every
    process takes the same step, the one a single process takes on the whole batch.

    Args:
        dim: feature width F.
        num_classes: C.
        per_class: k centres per class.
        num_domains: domains (2: source = 0, target = 1).
        momentum: m.
        min_count: :math:`n_{min}`, the fewest batch samples that move a centre.

    Shapes:
        - **centres:** :math:`(D, C k, F)`.
        - **nearest:** features :math:`(n, F)`, domain :math:`(n)` or an int → indices and distances :math:`(n, m)`.

    Example:
        >>> c = ClassCentres(dim=2, num_classes=2, momentum=0.5)
        >>> c.init_domain(0, torch.tensor([[0., 0.], [2., 2.]]), classes=torch.tensor([0, 1]))
        >>> c.update(0, torch.tensor([[1., 0.]]), torch.tensor([0]))
        tensor([1, 0])
        >>> c.centres[0]
        tensor([[0.5000, 0.0000],
                [2.0000, 2.0000]])
    """

    def __init__(self, dim: int, num_classes: int, per_class: int = 1, num_domains: int = 2, momentum: float = 0.1,
                 min_count: int = 1):
        super().__init__()
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        if per_class < 1 or num_classes < 1:
            raise ValueError("need at least one class and one centre per class")
        self.dim, self.num_classes, self.per_class = int(dim), int(num_classes), int(per_class)
        self.num_domains, self.momentum, self.min_count = int(num_domains), float(momentum), int(min_count)
        self.register_buffer("centres", torch.zeros(self.num_domains, self.num_centres, self.dim))
        self.register_buffer("initialised", torch.zeros(self.num_domains, dtype=torch.bool))
        self.register_buffer("centre_class", torch.arange(self.num_centres) // self.per_class, persistent=False)
        #: each domain's class proportions (a moving average too; see :meth:`update_prior`)
        self.register_buffer("prior", torch.full((self.num_domains, self.num_classes), 1.0 / self.num_classes))

    @property
    def num_centres(self) -> int:
        return self.num_classes * self.per_class

    # -- assignment ------------------------------------------------------------------------------------------
    def distances(self, x: Tensor, domain: int) -> Tensor:
        """Euclidean distances from each row of ``x`` to each centre of ``domain``: :math:`(n, K)`."""
        return torch.cdist(x.float(), self.centres[domain].float())

    def nearest(self, x: Tensor, domain: Tensor | int, k: int = 1) -> tuple[Tensor, Tensor]:
        """The ``k`` nearest centres of domain ``domain[i]`` to each row ``x[i]``: ``(index (n, k), distance (n, k))``,
        nearest first; indices count within the domain (0..K-1)."""
        k = min(int(k), self.num_centres)
        if isinstance(domain, int):
            dist = self.distances(x, domain)                                      # [n, K]
        else:
            every = torch.stack([self.distances(x, d) for d in range(self.num_domains)], 1)   # [n, D, K]
            dist = every[torch.arange(x.size(0), device=x.device), domain.long()]             # [n, K]
        d, idx = dist.topk(k, dim=1, largest=False)
        return idx, d

    def assign(self, x: Tensor, classes: Tensor, domain: int) -> Tensor:
        """The centre each sample updates: the nearest of its class's ``per_class`` centres; -1 where the class is
        -1 (no label, or a pseudo-label below the confidence threshold)."""
        classes = classes.long()
        out = torch.full_like(classes, -1)
        keep = classes >= 0
        if not keep.any():
            return out
        if self.per_class == 1:
            out[keep] = classes[keep]
            return out
        dist = self.distances(x[keep], domain)                                    # [n', K]
        other = self.centre_class[None, :] != classes[keep, None]                 # centres of other classes
        out[keep] = dist.masked_fill(other, float("inf")).argmin(1)
        return out

    # -- moving average --------------------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, domain: int, x: Tensor, classes: Tensor, reduce: Callable[[Tensor], Tensor] | None = None
               ) -> Tensor:
        """One moving-average step of domain ``domain``'s centres from a batch (possibly empty); returns the number of
        batch samples per centre (:math:`(K)`; centres below ``min_count`` were left alone). ``reduce`` sums a
        tensor over the processes of a data-parallel group (every process must call this, whatever its share)."""
        x = x.detach().to(self.centres.dtype)
        assign = self.assign(x, classes, domain)
        keep = assign >= 0
        counts = torch.bincount(assign[keep], minlength=self.num_centres)               # [K]
        sums = torch.zeros_like(self.centres[domain]).index_add_(0, assign[keep], x[keep])   # [K, F]
        if reduce is not None:
            counts, sums = reduce(counts), reduce(sums)
        moved = counts >= max(1, self.min_count)
        means = sums[moved] / counts[moved, None].to(x.dtype)
        self.centres[domain, moved] = (1 - self.momentum) * self.centres[domain, moved] + self.momentum * means
        return counts

    @torch.no_grad()
    def update_prior(self, domain: int, weights: Tensor, momentum: float,
                     reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        r"""Move domain ``domain``'s class proportions towards a batch's: :math:`\pi_d \leftarrow (1 - m)\,\pi_d +
        m \cdot \frac{1}{n}\sum_i \mathbf{w}_i`, with :math:`\mathbf{w}_i` [n, C] one-hot gold labels (source) or
        predicted probabilities (target: the soft mass of each class's clusters); ``reduce`` as in :meth:`update`
        (the sum and n over the global batch)."""
        weights = weights.detach().float()
        if reduce is not None:
            total = reduce(torch.cat([weights.sum(0), weights.new_tensor([weights.size(0)])]))   # [C + 1]
            if total[-1] == 0:
                return
            batch = (total[:-1] / total[-1]).to(self.prior.dtype)
        elif weights.size(0) == 0:
            return
        else:
            batch = weights.mean(0).to(self.prior.dtype)
        self.prior[domain] = (1 - momentum) * self.prior[domain] + momentum * batch

    # -- initialisation --------------------------------------------------------------------------------------
    @torch.no_grad()
    def init_domain(self, domain: int, x: Tensor, classes: Tensor | None = None, seeds: Tensor | None = None,
                    iters: int = 25, generator: torch.Generator | None = None) -> None:
        """Set domain ``domain``'s centres from features ``x`` (all of a domain's training samples).

        * with ``classes`` (gold labels, or pseudo-labels; -1 = skip): for each class, k-means with k-means++ seeds
          over its samples (with one centre per class: the class mean); a class without samples gets the mean of
          all samples;
        * without: k-means over all samples, started at ``seeds`` (e.g. the source domain's centres, so that
          centre j keeps class j // per_class) or at k-means++ seeds.
        """
        x = x.detach().float()
        out = torch.empty(self.num_centres, self.dim, device=x.device)
        if classes is not None:
            classes = classes.long()
            for c in range(self.num_classes):
                xc = x[classes == c]
                rows = slice(c * self.per_class, (c + 1) * self.per_class)
                if xc.size(0) == 0:
                    out[rows] = x.mean(0)
                elif self.per_class == 1:
                    out[rows] = xc.mean(0)
                else:
                    out[rows] = kmeans(xc, init=kmeans_pp(xc, self.per_class, generator), iters=iters)[0]
        else:
            out = kmeans(x, self.num_centres, init=seeds, iters=iters, generator=generator)[0]
        self.centres[domain] = out.to(self.centres.dtype)
        self.initialised[domain] = True

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, num_classes={self.num_classes}, per_class={self.per_class}, "
                f"num_domains={self.num_domains}, momentum={self.momentum:g}")
