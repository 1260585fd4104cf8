"""DailyDialog: emotion (7 classes) and dialogue act (4 classes) for every utterance, from one of two layouts.

* ``convlab`` — ``dailydialog/convlab/data.zip`` from ConvLab-3's unified datasets, read straight from the zip
  (member ``data/dialogues.json``): a list of dialogues with ``data_split`` (train / validation / test),
  ``original_id`` and ``turns``; each turn has ``speaker`` (user / system), ``utterance`` (detokenized:
  "Good morning, sir."), ``dialogue_acts.binary[0].intent`` and ``emotion`` ("no emotion" = neutral).
* ``original`` — the ijcnlp_dailydialog files: ``dialogues_{split}.txt`` (one dialogue per line, each utterance
  followed by `` __eou__``, tokenized: "Good morning , sir ."), ``dialogues_act_{split}.txt`` (codes 1-4) and
  ``dialogues_emotion_{split}.txt`` (codes 0-6), one code per utterance, with ``split`` = train / validation /
  test. They are looked up in ``dailydialog/original/`` and ``dailydialog/original/<split>/`` (the layout of the
  official archive).

``layout="auto"`` (the default) prefers ``convlab``: it is complete (all three splits; the original train text is
often missing) and gives every split the same text style. It falls back to ``original`` when the zip is absent.
Both layouts carry the same dialogues in the same order with identical labels; conversation ids are the 0-based
line number in the original split files (``"0"``, ``"1"``, ...) in both, so they can be compared.

Speakers: DailyDialog has two parties who take turns. They are named ``A`` (the first speaker, ConvLab's
``user``) and ``B`` (``system``).

Published counts: 11118 / 1000 / 1000 dialogues, 87170 / 8069 / 7740 utterances.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, DataNotFoundError
from .conversation import Conversation, Utterance
from .labels import label_space
from .report import LoadReport
from ._io import (Problems, canonical_split, dataset_dir, finish, has_bad_bytes, party, read_text, require,
                  split_lines)
from .text import normalise_text

__all__ = ["load_dailydialog", "dailydialog_files", "choose_layout", "LAYOUTS"]

LAYOUTS = ("convlab", "original")
_ZIP = Path("convlab") / "data.zip"
_MEMBER = "data/dialogues.json"
_ORIGINAL_SPLIT = {"train": "train", "dev": "validation", "test": "test"}
_CONVLAB_SPEAKER = {"user": party(0), "system": party(1)}
_EOU = "__eou__"


def _dir(root) -> Path:
    return dataset_dir(root, "dailydialog", str(_ZIP))


def _original_paths(ddir: Path, split: str) -> dict[str, Path]:
    """text / act / emotion files of a split in the original layout (flat, or one folder per split)."""
    name = _ORIGINAL_SPLIT[split]
    files = {"text": f"dialogues_{name}.txt", "act": f"dialogues_act_{name}.txt",
             "emotion": f"dialogues_emotion_{name}.txt"}
    for folder in (ddir / "original", ddir / "original" / name):
        if (folder / files["text"]).is_file():
            return {k: folder / f for k, f in files.items()}
    return {k: ddir / "original" / f for k, f in files.items()}


def choose_layout(split: str, root: str | Path | None = None, layout: str = "auto") -> str:
    """The layout ``load_dailydialog`` reads for ``split``: ``layout`` itself, or for ``"auto"`` the ConvLab zip
    when present, else the original files.

    Raises:
        DataNotFoundError: ``auto`` and neither layout is present.
    """
    if layout not in ("auto",) + LAYOUTS:
        raise ValueError(f"unknown DailyDialog layout {layout!r}; use one of {('auto',) + LAYOUTS}")
    if layout != "auto":
        return layout
    ddir = _dir(root)
    if (ddir / _ZIP).is_file():
        return "convlab"
    if _original_paths(ddir, canonical_split(split))["text"].is_file():
        return "original"
    raise DataNotFoundError(
        f"DailyDialog not found: neither {ddir / _ZIP} nor "
        f"{_original_paths(ddir, canonical_split(split))['text']} exists; get it with "
        "`kgemo data download dailydialog`, or point KGEMO_DATA / root= at a folder holding dailydialog/")


def dailydialog_files(split: str, root: str | Path | None = None, layout: str = "auto") -> list[Path]:
    """The files that ``split`` is read from: the zip (``convlab``) or the text, act and emotion files."""
    split = canonical_split(split)
    layout = choose_layout(split, root, layout)
    ddir = _dir(root)
    if layout == "convlab":
        return [require(ddir / _ZIP, "dailydialog")]
    paths = _original_paths(ddir, split)
    return [require(paths[k], "dailydialog") for k in ("text", "act", "emotion")]


def load_dailydialog(split: str, root: str | Path | None = None, strict: bool = True,
                     report: LoadReport | None = None, layout: str = "auto") -> list[Conversation]:
    """Load one DailyDialog split, labels ``emotion`` and ``act``.

    Args:
        split: ``train``, ``dev`` (``validation``) or ``test``.
        root: data root holding ``dailydialog/``.
        strict: raise on the first bad dialogue; with ``False`` skip it and count it in ``report``.
        report: filled with counts and the first problems.
        layout: ``"auto"`` (ConvLab zip if present, else the original files), ``"convlab"`` or ``"original"``.

    Example:
        >>> convs = load_dailydialog("test")
        >>> len(convs), convs[0].speakers[:3], convs[0][0].labels
        (1000, ['A', 'B', 'A'], {'emotion': 'neutral', 'act': 'directive'})
    """
    split = canonical_split(split)
    report = report if report is not None else LoadReport()
    report.dataset, report.split = "dailydialog", split
    problems = Problems(strict, report)
    files = dailydialog_files(split, root, layout)
    if len(files) == 1:
        conversations = _load_convlab(files[0], split, problems)
    else:
        conversations = _load_original(*files, split=split, problems=problems)
    return finish(report, conversations)


# --- ConvLab zip -------------------------------------------------------------------------------------------------

# The parsed zip, keyed by (path, size, mtime): json.loads of the 47 MB member is most of the load time, and a
# caller usually loads all three splits one after the other.
_CONVLAB_CACHE: dict[tuple[str, int, int], dict[str, list[tuple]]] = {}


def _load_convlab(path: Path, split: str, problems: Problems) -> list[Conversation]:
    where = f"{path}/{_MEMBER}"
    grouped, bad_bytes = _read_convlab(path, problems)
    raw = grouped.get(_ORIGINAL_SPLIT[split], [])
    if not raw:
        raise DataFormatError(f"no dialogues with data_split={_ORIGINAL_SPLIT[split]!r}", path=where)
    emotions, acts = label_space("dailydialog", "emotion"), label_space("dailydialog", "act")
    names: dict[tuple[str, str], str] = {}  # (task, raw label) → name; 100k turns share 11 raw labels

    def name(task: str, space, value, original_id, i: int) -> str:
        key = (task, str(value))
        if key not in names:
            names[key] = space.parse(key[1], path=where, dialogue=f"{original_id} turn {i}")
        return names[key]

    conversations = []
    for k, (original_id, turns) in enumerate(raw):
        if isinstance(turns, str):  # a structural problem found while reading
            problems("malformed_row", DataFormatError(turns, path=where, dialogue=original_id), "dialogue")
            continue
        utts = []
        for i, (speaker, text, intent, emotion) in enumerate(turns):
            problem = None
            if not isinstance(text, str):
                problem = ("malformed_row", f"utterance is {type(text).__name__}, not a string")
            elif not text.strip():
                problem = ("empty_utterance", "empty utterance")
            elif bad_bytes and has_bad_bytes(text):
                problem = ("bad_utf8", "invalid UTF-8 bytes")
            elif not isinstance(speaker, str) or not speaker.strip():
                problem = ("missing_speaker", "missing speaker")
            if problem is not None:
                problems(problem[0], DataFormatError(problem[1], path=where, dialogue=f"{original_id} turn {i}"),
                         "dialogue")
                break
            try:
                labels = {"emotion": name("emotion", emotions, emotion, original_id, i),
                          "act": name("act", acts, intent, original_id, i)}
            except DataFormatError as exc:
                problems("unknown_label", exc, "dialogue")
                break
            utts.append(Utterance(normalise_text(text), _CONVLAB_SPEAKER.get(speaker, speaker), labels, str(i)))
        else:
            if not utts:
                problems("empty_utterance", DataFormatError("dialogue has no turns", path=where,
                                                            dialogue=original_id), "dialogue")
                continue
            conversations.append(Conversation(_convlab_id(original_id, k), utts, "dailydialog", split,
                                              meta={"source": "convlab"}))
    return conversations


def _convlab_id(original_id: Any, position: int) -> str:
    """``"validation-12"`` → ``"12"`` (the line in the original split file); the position if it has no number."""
    tail = str(original_id).rpartition("-")[2]
    return tail if tail.isdigit() else str(position)


def _read_convlab(path: Path, problems: Problems) -> tuple[dict[str, list[tuple]], bool]:
    """data_split → [(original_id, [(speaker, text, intent, emotion), ...] or an error message)], and whether
    the member had bad UTF-8 (only possible with strict=False)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _CONVLAB_CACHE:
        return _CONVLAB_CACHE[key], False
    where = f"{path}/{_MEMBER}"
    try:
        with zipfile.ZipFile(path) as zf:
            data = zf.read(_MEMBER)
    except KeyError:
        raise DataFormatError(f"the zip has no member {_MEMBER}", path=path) from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataFormatError(f"not a readable zip file ({exc})", path=path) from None
    text, bad_bytes = read_text(Path(where), problems, data=data)
    try:
        dialogues = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"invalid JSON ({exc.msg}, column {exc.colno})", path=where, line=exc.lineno) from None
    if not isinstance(dialogues, list):
        raise DataFormatError("expected a JSON list of dialogues", path=where)
    grouped: dict[str, list[tuple]] = {}
    for k, d in enumerate(dialogues):
        if not isinstance(d, dict):
            grouped.setdefault("?", []).append((k, f"dialogue {k} is not a JSON object"))
            continue
        original_id = d.get("original_id", d.get("dialogue_id", k))
        grouped.setdefault(str(d.get("data_split")), []).append((original_id, _turns(d)))
    if not bad_bytes:  # a file with bad bytes is rare; don't keep its lenient decoding around
        _CONVLAB_CACHE.clear()
        _CONVLAB_CACHE[key] = grouped
    return grouped, bad_bytes


def _turns(d: dict) -> list[tuple] | str:
    turns = d.get("turns")
    if not isinstance(turns, list):
        return "dialogue has no 'turns' list"
    out = []
    for i, t in enumerate(turns):
        if not isinstance(t, dict):
            return f"turn {i} is not a JSON object"
        acts = t.get("dialogue_acts")
        binary = acts.get("binary") if isinstance(acts, dict) else None
        first = binary[0] if isinstance(binary, list) and binary else None
        intent = first.get("intent") if isinstance(first, dict) else None  # None → "unknown label 'None'"
        out.append((t.get("speaker"), t.get("utterance"), intent, t.get("emotion")))
    return out


# --- original text files -----------------------------------------------------------------------------------------

def _load_original(text_path: Path, act_path: Path, emotion_path: Path, *, split: str,
                   problems: Problems) -> list[Conversation]:
    texts, bad_bytes = read_text(text_path, problems)
    texts = split_lines(texts)
    act_lines = split_lines(read_text(act_path, problems)[0])
    emotion_lines = split_lines(read_text(emotion_path, problems)[0])
    for path, lines in ((act_path, act_lines), (emotion_path, emotion_lines)):
        if len(lines) != len(texts):
            raise DataFormatError(f"{len(lines)} lines, but {text_path.name} has {len(texts)}: the label file does "
                                  f"not belong to that text file", path=path, line=min(len(lines), len(texts)) + 1)
    emotions, acts = label_space("dailydialog", "emotion"), label_space("dailydialog", "act")
    conversations = []
    for k, (line, act_line, emotion_line) in enumerate(zip(texts, act_lines, emotion_lines)):
        n = k + 1
        utts = [normalise_text(u) for u in line.split(_EOU)]
        if utts and utts[-1] == "":
            utts.pop()  # the text after the last __eou__
        if bad_bytes and has_bad_bytes(line):
            problems("bad_utf8", DataFormatError("invalid UTF-8 bytes", path=text_path, line=n), "dialogue")
            continue
        if not utts or any(not u for u in utts):
            what = "empty line" if not utts else f"utterance {[bool(u) for u in utts].index(False) + 1} is empty"
            problems("empty_utterance", DataFormatError(what, path=text_path, line=n), "dialogue")
            continue
        codes = {"act": (act_path, act_line.split()), "emotion": (emotion_path, emotion_line.split())}
        mismatch = [(p, c) for p, c in codes.values() if len(c) != len(utts)]
        if mismatch:
            path, c = mismatch[0]
            problems("length_mismatch", DataFormatError(
                f"{len(c)} labels, but line {n} of {text_path.name} has {len(utts)} utterances", path=path, line=n),
                "dialogue")
            continue
        try:
            act_names = [acts.parse(c, path=act_path, line=n) for c in codes["act"][1]]
            emotion_names = [emotions.parse(c, path=emotion_path, line=n) for c in codes["emotion"][1]]
        except DataFormatError as exc:
            problems("unknown_label", exc, "dialogue")
            continue
        conversations.append(Conversation(
            str(k), [Utterance(t, party(i % 2), {"emotion": e, "act": a}, str(i))
                     for i, (t, a, e) in enumerate(zip(utts, act_names, emotion_names))],
            "dailydialog", split, meta={"source": "original"}))
    return conversations


def _clear_cache() -> None:
    """Forget the parsed ConvLab zip (tests and benchmarks use this to measure a cold load)."""
    _CONVLAB_CACHE.clear()
