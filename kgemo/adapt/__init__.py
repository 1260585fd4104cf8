"""Unsupervised domain adaptation for ERC: class centres, the cross-domain cluster graph, gradient reversal.

The models built from these parts live in :mod:`kgemo.models` (``cluster_graph``, ``dann``); the trainer trains them
on labelled source conversations plus target conversations whose labels were removed (``data.target_datasets``).
Nothing here reads a target label: target centres come from k-means or from the model's own pseudo-labels.
See docs/adapt.md.
"""
from .. import _pyg  # noqa: F401  (PyG without the transformers import it does not need: kgemo/_pyg.py)
from .centre_attention import CentreAttention, CentreAttentionLayer
from .centre_graph import RELATIONS, centre_graph
from .centres import ClassCentres
from .domain_adversary import CONDITIONING, DomainAdversary
from .gradient_reversal import GradientReversal, grad_reverse, grl_coefficient
from .kmeans import kmeans, kmeans_pp

__all__ = [
    "ClassCentres", "kmeans", "kmeans_pp", "centre_graph", "RELATIONS", "CentreAttention", "CentreAttentionLayer",
    "DomainAdversary", "CONDITIONING", "GradientReversal", "grad_reverse", "grl_coefficient",
]
