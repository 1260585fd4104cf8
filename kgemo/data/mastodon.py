"""Mastodon (Cerisara et al. 2018) in Co-GAT's release: dialogue acts and sentiment of short Mastodon threads.

Files ``mastodon/{train,dev,test}.json`` + ``mastodon/{split}_adj.txt`` (RaleLee/Co-GAT, ``dataset/mastodon``):

* ``{split}.json`` — a list of dialogues, each a list of ``{"utterance", "sentiment", "act"}``; sentiment ``+`` /
  ``-`` / ``*`` → ``positive`` / ``negative`` / ``neutral``; ``act`` one of 15 letters
  (``I W Q A O R S H D T V J E M F``). Text is lowercased and tokenized, links replaced by ``<url>``.
* ``{split}_adj.txt`` — line *k* belongs to dialogue *k*: ``N i-j i-j ...`` with ``N`` the number of utterances and
  1-based links ``i-j`` (self-loops included). It is the speaker-aware graph Co-GAT builds on. The links are kept,
  0-based and in file order, on :attr:`Conversation.reply_to`; graph builders use them, not speaker names.

Speakers: the corpus has no author names. Each utterance's speaker is its connected component in the link graph
(self-loops aside), named ``A``, ``B``, ... in order of first appearance. In Co-GAT's files every link joins
utterance *i* to *i + 2*, so this gives two alternating parties ``A B A B ...``, exactly the assumption the graph
encodes; a single-utterance thread has speaker ``A``.

Published counts: 243 / 26 / 267 dialogues, 967 / 108 / 1142 utterances.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataFormatError
from .conversation import Conversation, Utterance
from .labels import label_space
from .report import LoadReport
from ._io import (Problems, canonical_split, dataset_dir, finish, has_bad_bytes, party, read_text, require,
                  split_lines)
from .text import normalise_text

__all__ = ["load_mastodon", "mastodon_files", "parse_adjacency"]


def mastodon_files(split: str, root: str | Path | None = None) -> list[Path]:
    """``[{split}.json, {split}_adj.txt]`` (raises :class:`~kgemo.errors.DataNotFoundError` if absent)."""
    split = canonical_split(split)
    folder = dataset_dir(root, "mastodon", "train.json")
    return [require(folder / f"{split}.json", "mastodon"), require(folder / f"{split}_adj.txt", "mastodon")]


def parse_adjacency(line: str, n_utterances: int, *, path=None, line_no=None) -> list[tuple[int, int]]:
    """``"3 1-1 2-2 3-3 1-3"`` → ``[(0, 0), (1, 1), (2, 2), (0, 2)]`` after checking it against the dialogue.

    Raises:
        DataFormatError: ``N`` differs from ``n_utterances``, a link is not ``i-j`` with integers, or an index is
            outside ``1..N``; the error names ``path`` and ``line_no``.
    """
    tokens = line.split()
    if not tokens or not tokens[0].isdigit():
        raise DataFormatError(f"expected 'N i-j i-j ...', got {line[:60]!r}", path=path, line=line_no)
    n = int(tokens[0])
    if n != n_utterances:
        raise DataFormatError(f"N = {n}, but the dialogue has {n_utterances} utterances", path=path, line=line_no)
    links = []
    for tok in tokens[1:]:
        i, sep, j = tok.partition("-")
        if not (sep and i.isdigit() and j.isdigit()):
            raise DataFormatError(f"link {tok!r} is not 'i-j'", path=path, line=line_no)
        i, j = int(i), int(j)
        if not (1 <= i <= n and 1 <= j <= n):
            raise DataFormatError(f"link {tok} is outside 1..{n}", path=path, line=line_no)
        links.append((i - 1, j - 1))
    return links


def _speakers(n: int, links: list[tuple[int, int]]) -> list[str]:
    """Connected components of the link graph, named A, B, ... by first utterance (union-find)."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in links:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    names: dict[int, str] = {}
    return [names.setdefault(find(i), party(len(names))) for i in range(n)]


def load_mastodon(split: str, root: str | Path | None = None, strict: bool = True,
                  report: LoadReport | None = None) -> list[Conversation]:
    """Load one Mastodon split: labels ``sentiment`` and ``act``, links on ``reply_to``.

    Args:
        split: ``train``, ``dev`` or ``test``.
        root: data root holding ``mastodon/`` (or that folder itself).
        strict: raise on the first bad dialogue; with ``False`` skip it and count it in ``report``.
        report: filled with counts and the first problems.

    Example:
        >>> convs = load_mastodon("dev")
        >>> len(convs), convs[0].reply_to, convs[0].speakers
        (26, [(0, 0), (1, 1), (2, 2), (0, 2)], ['A', 'B', 'A'])
    """
    split = canonical_split(split)
    report = report if report is not None else LoadReport()
    report.dataset, report.split = "mastodon", split
    problems = Problems(strict, report)
    json_path, adj_path = mastodon_files(split, root)

    raw, bad_bytes = read_text(json_path, problems)
    try:
        dialogues = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"invalid JSON ({exc.msg}, column {exc.colno})", path=json_path,
                              line=exc.lineno) from None
    if not isinstance(dialogues, list):
        raise DataFormatError("expected a JSON list of dialogues", path=json_path)
    adjacency = split_lines(read_text(adj_path, problems)[0])
    if len(adjacency) != len(dialogues):
        raise DataFormatError(f"{len(adjacency)} lines, but {json_path.name} has {len(dialogues)} dialogues",
                              path=adj_path, line=min(len(adjacency), len(dialogues)) + 1)

    sentiments, acts = label_space("mastodon", "sentiment"), label_space("mastodon", "act")
    conversations = []
    for k, (dialogue, adj_line) in enumerate(zip(dialogues, adjacency)):
        items = _items(dialogue)
        if isinstance(items, str):
            problems("malformed_row", DataFormatError(items, path=json_path, dialogue=k), "dialogue")
            continue
        try:
            links = parse_adjacency(adj_line, len(items), path=adj_path, line_no=k + 1)
        except DataFormatError as exc:
            problems("bad_adjacency", exc, "dialogue")
            continue
        speakers = _speakers(len(items), links)
        utts = []
        for i, (text, sentiment, act) in enumerate(items):
            at = f"{k} utterance {i + 1}"
            if not text.strip():
                problems("empty_utterance", DataFormatError("empty utterance", path=json_path, dialogue=at),
                         "dialogue")
                break
            if bad_bytes and has_bad_bytes(text):
                problems("bad_utf8", DataFormatError("invalid UTF-8 bytes", path=json_path, dialogue=at), "dialogue")
                break
            try:
                labels = {"sentiment": sentiments.parse(sentiment, path=json_path, dialogue=at),
                          "act": acts.parse(act, path=json_path, dialogue=at)}
            except DataFormatError as exc:
                problems("unknown_label", exc, "dialogue")
                break
            utts.append(Utterance(normalise_text(text), speakers[i], labels, str(i)))
        else:
            conversations.append(Conversation(str(k), utts, "mastodon", split, reply_to=links))
    return finish(report, conversations)


def _items(dialogue) -> list[tuple[str, str, str]] | str:
    """``[(utterance, sentiment, act), ...]``, or what is wrong with the dialogue's structure."""
    if not isinstance(dialogue, list) or not dialogue:
        return "a dialogue must be a non-empty list of utterances"
    out = []
    for i, u in enumerate(dialogue):
        if not isinstance(u, dict):
            return f"utterance {i + 1} is not a JSON object"
        missing = [key for key in ("utterance", "sentiment", "act") if key not in u]
        if missing:
            return f"utterance {i + 1} lacks {missing}"
        if not all(isinstance(u[key], str) for key in ("utterance", "sentiment", "act")):
            return f"utterance {i + 1}: utterance, sentiment and act must be strings"
        out.append((u["utterance"], u["sentiment"], u["act"]))
    return out
