"""``cross_domain`` graph: the conversation graph plus the domain (source or target) of every utterance.

Schema card: graphs/cross_domain.md. The class-centre nodes of the cluster graph are attached per batch by the
model (:func:`kgemo.adapt.centre_graph`), since the centres move every training step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
from torch_geometric.data import HeteroData

from ..data.conversation import Conversation
from ..data.labels import LabelSpace
from ..errors import KgemoError
from .base import register_builder
from .conversation_graph import ConversationGraphBuilder, ConversationGraphSettings

__all__ = ["CrossDomainGraphBuilder", "CrossDomainGraphSettings", "SOURCE", "TARGET"]

#: Domain ids.
SOURCE, TARGET = 0, 1


@dataclass
class CrossDomainGraphSettings(ConversationGraphSettings):
    """Options of the ``cross_domain`` graph: the conversation graph's, and which datasets are the source domain."""

    source: list[str] = field(default_factory=list)  # datasets of the source domain (labelled); every other
                                                     # conversation — the target datasets, user text — is target

    def __post_init__(self):
        super().__post_init__()
        if isinstance(self.source, str):
            self.source = [self.source]
        self.source = [str(s) for s in self.source]
        if not self.source:
            raise KgemoError("the cross_domain graph needs graph.source: the source domain's datasets, e.g. "
                             "[dailydialog]")


@register_builder
class CrossDomainGraphBuilder(ConversationGraphBuilder):
    r"""The ``conversation`` graph with ``utterance.domain`` [N]: 0 when the conversation's dataset is one of
    ``source``, else 1 (target). Everything else as :class:`~kgemo.graphs.ConversationGraphBuilder`.

    Unlabelled user text (``Conversation.dataset`` is ``None``) counts as target: an adapted model is meant for the
    target domain.

    Args:
        window: context half-width W in utterances.
        past_only: only earlier utterances are context.
        source: the source domain's dataset names.
    """

    name = "cross_domain"
    version = "1"
    settings_class = CrossDomainGraphSettings
    cache = False  # as cheap to build as the conversation graph

    def domain_of(self, conv: Conversation) -> int:
        return SOURCE if conv.dataset in self.settings.source else TARGET

    def build(self, conv: Conversation, features: np.ndarray, label_spaces: Mapping[str, LabelSpace],
              knowledge: Mapping[str, Any] | None = None) -> HeteroData:
        data = super().build(conv, features, label_spaces, knowledge)
        data["utterance"].domain = torch.full((len(conv),), self.domain_of(conv), dtype=torch.long)
        return data
