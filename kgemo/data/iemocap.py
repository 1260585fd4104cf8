"""IEMOCAP (text), from a user's own copy in the dialogue-understanding TSV layout. kgemo cannot download it:
IEMOCAP is licensed per user (https://sail.usc.edu/iemocap/).

Layout (declare-lab/dialogue-understanding, ``roberta-end-to-end/datasets/iemocap/`` and
``glove-end-to-end/datasets/iemocap/``, read by that repository's ``dataloader.py``, which splits each stripped
line on tabs and drops the first field): ``iemocap/iemocap_{split}_{kind}.tsv`` with ``split`` = ``train`` /
``valid`` / ``test`` and ``kind``:

* ``utterances`` — ``<dialogue id>\\t<utterance 1>\\t<utterance 2>...``, one dialogue per line
  (e.g. ``Ses02F_impro07\\tSo, how's it going?\\tOh, you got what?  Where?...``);
* ``emotion`` — ``<dialogue id>\\t<code>\\t<code>...``, codes from ``iemocap_emotion.mapping``: 0 happy, 1 sad,
  2 neutral, 3 angry, 4 excited, 5 frustrated (the order of ``label_space("iemocap", "emotion")``);
* ``speakers`` — ``<dialogue id>\\t<0 or 1>...``, the two actors of the dyadic session, named ``A`` (0) and ``B`` (1).

The three files of a split hold the same dialogues in the same order (the loss-mask files of that layout are not
needed). ``valid`` is the ``dev`` split (``dev`` / ``val`` file names are accepted too). Conversation ids are the
session ids (``Ses01F_impro01``).
"""
from __future__ import annotations

from pathlib import Path

from ..errors import DataFormatError
from .conversation import Conversation, Utterance
from .labels import label_space
from .report import LoadReport
from ._io import (Problems, canonical_split, dataset_dir, finish, has_bad_bytes, party, read_text, require,
                  split_lines)
from .text import normalise_text

__all__ = ["load_iemocap", "iemocap_files"]

KINDS = ("utterances", "emotion", "speakers")
_SPLIT_NAMES = {"train": ("train",), "dev": ("valid", "dev", "val"), "test": ("test",)}


def iemocap_files(split: str, root: str | Path | None = None) -> list[Path]:
    """``[utterances, emotion, speakers]`` TSV files of ``split`` (raises if absent, saying how to get them)."""
    split = canonical_split(split)
    folder = dataset_dir(root, "iemocap", "iemocap_train_utterances.tsv")
    for name in _SPLIT_NAMES[split]:
        paths = [folder / f"iemocap_{name}_{kind}.tsv" for kind in KINDS]
        if paths[0].is_file():
            break
    else:
        paths = [folder / f"iemocap_{_SPLIT_NAMES[split][0]}_{kind}.tsv" for kind in KINDS]
    return [require(p, "iemocap") for p in paths]


def _rows(path: Path, problems: Problems) -> tuple[list[tuple[str, list[str]]], bool]:
    """``[(dialogue id, fields), ...]`` per non-blank line, split like the reference loader."""
    text, bad_bytes = read_text(path, problems)
    rows = []
    for line in split_lines(text):
        fields = line.strip().split("\t")
        rows.append((fields[0], fields[1:]))
    return rows, bad_bytes


def load_iemocap(split: str, root: str | Path | None = None, strict: bool = True,
                 report: LoadReport | None = None) -> list[Conversation]:
    """Load one IEMOCAP split (label ``emotion``) from the dialogue-understanding TSV files.

    Args:
        split: ``train``, ``dev`` (``valid`` files) or ``test``.
        root: data root holding ``iemocap/`` (or that folder itself).
        strict: raise on the first bad dialogue; with ``False`` skip it and count it in ``report``.
        report: filled with counts and the first problems.
    """
    split = canonical_split(split)
    report = report if report is not None else LoadReport()
    report.dataset, report.split = "iemocap", split
    problems = Problems(strict, report)
    utt_path, emo_path, spk_path = iemocap_files(split, root)
    utt_rows, bad_bytes = _rows(utt_path, problems)
    emo_rows, _ = _rows(emo_path, problems)
    spk_rows, _ = _rows(spk_path, problems)
    for path, rows in ((emo_path, emo_rows), (spk_path, spk_rows)):
        if len(rows) != len(utt_rows):
            raise DataFormatError(f"{len(rows)} lines, but {utt_path.name} has {len(utt_rows)}", path=path,
                                  line=min(len(rows), len(utt_rows)) + 1)
    emotions = label_space("iemocap", "emotion")
    conversations = []
    for k, ((dia, texts), (emo_id, codes), (spk_id, speakers)) in enumerate(zip(utt_rows, emo_rows, spk_rows)):
        n = k + 1
        bad = next(((p, i) for p, i in ((emo_path, emo_id), (spk_path, spk_id)) if i != dia), None)
        if bad is not None:
            problems("malformed_row", DataFormatError(
                f"dialogue id {bad[1]!r}, but line {n} of {utt_path.name} is {dia!r}", path=bad[0], line=n),
                "dialogue")
            continue
        if bad_bytes and any(has_bad_bytes(t) for t in texts):
            problems("bad_utf8", DataFormatError("invalid UTF-8 bytes", path=utt_path, line=n, dialogue=dia),
                     "dialogue")
            continue
        empty = [i + 1 for i, t in enumerate(texts) if not t.strip()]
        if not texts or empty:
            what = f"utterance {empty[0]} is empty" if empty else "no utterances"
            problems("empty_utterance", DataFormatError(what, path=utt_path, line=n, dialogue=dia), "dialogue")
            continue
        mismatch = [(p, v) for p, v in ((emo_path, codes), (spk_path, speakers)) if len(v) != len(texts)]
        if mismatch:
            path, values = mismatch[0]
            problems("length_mismatch", DataFormatError(
                f"{len(values)} values, but {utt_path.name} has {len(texts)} utterances for this dialogue",
                path=path, line=n, dialogue=dia), "dialogue")
            continue
        try:
            labels = [_emotion(emotions, c, emo_path, n, dia) for c in codes]
        except DataFormatError as exc:
            problems("unknown_label", exc, "dialogue")
            continue
        names = [_speaker(s) for s in speakers]
        if not all(names):
            problems("missing_speaker", DataFormatError(
                f"speaker {names.index('') + 1} is empty", path=spk_path, line=n, dialogue=dia), "dialogue")
            continue
        conversations.append(Conversation(
            dia, [Utterance(normalise_text(t), s, {"emotion": e}, str(i))
                  for i, (t, s, e) in enumerate(zip(texts, names, labels))], "iemocap", split))
    return finish(report, conversations)


def _emotion(space, code: str, path: Path, line: int, dia: str) -> str:
    code = code.strip()
    if code.isdigit() and int(code) < len(space):
        return space.labels[int(code)]
    return space.parse(code, path=path, line=line, dialogue=dia)  # a name, or an error naming the line


def _speaker(code: str) -> str:
    code = code.strip()
    return party(int(code)) if code.isdigit() else code
