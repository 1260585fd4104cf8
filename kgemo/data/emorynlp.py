"""EmoryNLP: ``emorynlp/emory_{train,val,test}.csv`` (the Friends emotion corpus of emorynlp/emotion-detection).

Columns ``Utterance, Speaker, Emotion, Scene_ID, Utterance_ID, Season, Episode, Start_Time, End_Time``. A
conversation is one scene, ``(Season, Episode, Scene_ID)``, ordered by ``Utterance_ID``; its id is
``s01e02c03``. Labels: ``emotion`` (Neutral, Joyful, Peaceful, Powerful, Scared, Mad, Sad). The ``val`` file is
the ``dev`` split.

``Speaker`` is a Python list written as text (``"['Monica Geller']"``); it is parsed with
:func:`ast.literal_eval` (never ``eval``). A line spoken by several people (``['Monica Geller', 'Phoebe
Buffay']``) gets one speaker name: the distinct names sorted and joined with `` & ``, so the same group always
gets the same name. A plain name without brackets is accepted as is.

Published counts: 7551 / 954 / 984 utterances in 659 / 89 / 79 scenes.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from ..errors import DataFormatError
from .conversation import Conversation, Utterance
from .labels import label_space
from .report import LoadReport
from ._io import Problems, canonical_split, csv_records, dataset_dir, finish, require
from .text import normalise_text

__all__ = ["load_emorynlp", "emorynlp_files", "parse_speakers"]

_FILES = {"train": "emory_train.csv", "dev": "emory_val.csv", "test": "emory_test.csv"}
_REQUIRED = ("Utterance", "Speaker", "Emotion", "Scene_ID", "Utterance_ID", "Season", "Episode")
#: Joins the names of a line spoken by several people.
SPEAKER_JOIN = " & "


def parse_speakers(raw: str) -> str:
    """``"['Monica Geller', 'Phoebe Buffay']"`` → ``"Monica Geller & Phoebe Buffay"``; ``""`` if there is none.

    Raises:
        ValueError: if ``raw`` looks like a list but is not a list of strings.
    """
    raw = raw.strip()
    if not raw.startswith(("[", "(")):
        return raw
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ValueError(f"speaker list {raw[:80]!r} is not a valid list literal") from None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"speaker list {raw[:80]!r} is not a list of names")
    names = sorted({v.strip() for v in value if v.strip()})
    return SPEAKER_JOIN.join(names)


def emorynlp_files(split: str, root: str | Path | None = None) -> list[Path]:
    """The CSV file of ``split`` (raises :class:`~kgemo.errors.DataNotFoundError` if absent)."""
    split = canonical_split(split)
    return [require(dataset_dir(root, "emorynlp", _FILES["train"]) / _FILES[split], "emorynlp")]


def load_emorynlp(split: str, root: str | Path | None = None, strict: bool = True,
                  report: LoadReport | None = None) -> list[Conversation]:
    """Load one EmoryNLP split as scenes ordered by (season, episode, scene).

    Args:
        split: ``train``, ``dev`` (the ``val`` file) or ``test``.
        root: data root holding ``emorynlp/`` (or that folder itself).
        strict: raise on the first bad row; with ``False`` skip bad rows and count them in ``report``.
        report: filled with counts and the first problems.

    Example:
        >>> convs = load_emorynlp("test")
        >>> len(convs), convs[0].id, convs[0][0].speaker
        (79, 's01e01c04', 'Ross Geller')
    """
    split = canonical_split(split)
    report = report if report is not None else LoadReport()
    report.dataset, report.split = "emorynlp", split
    problems = Problems(strict, report)
    path = emorynlp_files(split, root)[0]
    emotions = label_space("emorynlp", "emotion")

    scenes: dict[tuple[int, int, int], dict[int, Utterance]] = defaultdict(dict)
    for line, row in csv_records(path, problems, _REQUIRED):
        try:
            key = (int(row["Season"]), int(row["Episode"]), int(row["Scene_ID"]))
            uid = int(row["Utterance_ID"])
        except ValueError:
            problems("malformed_row", DataFormatError(
                "Season, Episode, Scene_ID and Utterance_ID must be integers, got "
                f"{[row[c] for c in ('Season', 'Episode', 'Scene_ID', 'Utterance_ID')]}", path=path, line=line))
            continue
        dia = _scene_id(key)
        text = normalise_text(row["Utterance"])
        if not text:
            problems("empty_utterance", DataFormatError("empty utterance", path=path, line=line, dialogue=dia))
            continue
        try:
            speaker = parse_speakers(row["Speaker"])
        except ValueError as exc:
            problems("malformed_row", DataFormatError(str(exc), path=path, line=line, dialogue=dia))
            continue
        if not speaker:
            problems("missing_speaker", DataFormatError(f"missing speaker ({row['Speaker']!r})", path=path,
                                                        line=line, dialogue=dia))
            continue
        try:
            labels = {"emotion": emotions.parse(row["Emotion"].strip(), path=path, line=line, dialogue=dia)}
        except DataFormatError as exc:
            problems("unknown_label", exc)
            continue
        if uid in scenes[key]:
            problems("duplicate_id", DataFormatError(f"Utterance_ID {uid} appears twice", path=path, line=line,
                                                     dialogue=dia))
            continue
        scenes[key][uid] = Utterance(text, speaker, labels, str(uid))

    conversations = [
        Conversation(_scene_id(key), [utts[u] for u in sorted(utts)], "emorynlp", split,
                     meta={"season": key[0], "episode": key[1], "scene": key[2]})
        for key, utts in sorted(scenes.items()) if utts
    ]
    return finish(report, conversations)


def _scene_id(key: tuple[int, int, int]) -> str:
    return "s{:02d}e{:02d}c{:02d}".format(*key)
