"""Reading conversations to annotate from JSON, JSONL or CSV files (or standard input).

Accepted layouts:

* **JSON** — a conversation ``{"id": ..., "utterances": [{"speaker", "text"}, ...]}``; a list of utterance dicts
  (one conversation); a list of ``[speaker, text]`` pairs or of strings (one conversation); or a list of
  conversation dicts.
* **JSONL** — one utterance dict per line (consecutive lines with the same ``conversation_id``, or without one,
  form a conversation) or one conversation dict per line.
* **CSV** — a header with ``text`` (also ``utterance``) and ``speaker`` columns, optionally
  ``conversation_id`` (also ``conversation``, ``dialogue``, ``dialogue_id``) to hold several conversations.

Every error names the file and line: bytes that are not UTF-8, invalid JSON (line and column), an empty
utterance, a row without a text column. A missing speaker is allowed (one speaker assumed, with a warning).
Texts go through :func:`kgemo.data.text.normalise_text`, as the dataset loaders' do: a line copied from MELD's CSV
(``company\x92s``) reaches the model as the loader gives it (``company’s``).
"""
from __future__ import annotations

import csv
import io
import json
import sys
import warnings
from pathlib import Path
from typing import Any, BinaryIO

from ..data.conversation import DEFAULT_SPEAKER, Conversation, Utterance, as_conversation
from ..data.text import normalise_text
from ..errors import DataFormatError

__all__ = ["read_conversations", "parse_conversations", "FORMATS"]

FORMATS = ("json", "jsonl", "csv")
_SUFFIX = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
_CONV_KEYS = ("conversation_id", "conversation", "dialogue_id", "dialogue")
_TEXT_KEYS = ("text", "utterance")


def read_conversations(path: str | Path, format: str | None = None, stdin: BinaryIO | None = None
                       ) -> list[Conversation]:
    """Conversations from a file, or from standard input when ``path`` is ``"-"``.

    Args:
        path: the file, or ``"-"``.
        format: ``json`` / ``jsonl`` / ``csv``; default from the suffix, else guessed from the content.
        stdin: a binary stream to read instead of ``sys.stdin`` (tests).

    Raises:
        DataFormatError: the input is not UTF-8, not valid JSON/JSONL/CSV, empty, or has an empty utterance;
            the message names the file and line.
    """
    if str(path) == "-":
        name = "<stdin>"
        data = (stdin or sys.stdin.buffer).read()
    else:
        p = Path(path)
        name = str(p)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise DataFormatError("no such file", path=name) from None
        except IsADirectoryError:
            raise DataFormatError("is a directory, not a file", path=name) from None
        if format is None:
            format = _SUFFIX.get(p.suffix.lower())
    return parse_conversations(data, name, format)


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataFormatError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {col}); save the file as "
                              "UTF-8", path=name, line=line) from None


def _guess(text: str) -> str:
    s = text.lstrip()
    if s.startswith("["):
        return "json"
    if s.startswith("{"):
        # One object over the whole input is JSON; several top-level objects are JSONL.
        try:
            json.loads(s)
            return "json"
        except json.JSONDecodeError:
            return "jsonl"
    return "csv"


def parse_conversations(data: bytes | str, name: str = "<input>", format: str | None = None
                        ) -> list[Conversation]:
    """:func:`read_conversations` on bytes (or text) already read; ``name`` is used in error messages."""
    text = _decode(data, name) if isinstance(data, bytes) else data
    if not text.strip():
        raise DataFormatError("empty input: no conversation to annotate", path=name)
    format = format or _guess(text)
    if format not in FORMATS:
        raise DataFormatError(f"unknown input format {format!r}; use one of {FORMATS}", path=name)
    convs = {"json": _parse_json, "jsonl": _parse_jsonl, "csv": _parse_csv}[format](text, name)
    if not convs:
        raise DataFormatError("no utterances found", path=name)
    return convs


# -- JSON ---------------------------------------------------------------------------------------------------------
def _load_json(text: str, name: str, line_offset: int = 0) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFormatError(f"invalid JSON: {exc.msg} (column {exc.colno})", path=name,
                              line=exc.lineno + line_offset) from None


def _is_conversation(obj: Any) -> bool:
    return isinstance(obj, dict) and "utterances" in obj


def _conversation(obj: Any, name: str, default_id: str, line: int | None = None) -> Conversation:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            conv = as_conversation(obj, id=default_id)
    except DataFormatError as exc:
        raise DataFormatError(exc.message, path=name, line=line if line is not None else exc.line,
                              dialogue=exc.dialogue) from None
    for w in caught:  # re-issue (the missing-speaker warning) naming the file
        warnings.warn(f"{name}: {w.message}", w.category, stacklevel=3)
    return conv


def _parse_json(text: str, name: str) -> list[Conversation]:
    obj = _load_json(text, name)
    if _is_conversation(obj):
        return [_conversation(obj, name, "1")]
    if isinstance(obj, list):
        if not obj:
            raise DataFormatError("empty list: no conversation to annotate", path=name)
        if all(_is_conversation(o) for o in obj):
            return [_conversation(o, name, str(i + 1)) for i, o in enumerate(obj)]
        if any(_is_conversation(o) for o in obj):
            raise DataFormatError("a list mixing conversations (with 'utterances') and utterances", path=name)
        return [_conversation(obj, name, "1")]
    raise DataFormatError(f"expected a conversation object or a list, got {type(obj).__name__}", path=name)


def _parse_jsonl(text: str, name: str) -> list[Conversation]:
    convs: list[Conversation] = []
    group: list[tuple[int, dict]] = []
    group_id: Any = None

    def flush():
        nonlocal group
        if group:
            cid = str(group_id) if group_id is not None else str(len(convs) + 1)
            convs.append(_utterances_to_conversation(group, name, cid))
            group = []

    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        obj = _load_json(line, name, line_offset=lineno - 1)
        if _is_conversation(obj):
            flush()
            convs.append(_conversation(obj, name, str(obj.get("id", len(convs) + 1)), line=lineno))
            continue
        if not isinstance(obj, dict):
            raise DataFormatError(f"expected an utterance or conversation object, got {type(obj).__name__}",
                                  path=name, line=lineno)
        cid = next((obj[k] for k in _CONV_KEYS if k in obj), None)
        if group and cid != group_id:
            flush()
        group_id = cid
        group.append((lineno, obj))
    flush()
    return convs


def _utterances_to_conversation(rows: list[tuple[int, dict]], name: str, cid: str) -> Conversation:
    """Utterance rows (line number, dict) → a conversation; errors name the row's line."""
    utts, missing = [], 0
    for lineno, row in rows:
        text = next((row[k] for k in _TEXT_KEYS if k in row), None)
        if text is None:
            raise DataFormatError("no 'text' field", path=name, line=lineno)
        if not isinstance(text, str) or not normalise_text(text):
            raise DataFormatError("empty or whitespace-only utterance", path=name, line=lineno)
        speaker = row.get("speaker")
        if speaker is None or not str(speaker).strip():
            missing += 1
            speaker = DEFAULT_SPEAKER
        utts.append(Utterance(normalise_text(text), str(speaker), id=None if row.get("id") is None else str(row["id"])))
    if missing:
        warnings.warn(f"{name}: conversation {cid}: {missing} utterance(s) without a speaker; assuming one "
                      f"speaker {DEFAULT_SPEAKER!r}", stacklevel=4)
    return Conversation(cid, utts)


# -- CSV ----------------------------------------------------------------------------------------------------------
def _parse_csv(text: str, name: str) -> list[Conversation]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise DataFormatError("empty CSV", path=name) from None
    except csv.Error as exc:
        raise DataFormatError(f"invalid CSV: {exc}", path=name, line=1) from None
    cols = [h.strip().lower() for h in header]
    text_col = next((cols.index(k) for k in _TEXT_KEYS if k in cols), None)
    if text_col is None:
        raise DataFormatError(f"CSV header {header} has no 'text' column (expected speaker,text)", path=name,
                              line=1)
    speaker_col = cols.index("speaker") if "speaker" in cols else None
    conv_col = next((cols.index(k) for k in _CONV_KEYS if k in cols), None)
    groups: dict[str, list[tuple[int, dict]]] = {}
    try:
        for row in reader:
            lineno = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise DataFormatError(f"{len(row)} fields, the header has {len(header)} (quote texts that contain "
                                      "commas)", path=name, line=lineno)
            cid = row[conv_col] if conv_col is not None else "1"
            d = {"text": row[text_col]}
            if speaker_col is not None:
                d["speaker"] = row[speaker_col]
            groups.setdefault(cid, []).append((lineno, d))
    except csv.Error as exc:
        raise DataFormatError(f"invalid CSV: {exc}", path=name, line=reader.line_num) from None
    return [_utterances_to_conversation(rows, name, cid) for cid, rows in groups.items()]
