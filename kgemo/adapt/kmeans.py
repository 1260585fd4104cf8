"""k-means with k-means++ seeding (Arthur & Vassilvitskii, 2007), in torch: centre initialisation for kgemo.adapt."""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["kmeans_pp", "kmeans"]


def kmeans_pp(x: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    r"""k-means++ seeds: the first uniformly at random, each next one drawn with probability
    :math:`D(x)^2 / \sum_x D(x)^2`, :math:`D(x)` the distance to the nearest seed chosen so far.

    Args:
        x: points :math:`(n, F)`, n >= 1.
        k: number of seeds; when ``k > n`` the points are repeated.
        generator: torch random generator (a fixed one gives fixed seeds; the global RNG is left alone).

    Returns:
        :math:`(k, F)` seeds (copies of rows of ``x``).
    """
    n = x.size(0)
    if n == 0:
        raise ValueError("kmeans_pp needs at least one point")
    first = int(torch.randint(n, (1,), generator=generator))
    chosen = [first]
    d2 = ((x - x[first]) ** 2).sum(-1)
    for _ in range(1, k):
        total = float(d2.sum())
        if total <= 0:  # every point sits on a seed: repeat points
            nxt = int(torch.randint(n, (1,), generator=generator))
        else:
            nxt = int(torch.multinomial(d2 / total, 1, generator=generator))
        chosen.append(nxt)
        d2 = torch.minimum(d2, ((x - x[nxt]) ** 2).sum(-1))
    return x[chosen].clone()


def kmeans(x: Tensor, k: int | None = None, init: Tensor | None = None, iters: int = 25,
           generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    r"""Lloyd's k-means: assign each point to its nearest centre (squared euclidean), move each centre to the mean
    of its points; a centre that loses every point stays where it was.

    Args:
        x: points :math:`(n, F)`.
        k: number of centres (seeded by :func:`kmeans_pp`); or give ``init``.
        init: starting centres :math:`(k, F)` (e.g. the source domain's class centres, so that cluster j of the
            target stays tied to class j).
        iters: at most this many rounds (stops earlier when no assignment changes).
        generator: random generator for the k-means++ seeds.

    Returns:
        ``(centres (k, F), assignment (n,))``.
    """
    if init is None:
        if k is None:
            raise ValueError("kmeans needs k or init")
        init = kmeans_pp(x, k, generator)
    centres = init.clone().to(x.dtype)
    k = centres.size(0)
    assign = torch.full((x.size(0),), -1, dtype=torch.long, device=x.device)
    for _ in range(max(1, iters)):
        new = torch.cdist(x, centres).argmin(1)                                   # [n]
        if torch.equal(new, assign):
            break
        assign = new
        sums = torch.zeros_like(centres).index_add_(0, assign, x)                # [k, F]
        counts = torch.bincount(assign, minlength=k).to(x.dtype)                  # [k]
        filled = counts > 0
        centres[filled] = sums[filled] / counts[filled, None]
    return centres, assign
