"""Gradient reversal (Ganin & Lempitsky, 2015): identity forward, gradient times −λ backward."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["GradientReversal", "grad_reverse", "grl_coefficient"]


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, coeff: float) -> Tensor:
        ctx.coeff = float(coeff)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return -ctx.coeff * grad, None


def grad_reverse(x: Tensor, coeff: float = 1.0) -> Tensor:
    r""":math:`R_\lambda(x) = x` in the forward pass; :math:`\partial R_\lambda / \partial x = -\lambda I` backward.

    Example:
        >>> x = torch.ones(2, requires_grad=True)
        >>> grad_reverse(x, 0.5).sum().backward()
        >>> x.grad
        tensor([-0.5000, -0.5000])
    """
    return _ReverseGrad.apply(x, coeff)


def grl_coefficient(progress: float, gamma: float = 10.0) -> float:
    r"""DANN's schedule for the reversal strength: :math:`\lambda_p = \frac{2}{1 + e^{-\gamma p}} - 1`.

    It rises from 0 at the start of training (``progress`` p = 0, when the features are still noise and the
    discriminator's gradient would only add noise) to almost 1 at the end (p = 1); ``gamma`` = 10 as in Ganin et al.
    (2016) and CDAN's code. ``gamma`` = 0 is no ramp: the coefficient is 1 throughout.
    """
    if gamma <= 0:
        return 1.0
    p = min(max(float(progress), 0.0), 1.0)
    return 2.0 / (1.0 + math.exp(-gamma * p)) - 1.0


class GradientReversal(nn.Module):
    r"""The gradient reversal layer as a module, with a settable coefficient.

    .. math::
        \mathbf{y} = \mathbf{x}, \qquad \frac{\partial \mathcal{L}}{\partial \mathbf{x}}
            = -\lambda \frac{\partial \mathcal{L}}{\partial \mathbf{y}}

    A domain discriminator placed after it learns to tell the domains apart, while the layers before it receive the
    opposite gradient and learn features the discriminator cannot separate.

    Args:
        coeff: :math:`\lambda` (updated during training, e.g. with :func:`grl_coefficient`).

    Shapes:
        - **input:** any.
        - **output:** the same.
    """

    def __init__(self, coeff: float = 1.0):
        super().__init__()
        self.coeff = float(coeff)

    def forward(self, x: Tensor) -> Tensor:
        return grad_reverse(x, self.coeff)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(coeff={self.coeff:g})"
