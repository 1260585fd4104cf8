"""Streaming readers for the knowledge-source file formats, with malformed-row accounting.

Every reader is a generator over one file that yields clean tuples and records each row it cannot read in a
:class:`BadRows` (count plus the first examples as ``file:line: reason``), so one bad line never stops a build of
millions of rows, and the build manifest says exactly what was skipped. A file in which most rows are bad is
almost certainly the wrong file or format: :meth:`BadRows.check` then raises :class:`DataFormatError`.

Formats (the ``format:`` field of a manifest's file):

* ``conceptnet-csv`` — ConceptNet 5.x assertions: ``uri<TAB>/r/Rel<TAB>/c/en/a/n<TAB>/c/en/b<TAB>{json}``.
* ``ckbc`` / ``ckbc-labelled`` — ``relation<TAB>head<TAB>tail<TAB>weight`` (or ``<TAB>1|0`` label).
* ``nrc-vad`` — ``Word<TAB>Valence<TAB>Arousal<TAB>Dominance`` with a header line.
* ``atomic2019-csv`` — ATOMIC 2019 CSV with JSON-list cells.
* ``atomic2020-tsv`` / ``atomic2020-system-eval`` — ``head<TAB>relation<TAB>tail`` or
  ``head @@ relation<TAB>tail1| tail2``; one reader handles both, line by line.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterator, NamedTuple

from tqdm.auto import tqdm

from ..errors import DataFormatError
from .text import to_concept

__all__ = ["BadRows", "Edge", "Tuple3", "open_text", "read_conceptnet_csv", "read_ckbc", "read_nrc_vad",
           "read_atomic2019", "read_atomic2020", "READERS", "ATOMIC2019_RELATIONS"]

log = logging.getLogger(__name__)

#: ATOMIC 2019 relation columns, in file order.
ATOMIC2019_RELATIONS = ("oEffect", "oReact", "oWant", "xAttr", "xEffect", "xIntent", "xNeed", "xReact", "xWant")

_WEIGHT = re.compile(r'"weight":\s*([-+0-9.eE]+)')


class Edge(NamedTuple):
    """A ConceptNet-like edge: concepts in ConceptNet form (``ice_cream``)."""

    relation: str
    head: str
    tail: str
    weight: float


class Tuple3(NamedTuple):
    """An ATOMIC tuple: head event, relation, tail (text as in the source)."""

    head: str
    relation: str
    tail: str


@dataclass
class BadRows:
    """Malformed rows of one file: a count and the first ``keep`` examples as ``file:line: reason``."""

    path: str
    count: int = 0
    rows: int = 0
    examples: list[str] = field(default_factory=list)
    keep: int = 20

    def add(self, line: int, reason: str) -> None:
        self.count += 1
        if len(self.examples) < self.keep:
            self.examples.append(f"{self.path}:{line}: {reason}")

    def to_dict(self) -> dict:
        return {"file": self.path, "rows": self.rows, "bad": self.count, "examples": self.examples}

    def report(self) -> str:
        if not self.count:
            return f"{self.path}: {self.rows} rows, none malformed"
        shown = "\n  ".join(self.examples)
        more = f"\n  ... and {self.count - len(self.examples)} more" if self.count > len(self.examples) else ""
        return f"{self.path}: {self.count} of {self.rows} rows malformed, skipped:\n  {shown}{more}"

    def check(self, max_fraction: float = 0.5) -> None:
        """Log the report; raise when more than ``max_fraction`` of the rows are bad (wrong file or format)."""
        if self.count:
            log.warning(self.report())
        # A file of which nothing is usable is the wrong file, however short; a longer one may lose a few rows.
        if (self.rows >= 10 and self.count > max_fraction * self.rows) or (self.rows and self.count == self.rows):
            raise DataFormatError(f"{self.count} of {self.rows} rows are malformed; is this the right file for "
                                  f"this format? First: {self.examples[0] if self.examples else ''}",
                                  path=self.path)


class _Progress:
    """tqdm over the bytes of the underlying (possibly compressed) file; off when stderr is not a TTY."""

    def __init__(self, raw: IO[bytes], path: Path, desc: str | None):
        self.raw = raw
        total = path.stat().st_size
        self.bar = tqdm(total=total, unit="B", unit_scale=True, desc=desc or path.name,
                        disable=not sys.stderr.isatty(), leave=False)
        self.last = 0

    def update(self) -> None:
        pos = self.raw.tell()
        self.bar.update(pos - self.last)
        self.last = pos

    def close(self) -> None:
        self.bar.close()


def open_text(path: str | Path) -> tuple[IO[str], IO[bytes]]:
    """Open a text file, transparently gunzipping it (by magic bytes, not the name); return (text, raw)."""
    path = Path(path)
    raw = open(path, "rb")
    magic = raw.read(2)
    raw.seek(0)
    stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw  # type: ignore[assignment]
    return io.TextIOWrapper(stream, encoding="utf-8", errors="replace", newline=""), raw


def _lines(path: str | Path, desc: str | None = None) -> Iterator[tuple[int, str]]:
    path = Path(path)
    text, raw = open_text(path)
    progress = _Progress(raw, path, desc)
    try:
        for n, line in enumerate(text, 1):
            if n % 65536 == 0:
                progress.update()
            yield n, line.rstrip("\r\n")
    except (OSError, EOFError) as exc:  # truncated gzip and the like
        raise DataFormatError(f"cannot read: {exc}", path=path) from exc
    finally:
        progress.close()
        text.close()


def _float(value: str) -> float:
    x = float(value)
    if not math.isfinite(x):
        raise ValueError(f"non-finite {value!r}")
    return x


def _concept_from_uri(uri: str, language: str) -> str | None:
    # /c/en/ice_cream/n/wn/food → ice_cream; other languages → None.
    parts = uri.split("/", 4)
    if len(parts) < 4 or parts[1] != "c" or parts[2] != language or not parts[3]:
        return None
    return parts[3].lower()


def read_conceptnet_csv(path: str | Path, bad: BadRows, language: str = "en") -> Iterator[Edge]:
    """ConceptNet 5.x assertions (gzip or plain), keeping edges whose both ends are in ``language``."""
    prefix = f"/c/{language}/"
    for n, line in _lines(path):
        bad.rows += 1
        # Cheap test first: ~90% of the 34M rows are not between two concepts of this language.
        if line.count(prefix) < 2:
            if line.count("\t") != 4:
                bad.add(n, f"expected 5 tab-separated columns, found {line.count(chr(9)) + 1}")
            continue
        cols = line.split("\t")
        if len(cols) != 5:
            bad.add(n, f"expected 5 tab-separated columns, found {len(cols)}")
            continue
        head, tail = _concept_from_uri(cols[2], language), _concept_from_uri(cols[3], language)
        if head is None or tail is None:
            continue
        m = _WEIGHT.search(cols[4])
        try:
            weight = _float(m.group(1)) if m else _float(json.loads(cols[4])["weight"])
        except (ValueError, KeyError, TypeError) as exc:
            bad.add(n, f"no numeric weight in the JSON info column ({type(exc).__name__}: {str(exc)[:60]})")
            continue
        relation = cols[1][3:] if cols[1].startswith("/r/") else cols[1]
        yield Edge(relation, head, tail, weight)


def read_ckbc(path: str | Path, bad: BadRows, labelled: bool = False) -> Iterator[Edge]:
    """CKBC ``relation<TAB>head<TAB>tail<TAB>weight``; with ``labelled`` the last column is a 1/0 label and
    only label-1 rows are kept (weight 1.0)."""
    for n, line in _lines(path):
        if not line.strip():
            continue
        bad.rows += 1
        cols = line.split("\t")
        if len(cols) != 4:
            bad.add(n, f"expected 4 tab-separated columns (relation, head, tail, weight), found {len(cols)}")
            continue
        rel, head, tail, last = cols
        try:
            value = _float(last)
        except ValueError:
            bad.add(n, f"non-numeric {'label' if labelled else 'weight'} {last[:40]!r}")
            continue
        head_c, tail_c = to_concept(head), to_concept(tail)
        if not rel or not head_c or not tail_c:
            bad.add(n, "empty relation, head or tail")
            continue
        if labelled:
            if value not in (0.0, 1.0):
                bad.add(n, f"label must be 1 or 0, found {last!r}")
                continue
            if value == 1.0:
                yield Edge(rel, head_c, tail_c, 1.0)
        else:
            yield Edge(rel, head_c, tail_c, value)


def read_nrc_vad(path: str | Path, bad: BadRows) -> Iterator[tuple[str, float, float, float]]:
    """NRC-VAD ``Word<TAB>Valence<TAB>Arousal<TAB>Dominance`` (header skipped); words lower-cased."""
    for n, line in _lines(path):
        if n == 1 and line.lower().startswith("word\t"):
            continue
        if not line.strip():
            continue
        bad.rows += 1
        cols = line.split("\t")
        if len(cols) != 4:
            bad.add(n, f"expected 4 tab-separated columns (word, valence, arousal, dominance), found {len(cols)}")
            continue
        try:
            v, a, d = (_float(c) for c in cols[1:])
        except ValueError:
            bad.add(n, f"non-numeric score in {cols[1:]!r}")
            continue
        if not all(0.0 <= x <= 1.0 for x in (v, a, d)):
            bad.add(n, f"score outside [0, 1] in {cols[1:]!r}")
            continue
        yield cols[0].strip().lower(), v, a, d


#: Tail strings that mean "no tail" in the ATOMIC releases: "none" by design, "nan" a missing-value artifact of the
#: 2019 CSVs (14 cells of v4_atomic_dev.csv hold ["nan"]).
NO_TAIL = frozenset({"", "none", "nan"})


def read_atomic2019(path: str | Path, bad: BadRows) -> Iterator[Tuple3]:
    """ATOMIC 2019 CSV: one :class:`Tuple3` per (event, relation, tail), "none", "nan" and empty tails dropped."""
    path = Path(path)
    text, raw = open_text(path)
    progress = _Progress(raw, path, None)
    try:
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None or header[0] != "event" or not set(ATOMIC2019_RELATIONS) <= set(header):
            raise DataFormatError(f"not an ATOMIC 2019 CSV: header {header[:4] if header else None}... lacks "
                                  f"event and the 9 relation columns", path=path, line=1)
        cols = {rel: header.index(rel) for rel in ATOMIC2019_RELATIONS}
        width = len(header)
        for row in reader:
            n = reader.line_num  # physical line where this record ends (cells may hold newlines)
            if n % 8192 == 0:
                progress.update()
            bad.rows += 1
            if len(row) != width:
                bad.add(n, f"expected {width} columns, found {len(row)}")
                continue
            head = row[0].strip()
            if not head:
                bad.add(n, "empty event")
                continue
            out = []
            try:
                for rel, i in cols.items():
                    tails = json.loads(row[i])
                    if not isinstance(tails, list) or not all(isinstance(t, str) for t in tails):
                        raise ValueError("not a JSON list of strings")
                    out += [Tuple3(head, rel, t.strip()) for t in tails if t.strip().lower() not in NO_TAIL]
            except ValueError as exc:
                bad.add(n, f"bad JSON list in column {rel}: {row[i][:40]!r} ({str(exc)[:60]})")
                continue
            yield from out
    except csv.Error as exc:
        raise DataFormatError(f"CSV parse error: {exc}", path=path) from exc
    finally:
        progress.close()
        text.close()


def read_atomic2020(path: str | Path, bad: BadRows) -> Iterator[Tuple3]:
    """ATOMIC-2020, either layout, decided per line: ``head<TAB>relation<TAB>tail`` or
    ``head @@ relation<TAB>tail1| tail2| ...``."""
    for n, line in _lines(path):
        if not line.strip():
            continue
        bad.rows += 1
        cols = line.split("\t")
        if len(cols) == 3:
            head, rel, tails = cols[0].strip(), cols[1].strip(), [cols[2]]
        elif len(cols) == 2 and " @@ " in cols[0]:
            head, rel = (x.strip() for x in cols[0].split(" @@ ", 1))
            tails = cols[1].split("|")
        else:
            bad.add(n, f"expected 'head<TAB>relation<TAB>tail' or 'head @@ relation<TAB>tails', found "
                       f"{len(cols)} columns")
            continue
        if not head or not rel or " " in rel:
            bad.add(n, f"empty head or bad relation {rel!r}")
            continue
        for t in tails:
            t = t.strip()
            if t.lower() not in NO_TAIL:
                yield Tuple3(head, rel, t)


#: format name → reader (for edges: Edge; for atomic: Tuple3; for vad: (word, v, a, d)).
READERS: dict[str, Callable[..., Iterator]] = {
    "conceptnet-csv": read_conceptnet_csv,
    "ckbc": read_ckbc,
    "ckbc-labelled": lambda path, bad: read_ckbc(path, bad, labelled=True),
    "nrc-vad": read_nrc_vad,
    "atomic2019-csv": read_atomic2019,
    "atomic2020-tsv": read_atomic2020,
    "atomic2020-system-eval": read_atomic2020,
}
