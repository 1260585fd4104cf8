"""``conversation`` graph: utterances, their speakers, and windowed context edges.

Schema card: graphs/conversation.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch_geometric.data import HeteroData

from ..data.conversation import Conversation
from ..data.labels import LabelSpace
from ..errors import KgemoError
from ..settings import Settings
from .base import GraphBuilder, label_tensor, register_builder

__all__ = ["ConversationGraphBuilder", "ConversationGraphSettings", "context_edges"]


@dataclass
class ConversationGraphSettings(Settings):
    """Options of the ``conversation`` graph (and of the graphs built on it)."""

    window: int = 8            # context half-width W: utterances within W turns are linked
    past_only: bool = False    # only earlier utterances are context (causal / online use, KET's setting)

    def __post_init__(self):
        self.window, self.past_only = int(self.window), bool(self.past_only)
        if self.window < 0:
            raise KgemoError(f"window must be >= 0, got {self.window}")


def context_edges(speakers: np.ndarray, window: int, past_only: bool = False):
    """Edges j → i for every pair with ``0 ≤ i − j ≤ window`` (or ``|i − j| ≤ window``), self-loops included.

    Linear in the conversation length (N · (2W + 1) edges), so a 10,000-utterance conversation stays cheap.

    Returns:
        ``(edge_index [2, E], rel_pos [E] = i − j, same_speaker [E])`` as tensors.
    """
    n = len(speakers)
    offsets = np.arange(0 if past_only else -window, window + 1)  # j = i - offset
    i = np.repeat(np.arange(n), len(offsets))
    off = np.tile(offsets, n)
    j = i - off
    keep = (j >= 0) & (j < n)
    i, j, off = i[keep], j[keep], off[keep]
    same = speakers[i] == speakers[j]
    return (torch.from_numpy(np.stack([j, i])).long(), torch.from_numpy(off).long(),
            torch.from_numpy(same))


@register_builder
class ConversationGraphBuilder(GraphBuilder):
    r"""Utterance-level conversation graph (no knowledge).

    Node types:
        * ``utterance``: ``x`` [N, d] sentence features, ``speaker`` [N] (speaker index within the conversation),
          ``position`` [N], ``y_<task>`` [N] label ids (-1 = unlabelled).
        * ``speaker``: one node per distinct speaker (``num_nodes`` only).

    Edge types:
        * ``(speaker, speaks, utterance)``.
        * ``(utterance, context, utterance)``: j → i for :math:`0 \le i - j \le W` (``past_only``) or
          :math:`|i - j| \le W`, self-loops included; ``rel_pos`` = i − j, ``same_speaker`` (bool).

    Args:
        window: context half-width W in utterances.
        past_only: only earlier utterances are context (online / causal use).
    """

    name = "conversation"
    version = "1"
    settings_class = ConversationGraphSettings
    cache = False  # ~6,000 conversations/s to build vs ~3,300/s to read back (scripts/benchmark.py train)

    def build(self, conv: Conversation, features: np.ndarray, label_spaces: Mapping[str, LabelSpace],
              knowledge: Mapping[str, Any] | None = None) -> HeteroData:
        data = HeteroData()
        n = len(conv)
        speakers = np.asarray(conv.speaker_ids(), dtype=np.int64)
        u = data["utterance"]
        u.x = torch.as_tensor(np.asarray(features, dtype=np.float32))
        u.speaker = torch.from_numpy(speakers)
        u.position = torch.arange(n)
        for task, space in label_spaces.items():
            u[f"y_{task}"] = label_tensor(conv, task, space)
        data["speaker"].num_nodes = int(speakers.max()) + 1
        data["speaker", "speaks", "utterance"].edge_index = torch.stack(
            [torch.from_numpy(speakers), torch.arange(n)])
        ei, rel, same = context_edges(speakers, self.settings.window, self.settings.past_only)
        ctx = data["utterance", "context", "utterance"]
        ctx.edge_index, ctx.rel_pos, ctx.same_speaker = ei, rel, same
        return data
