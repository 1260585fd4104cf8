"""``cluster_graph``: cross-domain cluster graphs (Chen et al., TPAMI 2022, "AGRA") for ERC.

Schema card: graphs/cross_domain.md; method and results: docs/adapt.md.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import Tensor, nn

from ..adapt import CONDITIONING, CentreAttentionLayer, ClassCentres, DomainAdversary, centre_graph, grl_coefficient
from ..data.labels import LabelSpace
from ..errors import KgemoError
from .base import register_model
from .dann import training_domain, utterance_domain
from .no_knowledge import NoKnowledge, NoKnowledgeConfig

__all__ = ["ClusterGraph", "ClusterGraphConfig"]

SOURCE, TARGET = 0, 1


@dataclasses.dataclass
class ClusterGraphConfig(NoKnowledgeConfig):
    """The no-knowledge options, the centres', the graph's and the adversary's."""

    name: str = "cluster_graph"
    centres_per_class: int = 1          # k centres per class and domain (k-means++ within a class when k > 1)
    momentum: float = 0.1               # moving-average momentum of the centres, per training step
    own_centres: int = 1                # nearest centres of the utterance's own domain linked to it
    cross_centres: int = 1              # nearest centres of the other domain linked to it
    graph_layers: int = 1               # centre-attention blocks
    target_init: str = "kmeans"         # target centres at the start: kmeans (over the target's train features,
                                        # started at the source centres so centre j keeps class j // k) or
                                        # pseudo_label (class means of the model's predictions)
    target_update: str = "pseudo_label"  # which target centre a target utterance moves: the nearest of its
                                         # predicted class's (pseudo_label) or the nearest overall (nearest)
    pseudo_label_threshold: float = 0.0  # least predicted probability for a pseudo-label to move a centre (and to
                                         # count in the centre alignment)
    alignment_weight: float = 0.0       # weight of the class-level centre alignment: the batch's target states of
                                        # each (pseudo-)class pulled to that class's source centre (0 = off)
    domain_weight: float = 1.0          # weight of the domain loss (0 = no adversary: the graph alone)
    importance_weighting: bool = False  # weigh source samples in the domain loss by target/source class proportion
                                        # (IWDAN), the target's proportions from the soft mass of its clusters
    prior_momentum: float = 0.01        # moving-average momentum of the class proportions, per step
    max_importance: float = 10.0        # importance weights are clipped to [1/max, max]
    grl_gamma: float = 10.0             # reversal coefficient ramp (see DANNConfig)
    conditioning: str = "cdan_e"        # what the discriminator sees: none (DANN), cdan, cdan_e (CDAN-E as AGRA)
    discriminator_hidden: int = 256     # the discriminator's hidden width

    def __post_init__(self):
        super().__post_init__()
        if self.conditioning not in CONDITIONING:
            raise KgemoError(f"conditioning must be one of {CONDITIONING}, got {self.conditioning!r}")
        if self.target_init not in ("kmeans", "pseudo_label"):
            raise KgemoError(f"target_init must be kmeans or pseudo_label, got {self.target_init!r}")
        if self.target_update not in ("pseudo_label", "nearest"):
            raise KgemoError(f"target_update must be pseudo_label or nearest, got {self.target_update!r}")
        if not 0.0 < self.momentum <= 1.0:
            raise KgemoError(f"momentum must be in (0, 1], got {self.momentum}")


@register_model
class ClusterGraph(NoKnowledge):
    r"""Utterance states, linked to class centres of both domains, propagated, classified; aligned adversarially.

    1. :math:`\mathbf{h}_i` = the :class:`NoKnowledge` state (projection + context transformer).
    2. Centres :math:`\mathbf{c}_{d,j}` (:class:`~kgemo.adapt.ClassCentres`, buffers): per domain d and class, the
       moving average of :math:`\mathbf{h}` over the source's gold labels (d = source) and the model's
       pseudo-labels (d = target); initialised before the first step (:meth:`prepare_training`).
    3. The cross-domain graph of the batch (:func:`~kgemo.adapt.centre_graph`): every utterance linked to its
       nearest ``own_centres`` centres of its own domain and ``cross_centres`` of the other one.
    4. :math:`\mathbf{h}'_i` = :class:`~kgemo.adapt.CentreAttentionLayer` blocks over that graph.
    5. :math:`\hat{\mathbf{y}}_i = \mathbf{W}\mathbf{h}'_i`, trained on source labels only;
       a domain discriminator behind gradient reversal on :math:`\mathbf{h}'` (CDAN-E by default, as Chen et al.'s
       code), each domain weighing one half:

    .. math::
        \mathcal{L} = \mathcal{L}_{CE}(\text{source}) + w\,\mathcal{L}_{adv}\big(R_{\lambda_p}
            (\mathbf{p} \otimes \mathbf{h}')\big)

    A target utterance thus reads the source centre of the class it resembles — the class-level information
    that the source labels put there — and the adversary pulls the two domains' states together class by class.
    Target labels are never read: the trainer removes them, and this model reads ``y`` only for utterances of the
    source domain.

    Under DDP every process moves the centres (and class proportions) by the sums and counts of the whole global
    batch, and the domain and alignment losses are the global batch's (sums over the processes, ``reduce``): the
    centres stay identical in every process and equal to one process's; padding copies move nothing.
    """

    name = "cluster_graph"
    graph_builder = "cross_domain"
    config_class = ClusterGraphConfig

    def __init__(self, config: ClusterGraphConfig, label_spaces: Mapping[str, LabelSpace]):
        super().__init__(config, label_spaces)
        c = config
        n_classes = len(next(iter(label_spaces.values())))
        self.centres = ClassCentres(c.hidden, n_classes, c.centres_per_class, 2, c.momentum)
        self.graph = nn.ModuleList(CentreAttentionLayer(c.hidden, c.heads, c.dropout) for _ in range(c.graph_layers))
        self.adversary = DomainAdversary(c.hidden, c.discriminator_hidden, n_classes, c.conditioning, c.dropout)
        self.grl_coeff = grl_coefficient(0.0, c.grl_gamma)

    # -- the graph ---------------------------------------------------------------------------------------------
    def _states(self, batch) -> Tensor:
        return super()._encode(batch)[0]                                            # [N, hidden]

    def _propagate(self, h: Tensor, domain: Tensor) -> Tensor:
        c = self.config
        g = centre_graph(h, domain, self.centres, c.own_centres, c.cross_centres)
        own, cross = g["centre", "own_domain", "utterance"], g["centre", "cross_domain", "utterance"]
        ei = torch.cat([own.edge_index, cross.edge_index], 1)                        # [2, E] centre → utterance
        rel = torch.cat([torch.full((own.edge_index.size(1),), 1, device=h.device),
                         torch.full((cross.edge_index.size(1),), 2, device=h.device)])
        # a snapshot: the centres move in place after the forward pass (a buffer update), and backward needs the
        # values the attention read
        x = g["centre"].x.clone()                                                    # [2K, hidden]
        for layer in self.graph:
            h = layer(h, x, ei, rel)                                                 # [N, hidden]
        return h

    def _encode(self, batch) -> tuple[Tensor, dict[str, Any]]:
        return self._propagate(self._states(batch), utterance_domain(batch)), {}

    # -- training ----------------------------------------------------------------------------------------------
    def on_train_step(self, step: int, total_steps: int) -> None:
        self.grl_coeff = grl_coefficient(step / max(1, total_steps), self.config.grl_gamma)

    def forward_train(self, batch, padding: Tensor | None = None, reduce: Callable[[Tensor], Tensor] | None = None
                      ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """The logits and the adaptation losses of a training batch; moves the centres. ``padding`` and ``reduce``:
        from the trainer under DDP (see :meth:`~kgemo.training.module.TaskModule.training_step`)."""
        c, task = self.config, self.tasks[0]
        h = self._states(batch)                                                      # [N, hidden]
        h2 = self._propagate(h, utterance_domain(batch))                             # [N, hidden]
        logits = {t: head(h2) for t, head in self.heads.items()}
        probs = logits[task].softmax(-1)                                             # [N, C]
        aux = {}
        y = batch["utterance"][f"y_{task}"]
        domain = training_domain(batch, padding)                                     # [N], -1: padding
        if c.domain_weight > 0:
            weight = self._importance(domain, y) if c.importance_weighting else None
            aux["domain_loss"] = c.domain_weight * self.adversary.loss(h2, domain, probs, self.grl_coeff, weight,
                                                                       reduce)
        if c.alignment_weight > 0:
            aux["alignment_loss"] = c.alignment_weight * self._alignment_loss(h, domain, probs, reduce)
        self._update_centres(h, domain, y, probs, reduce)
        return logits, aux

    def _importance(self, domain: Tensor, y: Tensor) -> Tensor:
        r"""Per-sample weights of the domain loss: :math:`\pi_t(y_i) / \pi_s(y_i)` for a source utterance of gold
        class :math:`y_i` (clipped to [1/max, max]), 1 for a target utterance. The source then enters the
        alignment with the target's class proportions, so aligning the domains does not ask the target to look
        as neutral as the source (Tachet des Combes et al., 2020)."""
        prior = self.centres.prior
        ratio = (prior[TARGET] / prior[SOURCE].clamp_min(1e-6)).clamp(1 / self.config.max_importance,
                                                                       self.config.max_importance)
        src = (domain == SOURCE) & (y >= 0)
        weight = torch.ones(domain.size(0), device=domain.device, dtype=ratio.dtype)
        weight[src] = ratio[y[src]]
        return weight

    def _alignment_loss(self, h: Tensor, domain: Tensor, probs: Tensor,
                        reduce: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        r"""Class-level alignment through the centres (the semantic loss of Xie et al.'s moving semantic transfer):

        .. math::
            \mathcal{L}_{align} = \frac{1}{|\mathcal{C}_B|} \sum_{c \in \mathcal{C}_B} \frac{1}{F}
                \Big\lVert \frac{1}{|B_c|} \sum_{i \in B_c} \mathbf{h}_i - \bar{\mathbf{c}}_{s,c} \Big\rVert^2

        over the classes :math:`\mathcal{C}_B` that the batch's target utterances are predicted as (:math:`B_c`,
        pseudo-labels at or above the threshold), with :math:`\bar{\mathbf{c}}_{s,c}` the mean of the source
        centres of class c (a buffer: only the target states move). Marginal alignment ignores classes; this pulls
        each target class towards its own source class, so it does not mix classes when the class proportions
        of the domains differ (DailyDialog is 83% neutral, MELD 47%). Under DDP (``reduce``) the class sums and
        counts run over the global batch.
        """
        tgt = domain == TARGET
        if reduce is None and not tgt.any():
            return h.new_zeros(())
        classes = self._target_classes(h[tgt].detach(), probs[tgt].detach())
        keep = classes >= 0
        if reduce is None and not keep.any():
            return h.new_zeros(())
        ht, ct = h[tgt][keep], classes[keep]
        n_classes = self.centres.num_classes
        sums = h.new_zeros(n_classes, h.size(1)).index_add(0, ct, ht)                # [C, F]
        counts = torch.bincount(ct, minlength=n_classes)                            # [C]
        if reduce is not None:  # every process takes part, whatever its share holds
            sums, counts = reduce(sums), reduce(counts)
        present = counts > 0
        if not present.any():
            return h.new_zeros(())
        means = sums[present] / counts[present, None].to(h.dtype)
        source = self.centres.centres[SOURCE].view(n_classes, self.centres.per_class, -1).mean(1)   # [C, F]
        return ((means - source[present].to(h.dtype)) ** 2).mean()

    @torch.no_grad()
    def _update_centres(self, h: Tensor, domain: Tensor, y: Tensor, probs: Tensor,
                        reduce: Callable[[Tensor], Tensor] | None = None) -> None:
        src, tgt = (domain == SOURCE) & (y >= 0), domain == TARGET
        # under DDP (reduce) every process updates both domains, its share possibly empty, so that all take part in
        # the same sums; an update from no sample leaves a centre as it is
        if reduce is not None or src.any():
            self.centres.update(SOURCE, h[src], y[src], reduce)                     # gold labels: source only
            onehot = torch.nn.functional.one_hot(y[src], self.centres.num_classes)
            self.centres.update_prior(SOURCE, onehot, self.config.prior_momentum, reduce)
        if reduce is not None or tgt.any():
            self.centres.update(TARGET, h[tgt], self._target_classes(h[tgt], probs[tgt]), reduce)
            self.centres.update_prior(TARGET, probs[tgt], self.config.prior_momentum, reduce)

    def _target_classes(self, h: Tensor, probs: Tensor) -> Tensor:
        """The class a target utterance counts for: its pseudo-label (-1 below the threshold), or the class of the
        nearest target centre."""
        if self.config.target_update == "nearest":
            idx, _ = self.centres.nearest(h, TARGET, 1)
            return self.centres.centre_class[idx[:, 0]]
        conf, pred = probs.max(-1)
        return torch.where(conf >= self.config.pseudo_label_threshold, pred, torch.full_like(pred, -1))

    @torch.no_grad()
    def prepare_training(self, batches: Iterable) -> None:
        """Initialise the centres from every training utterance's state (model in eval mode): the source's from
        its gold labels (k-means++ within each class when ``centres_per_class`` > 1), the target's by k-means
        started at the source centres, or from pseudo-labels. Centres already initialised (a resumed run) are
        left alone."""
        if bool(self.centres.initialised.all()):
            return
        was_training = self.training
        self.eval()
        gen = torch.Generator().manual_seed(0)
        hs, doms, ys = [], [], []
        task = self.tasks[0]
        for batch in batches:
            hs.append(self._states(batch))
            doms.append(utterance_domain(batch))
            ys.append(batch["utterance"][f"y_{task}"])
        h, dom, y = torch.cat(hs), torch.cat(doms), torch.cat(ys)
        src, tgt = dom == SOURCE, dom == TARGET
        if not src.any():
            raise KgemoError("cluster_graph: no source-domain utterance in the train split; check graph.source")
        self.centres.init_domain(SOURCE, h[src], classes=torch.where(y[src] >= 0, y[src], -1), generator=gen)
        labelled = y[src][y[src] >= 0]
        # both domains start with the source's class proportions (importance weights 1), the target's then follow
        # the model's predictions
        self.centres.prior[:] = torch.bincount(labelled, minlength=self.centres.num_classes).float() / \
            max(1, labelled.numel())
        if not tgt.any():  # no unlabelled target data: the target centres start as copies of the source's
            self.centres.centres[TARGET] = self.centres.centres[SOURCE]
            self.centres.initialised[TARGET] = True
        elif self.config.target_init == "kmeans":
            self.centres.init_domain(TARGET, h[tgt], seeds=self.centres.centres[SOURCE], generator=gen)
        else:
            self.centres.centres[TARGET] = self.centres.centres[SOURCE]
            logits = torch.cat([self.heads[task](self._propagate(hb, db)) for hb, db in zip(hs, doms)])
            self.centres.init_domain(TARGET, h[tgt], classes=logits[tgt].argmax(-1), generator=gen)
        self.train(was_training)
