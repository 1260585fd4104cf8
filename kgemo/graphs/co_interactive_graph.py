"""``co_interactive`` graph: Co-GAT's 2N task nodes (act, sentiment) and its speaker-aware utterance graph.

Schema card: graphs/co_interactive.md.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch_geometric.data import HeteroData

from ..data.conversation import Conversation
from ..data.labels import LabelSpace
from ..errors import KgemoError
from ..settings import Settings
from .base import GraphBuilder, register_builder
from .conversation_graph import ConversationGraphBuilder

__all__ = ["CoInteractiveGraphBuilder", "CoInteractiveGraphSettings", "window_pairs", "speaker_links", "word_hashes",
           "SPEAKER_LINKS"]

#: How the speaker-aware utterance graph is made (see :func:`speaker_links`).
SPEAKER_LINKS = ("reply_to", "alternate", "same_speaker")


@dataclass
class CoInteractiveGraphSettings(Settings):
    """Options of the ``co_interactive`` graph."""

    window: int | None = None         # within-task context half-width in utterances; None = all (Co-GAT)
    cross_window: int | None = None   # cross-task half-width; None = every node of the other task (Co-GAT)
    cross_task: bool = True           # add the cross-task edges (False: the ablation)
    speaker_links: str = "reply_to"   # reply_to (Mastodon), alternate (DailyDialog, as Co-GAT's files), same_speaker
    words: bool = True                # add the word nodes (the act branch's surface cues)

    def __post_init__(self):
        if self.speaker_links not in SPEAKER_LINKS:
            raise KgemoError(f"speaker_links must be one of {SPEAKER_LINKS}, got {self.speaker_links!r}")
        for name in ("window", "cross_window"):
            w = getattr(self, name)
            if w is not None:
                if int(w) < 0:
                    raise KgemoError(f"{name} must be >= 0 or None, got {w}")
                setattr(self, name, int(w))
        self.cross_task, self.words = bool(self.cross_task), bool(self.words)


_WORD = re.compile(r"\w+|[^\w\s]")


def word_hashes(text: str) -> np.ndarray:
    """CRC-32 of each distinct lowercased word or punctuation mark of ``text``, in order of first appearance.

    A stable hash (not Python's salted ``hash``), so cached graphs and saved models agree across processes; the
    model reduces it modulo its own number of embedding buckets (the hashing trick: no vocabulary file).

    Example:
        >>> len(word_hashes("Is it? is IT?"))
        3
    """
    words = list(dict.fromkeys(_WORD.findall(text.lower())))
    return np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), dtype=np.int64, count=len(words))


def window_pairs(n: int, window: int | None) -> torch.Tensor:
    """Edges j → i for every pair of positions with :math:`|i - j| \\le W` (all pairs when ``window`` is None).

    Self pairs (i, i) are included. Vectorised: N · (2W + 1) candidates, no Python loop over edges.

    Returns:
        ``edge_index`` [2, E], sorted by target then source.
    """
    w = n - 1 if window is None else min(int(window), n - 1)
    offsets = np.arange(w, -w - 1, -1)               # j = i - offset ascends within each target
    i = np.repeat(np.arange(n), len(offsets))
    j = i - np.tile(offsets, n)
    keep = (j >= 0) & (j < n)
    return torch.from_numpy(np.stack([j[keep], i[keep]])).long()


def _undirected(pairs: np.ndarray) -> np.ndarray:
    """Both directions of every (i, j) pair, duplicates removed, sorted by target then source ([2, E])."""
    both = np.concatenate([pairs, pairs[:, ::-1]]) if len(pairs) else np.zeros((0, 2), np.int64)
    both = np.unique(both, axis=0)                      # rows (a, b), lexicographic
    order = np.lexsort((both[:, 0], both[:, 1])) if len(both) else np.zeros(0, np.int64)
    return both[order].T.copy()


def speaker_links(conv: Conversation, mode: str) -> torch.Tensor:
    """The speaker-aware utterance graph of Co-GAT as undirected ``edge_index`` [2, E] (both directions).

    Args:
        conv: the conversation.
        mode:
            * ``"reply_to"`` — the conversation's own links (:attr:`Conversation.reply_to`, Mastodon's
              ``*_adj.txt``), self-loops exactly as the file has them. A conversation without links (e.g. user
              input to the annotator) falls back to ``"same_speaker"``.
            * ``"alternate"`` — self-loops plus i ↔ i + 2, whatever the speakers: what Co-GAT's DailyDialog
              ``*_adj.txt`` files hold (the same speaker in a two-party dialogue).
            * ``"same_speaker"`` — self-loops plus each utterance ↔ the previous utterance by the same speaker.
              For strictly alternating two-party dialogues (all of DailyDialog, all of Mastodon's speakers as
              kgemo derives them) this equals ``"alternate"`` and ``"reply_to"``.
    """
    n = len(conv)
    if mode == "reply_to" and conv.reply_to is not None:
        pairs = np.asarray(conv.reply_to, dtype=np.int64).reshape(-1, 2)
    elif mode == "alternate":
        i = np.arange(n)
        pairs = np.concatenate([np.stack([i, i], 1), np.stack([i[:-2], i[:-2] + 2], 1)])
    elif mode in ("same_speaker", "reply_to"):
        speakers = np.asarray(conv.speaker_ids(), dtype=np.int64)
        pos = np.arange(n)
        order = np.lexsort((pos, speakers))             # grouped by speaker, in time order within a group
        same = speakers[order][1:] == speakers[order][:-1]
        pairs = np.concatenate([np.stack([pos, pos], 1), np.stack([order[:-1][same], order[1:][same]], 1)])
    else:
        raise ValueError(f"unknown speaker_links mode {mode!r}; expected one of {SPEAKER_LINKS}")
    return torch.from_numpy(_undirected(pairs)).long()


@register_builder
class CoInteractiveGraphBuilder(GraphBuilder):
    r"""Co-GAT's graphs for joint dialog act + sentiment recognition (Qin et al., AAAI 2021).

    For a conversation of N utterances: the conversation graph's utterance and speaker nodes, a speaker-aware
    utterance graph, and 2N task nodes — ``act`` i and ``sentiment`` i stand for the act and the sentiment
    (DailyDialog: emotion) of utterance i — linked within their task over the dialogue context and across tasks.

    Node types:
        * ``utterance`` [N]: ``x`` sentence features, ``speaker``, ``position``, ``y_<task>`` (-1 = unlabelled), as
          in :class:`~kgemo.graphs.ConversationGraphBuilder`.
        * ``speaker``: one node per distinct speaker.
        * ``act`` [N], ``sentiment`` [N]: ``num_nodes`` only; node i of each corresponds to utterance i (in a
          batch too, since all three types have N nodes per conversation).

        * ``word`` [T] (``words=True``): ``hash`` [T] CRC-32 of the word (:func:`word_hashes`), one node per
          distinct lowercased word or punctuation mark of each utterance — the word-level channel (Co-GAT's own
          utterance encoder reads words; acts in particular are signalled by words such as "?" or "thanks").

    Edge types (every edge j → i; all symmetric but ``(word, in, utterance)``):
        * ``(speaker, speaks, utterance)``.
        * ``(word, in, utterance)`` (``words=True``).
        * ``(utterance, speaker_link, utterance)``: see :func:`speaker_links` (``speaker_links`` option).
        * ``(act, context, act)``, ``(sentiment, context, sentiment)``: :math:`|i - j| \le W`, self-loops
          included (W = ``window``; None = the whole conversation, as in Co-GAT).
        * ``(act, cross, sentiment)``, ``(sentiment, cross, act)``: :math:`|i - j| \le W_x` (``cross_window``;
          None = every node of the other task, as in Co-GAT). Absent when ``cross_task`` is False (ablation).

    Args:
        window: within-task context half-width in utterances; None = all.
        cross_window: cross-task half-width; None = all.
        cross_task: add the cross-task edges.
        speaker_links: ``"reply_to"`` (Mastodon), ``"alternate"`` (DailyDialog, as Co-GAT's files) or
            ``"same_speaker"``.
        words: add the ``word`` nodes.
    """

    name = "co_interactive"
    version = "1"
    settings_class = CoInteractiveGraphSettings

    def __init__(self, settings: CoInteractiveGraphSettings | None = None, **options: Any):
        super().__init__(settings, **options)
        # Utterance and speaker nodes exactly as the conversation graph makes them.
        self._utterances = ConversationGraphBuilder(window=0)

    def build(self, conv: Conversation, features: np.ndarray, label_spaces: Mapping[str, LabelSpace],
              knowledge: Mapping[str, Any] | None = None) -> HeteroData:
        data = self._utterances.build(conv, features, label_spaces, knowledge)
        # The task nodes' context edges replace the conversation graph's utterance context edges.
        del data["utterance", "context", "utterance"]
        n = len(conv)
        data["utterance", "speaker_link", "utterance"].edge_index = speaker_links(conv, self.settings.speaker_links)
        if self.settings.words:
            hashes = [word_hashes(u.text) for u in conv.utterances]
            counts = np.fromiter((len(h) for h in hashes), dtype=np.int64, count=n)
            data["word"].hash = torch.from_numpy(np.concatenate(hashes))
            data["word"].num_nodes = int(counts.sum())
            data["word", "in", "utterance"].edge_index = torch.stack(
                [torch.arange(int(counts.sum())), torch.from_numpy(np.repeat(np.arange(n), counts))])
        data["act"].num_nodes = n
        data["sentiment"].num_nodes = n
        context = window_pairs(n, self.settings.window)
        data["act", "context", "act"].edge_index = context
        data["sentiment", "context", "sentiment"].edge_index = context.clone()
        if self.settings.cross_task:
            cross = window_pairs(n, self.settings.cross_window)
            data["act", "cross", "sentiment"].edge_index = cross
            data["sentiment", "cross", "act"].edge_index = cross.clone()
        return data
