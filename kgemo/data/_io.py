"""Helpers the dataset loaders share: finding files, decoding text, strict/lenient problem handling."""
from __future__ import annotations

import csv
import io
import logging
import re
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import DataFormatError, DataNotFoundError
from ..storage import data_root, kgemo_home
from .conversation import Conversation
from .report import LoadReport
from .text import repair_c1  # noqa: F401  (moved to kgemo.data.text; still importable from here)

logger = logging.getLogger("kgemo.data")

# Lone surrogates are what "surrogateescape" turns undecodable bytes into; a row containing one had bad UTF-8.
_BAD_BYTES = re.compile("[\udc80-\udcff]")

#: Split names used everywhere in kgemo, and the spellings datasets use for them.
SPLITS = ("train", "dev", "test")
_SPLIT_ALIASES = {"val": "dev", "valid": "dev", "validation": "dev", "eval": "dev"}


def canonical_split(split: str) -> str:
    """``train`` / ``dev`` / ``test`` for a split name (``val``, ``valid`` and ``validation`` mean ``dev``)."""
    name = _SPLIT_ALIASES.get(str(split).lower(), str(split).lower())
    if name not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits are {SPLITS}")
    return name


def has_bad_bytes(text: str) -> bool:
    """True if ``text`` holds bytes that were not valid UTF-8 (decoded with ``surrogateescape``)."""
    return _BAD_BYTES.search(text) is not None


def party(k: int) -> str:
    """Name of the ``k``-th anonymous party of a conversation: ``A``, ``B``, ... ``Z``, ``P27``, ..."""
    return chr(ord("A") + k) if 0 <= k < 26 else f"P{k + 1}"


class Problems:
    """Where a loader sends each problem: raised at once when ``strict``, else counted in ``report``."""

    def __init__(self, strict: bool, report: LoadReport):
        self.strict, self.report = strict, report

    def __call__(self, reason: str, error: DataFormatError, unit: str = "row") -> None:
        if self.strict:
            raise error
        self.report.skip(reason, error, unit)


def resolve_root(root: str | Path | None = None) -> Path:
    """The dataset root: ``root`` if given, else ``$KGEMO_DATA`` / ``../shared/data``, else ``$KGEMO_HOME/data``.

    Raises:
        DataNotFoundError: when none exists; the message says how to get the data.
    """
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise DataNotFoundError(f"data root {path} is not a directory")
        return path
    found = data_root(required=False)
    if found is not None:
        return found
    downloaded = kgemo_home() / "data"  # where download_dataset() puts files when KGEMO_DATA is unset
    if downloaded.is_dir():
        return downloaded
    return data_root(required=True)  # raises DataNotFoundError with the help text


def dataset_dir(root: str | Path | None, name: str, probe: str) -> Path:
    """``<root>/<name>``; or ``root`` itself when it already is that folder (it holds ``probe``)."""
    base = resolve_root(root)
    sub = base / name
    if not sub.is_dir() and root is not None and (base / probe).exists():
        return base
    return sub


def require(path: Path, name: str) -> Path:
    """``path`` if it is a file, else a :class:`DataNotFoundError` that says how to get dataset ``name``."""
    if path.is_file():
        return path
    if name == "iemocap":
        hint = ("IEMOCAP is licensed per user: request it from https://sail.usc.edu/iemocap/, convert it to the "
                "dialogue-understanding TSV layout, then `kgemo data download iemocap --from FOLDER` or set "
                "KGEMO_DATA (see docs/data.md)")
    else:
        hint = (f"get it with `kgemo data download {name}`, or point KGEMO_DATA / root= at a folder that holds "
                f"{name}/ (see docs/data.md)")
    raise DataNotFoundError(f"{path} not found; {hint}")


def read_text(path: Path, problems: Problems, data: bytes | None = None) -> tuple[str, bool]:
    """Decode a file as UTF-8 (a leading BOM is dropped).

    Bad bytes raise a :class:`DataFormatError` naming the file and line when strict; otherwise the text is decoded
    with ``surrogateescape`` and the second return value is ``True`` so the caller can skip the affected rows
    (:func:`has_bad_bytes`).
    """
    if data is None:
        data = path.read_bytes()
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        error = DataFormatError(f"invalid UTF-8 byte 0x{data[exc.start]:02x} at column {col}; save the file as "
                                f"UTF-8 (or load with strict=False to skip such rows)", path=path, line=line)
        if problems.strict:
            raise error from None
    return data.decode("utf-8-sig", errors="surrogateescape"), True


def split_lines(text: str) -> list[str]:
    """Lines without their ``\\n`` / ``\\r\\n``; a final newline does not make an extra empty line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def finish(report: LoadReport, conversations: Sequence[Conversation]) -> list[Conversation]:
    """Fill the report's totals and log a one-line warning if anything was skipped."""
    report.conversations = len(conversations)
    report.utterances = sum(len(c) for c in conversations)
    if report.total_skipped:
        logger.warning(report.summary())
    return list(conversations)


def csv_records(path: Path, problems: Problems, required: Sequence[str]
                ) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, {column: value})`` for each record of a CSV file with a header.

    ``line`` is the 1-based line where the record starts (records may span lines inside quotes). A missing
    required column is always an error; a record with the wrong number of fields, an unparsable record or bad
    UTF-8 goes to ``problems`` (raised when strict, else skipped and counted). Blank lines are ignored.
    """
    text, bad_bytes = read_text(path, problems)
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise DataFormatError("empty file: expected a CSV header", path=path, line=1) from None
    except csv.Error as exc:
        raise DataFormatError(f"unparsable CSV header ({exc})", path=path, line=1) from None
    missing = [c for c in required if c not in header]
    if missing:
        raise DataFormatError(f"missing column(s) {missing}; the header is {header}", path=path, line=1)
    width = len(header)
    prev = reader.line_num
    while True:
        start = prev + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            prev = reader.line_num
            problems("malformed_row", DataFormatError(f"unparsable CSV record ({exc})", path=path, line=start))
            continue
        prev = reader.line_num
        if not row:
            continue
        if len(row) != width:
            span = f" (the record runs to line {prev}: an unclosed quote?)" if prev > start else ""
            problems("malformed_row", DataFormatError(
                f"expected {width} fields ({', '.join(header)}), found {len(row)}{span}", path=path, line=start))
            continue
        if bad_bytes and any(has_bad_bytes(v) for v in row):
            problems("bad_utf8", DataFormatError("invalid UTF-8 bytes in this record", path=path, line=start))
            continue
        yield start, dict(zip(header, row))
