"""``dann``: the no-knowledge model plus a domain discriminator behind gradient reversal (DANN; CDAN as an option)."""
from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import torch
from torch import Tensor

from ..adapt import CONDITIONING, DomainAdversary, grl_coefficient
from ..data.labels import LabelSpace
from ..errors import KgemoError
from .base import register_model
from .no_knowledge import NoKnowledge, NoKnowledgeConfig

__all__ = ["DANN", "DANNConfig", "utterance_domain", "training_domain"]


def utterance_domain(batch) -> Tensor:
    """Each utterance's domain (0 source, 1 target) from a ``cross_domain`` graph; target where a graph has none
    (an adapted model is meant for the target domain)."""
    u = batch["utterance"]
    if "domain" in u:
        return u.domain.long()
    return torch.ones(u.num_nodes, dtype=torch.long, device=u.x.device)


def training_domain(batch, padding: Tensor | None) -> Tensor:
    """:func:`utterance_domain` as the training terms see it: -1 (no domain) for the utterances of padding copies
    (``padding`` [N], from the trainer under DDP), which enter no domain loss and move no centre."""
    domain = utterance_domain(batch)
    return domain if padding is None else domain.masked_fill(padding, -1)


@dataclasses.dataclass
class DANNConfig(NoKnowledgeConfig):
    """The no-knowledge options, and the adversary's."""

    name: str = "dann"
    domain_weight: float = 1.0          # weight of the domain loss in the total loss (CDAN's trade-off)
    grl_gamma: float = 10.0             # reversal coefficient 2/(1+exp(-gamma p)) - 1 over training progress p;
                                        # 0 = coefficient 1 from the first step
    conditioning: str = "none"          # what the discriminator sees: none (DANN), cdan, cdan_e
    discriminator_hidden: int = 256     # the discriminator's hidden width

    def __post_init__(self):
        super().__post_init__()
        if self.conditioning not in CONDITIONING:
            raise KgemoError(f"conditioning must be one of {CONDITIONING}, got {self.conditioning!r}")


@register_model
class DANN(NoKnowledge):
    r"""Domain-adversarial training (Ganin et al., 2016) on the utterance states of :class:`NoKnowledge`.

    .. math::
        \mathcal{L} = \mathcal{L}_{CE}(\text{source labels}) + w \cdot \mathcal{L}_{adv}\big(R_{\lambda_p}(
            \mathbf{h})\big), \qquad \lambda_p = \frac{2}{1 + e^{-\gamma p}} - 1

    with :math:`\mathcal{L}_{adv}` the domain loss of :class:`~kgemo.adapt.DomainAdversary` (each domain weighs
    one half) on the states the classifier reads. Only the source's labels enter the classification loss — the
    target's were removed before the graphs were built (``data.target_datasets``). At inference it is exactly the
    no-knowledge model: the discriminator is used in training only. Under DDP the domain loss is the one-process
    loss of the global batch (its per-domain sums run over the processes; padding copies are left out).
    """

    name = "dann"
    graph_builder = "cross_domain"
    config_class = DANNConfig

    def __init__(self, config: DANNConfig, label_spaces: Mapping[str, LabelSpace]):
        super().__init__(config, label_spaces)
        c = config
        self.adversary = DomainAdversary(c.hidden, c.discriminator_hidden, len(next(iter(label_spaces.values()))),
                                         c.conditioning, c.dropout)
        self.grl_coeff = grl_coefficient(0.0, c.grl_gamma)

    def on_train_step(self, step: int, total_steps: int) -> None:
        self.grl_coeff = grl_coefficient(step / max(1, total_steps), self.config.grl_gamma)

    def forward_train(self, batch, padding: Tensor | None = None, reduce: Callable[[Tensor], Tensor] | None = None
                      ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The logits and the domain loss of a training batch (``padding`` and ``reduce``: from the trainer under
        DDP, see :meth:`~kgemo.training.module.TaskModule.training_step`)."""
        h, _ = self._encode(batch)                                                   # [N, hidden]
        logits = {t: head(h) for t, head in self.heads.items()}
        aux = {}
        if self.config.domain_weight > 0:
            probs = logits[self.tasks[0]].softmax(-1)                                # [N, C]
            aux["domain_loss"] = self.config.domain_weight * self.adversary.loss(
                h, training_domain(batch, padding), probs, self.grl_coeff, reduce=reduce)
        return logits, aux
