"""What a loader skipped: :class:`LoadReport`, filled when a dataset is loaded with ``strict=False``."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..errors import DataFormatError

__all__ = ["LoadReport"]


@dataclass
class LoadReport:
    """Counts of what a loader read and skipped, with the first few problems as ``file:line: message``.

    Pass a fresh one to each :func:`~kgemo.data.load_dataset` call (``report=LoadReport()``) to inspect it
    afterwards; with ``strict=True`` (the default) the first problem raises instead, so the report only holds
    counts of what was read.

    Args:
        max_examples: how many problem messages to keep (the counts are always complete).

    Attributes:
        conversations, utterances: what was loaded.
        skipped: reason → number of skipped units (a CSV row for MELD / EmoryNLP, a dialogue elsewhere).
            Reasons: ``malformed_row``, ``unknown_label``, ``empty_utterance``, ``missing_speaker``,
            ``length_mismatch``, ``bad_utf8``, ``duplicate_id``, ``bad_adjacency``, ``missing_split`` (a line of a
            dataset file of one's own that names no split when its header has no split rule).
        skipped_rows, skipped_dialogues: totals by unit.
        examples: the first ``max_examples`` problems, each naming file and line (or dialogue).
    """

    max_examples: int = 5
    dataset: str | None = None
    split: str | None = None
    conversations: int = 0
    utterances: int = 0
    skipped: Counter = field(default_factory=Counter)
    skipped_rows: int = 0
    skipped_dialogues: int = 0
    examples: list[str] = field(default_factory=list)

    def skip(self, reason: str, error: DataFormatError | str, unit: str = "row") -> None:
        """Record one skipped ``unit`` (``"row"`` or ``"dialogue"``) and why."""
        self.skipped[reason] += 1
        if unit == "row":
            self.skipped_rows += 1
        else:
            self.skipped_dialogues += 1
        if len(self.examples) < self.max_examples:
            self.examples.append(str(error))

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())

    def summary(self) -> str:
        """One line: what was loaded and what was skipped, with the first problem."""
        where = "/".join(p for p in (self.dataset, self.split) if p) or "input"
        line = f"{where}: loaded {self.conversations} dialogues, {self.utterances} utterances"
        if not self.total_skipped:
            return line
        parts = []
        if self.skipped_rows:
            parts.append(f"{self.skipped_rows} rows")
        if self.skipped_dialogues:
            parts.append(f"{self.skipped_dialogues} dialogues")
        reasons = ", ".join(f"{n} {r}" for r, n in self.skipped.most_common())
        first = f"; first: {self.examples[0]}" if self.examples else ""
        return f"{line}; skipped {' and '.join(parts)} ({reasons}){first}"

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "split": self.split, "conversations": self.conversations,
                "utterances": self.utterances, "skipped": dict(self.skipped), "skipped_rows": self.skipped_rows,
                "skipped_dialogues": self.skipped_dialogues, "examples": list(self.examples)}
