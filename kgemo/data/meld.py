"""MELD (text): ``meld/{train,dev,test}_sent_emo.csv``, the official CSVs of declare-lab/MELD.

Columns ``Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, StartTime,
EndTime``; one row per utterance. A conversation is one ``Dialogue_ID`` with its rows ordered by ``Utterance_ID``.
Labels: ``emotion`` (7 classes, :data:`~kgemo.data.labels.EKMAN7`) and ``sentiment`` (neutral / positive /
negative).

Text decoding: the files are read as UTF-8 (a bad byte is a :class:`~kgemo.errors.DataFormatError` naming file
and line, or a skipped row with ``strict=False``). The official files are valid UTF-8 but hold Windows-1252
punctuation as C1 control characters (``company\\x92s``); :func:`~kgemo.data.text.normalise_text` (the one
normaliser every loader and annotation input share) maps those to the characters they stand for (``company’s``),
which is lossless for this release.

Published counts: 9989 / 1109 / 2610 utterances in 1038 / 114 / 280 dialogues (train ``Dialogue_ID`` 60 is absent
in the official release).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ..errors import DataFormatError
from .conversation import Conversation, Utterance
from .labels import label_space
from .report import LoadReport
from ._io import Problems, canonical_split, csv_records, dataset_dir, finish, require
from .text import normalise_text

__all__ = ["load_meld", "meld_files"]

_FILES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
_REQUIRED = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")


def meld_files(split: str, root: str | Path | None = None) -> list[Path]:
    """The CSV file of ``split`` (raises :class:`~kgemo.errors.DataNotFoundError` if absent)."""
    split = canonical_split(split)
    return [require(dataset_dir(root, "meld", _FILES["train"]) / _FILES[split], "meld")]


def load_meld(split: str, root: str | Path | None = None, strict: bool = True,
              report: LoadReport | None = None) -> list[Conversation]:
    """Load one MELD split as conversations ordered by ``Dialogue_ID``.

    Args:
        split: ``train``, ``dev`` or ``test``.
        root: data root holding ``meld/`` (or the ``meld`` folder itself); default :func:`kgemo.storage.data_root`.
        strict: raise on the first bad row; with ``False`` skip bad rows and count them in ``report``.
        report: filled with counts and the first problems.

    Example:
        >>> convs = load_meld("dev")
        >>> len(convs), sum(len(c) for c in convs)
        (114, 1109)
        >>> convs[0].speakers[:2], convs[0][0].labels
        (['Phoebe', 'Monica'], {'emotion': 'sadness', 'sentiment': 'negative'})
    """
    split = canonical_split(split)
    report = report if report is not None else LoadReport()
    report.dataset, report.split = "meld", split
    problems = Problems(strict, report)
    path = meld_files(split, root)[0]
    emotions, sentiments = label_space("meld", "emotion"), label_space("meld", "sentiment")

    dialogues: dict[int, dict[int, Utterance]] = defaultdict(dict)
    meta: dict[int, dict] = {}
    for line, row in csv_records(path, problems, _REQUIRED):
        try:
            dia, uid = int(row["Dialogue_ID"]), int(row["Utterance_ID"])
        except ValueError:
            problems("malformed_row", DataFormatError(
                f"Dialogue_ID / Utterance_ID must be integers, got {row['Dialogue_ID']!r} / "
                f"{row['Utterance_ID']!r}", path=path, line=line))
            continue
        text, speaker = normalise_text(row["Utterance"]), row["Speaker"].strip()
        if not text:
            problems("empty_utterance", DataFormatError("empty utterance", path=path, line=line, dialogue=dia))
            continue
        if not speaker:
            problems("missing_speaker", DataFormatError("missing speaker", path=path, line=line, dialogue=dia))
            continue
        try:
            labels = {"emotion": emotions.parse(row["Emotion"].strip(), path=path, line=line, dialogue=dia),
                      "sentiment": sentiments.parse(row["Sentiment"].strip(), path=path, line=line, dialogue=dia)}
        except DataFormatError as exc:
            problems("unknown_label", exc)
            continue
        if uid in dialogues[dia]:
            problems("duplicate_id", DataFormatError(f"Utterance_ID {uid} appears twice", path=path, line=line,
                                                     dialogue=dia))
            continue
        dialogues[dia][uid] = Utterance(text, speaker, labels, str(uid))
        if dia not in meta:
            meta[dia] = {k: int(row[c]) for k, c in (("season", "Season"), ("episode", "Episode"))
                         if row.get(c, "").strip().isdigit()}

    conversations = [
        Conversation(str(dia), [utts[u] for u in sorted(utts)], "meld", split, meta=meta[dia])
        for dia, utts in sorted(dialogues.items()) if utts
    ]
    return finish(report, conversations)
