"""Check a dataset file of your own before training on it: :func:`check_file` (what ``kgemo data validate`` runs).

Every bad line is listed as ``file:line: message`` (not only the first, which is where a strict load stops),
with label histograms per split and task of what loads, what a lenient load would skip, and warnings about what
would make training fail or mislead (an empty dev split, a class with no training example).

Example:
    >>> check = check_file("examples/my_chats.jsonl")
    >>> check.ok, check.problems
    (True, [])
    >>> print(check.format())        # doctest: +SKIP
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, DataNotFoundError
from .jsonl import FileHeader, FileProblem, parse_file
from .stats import format_stats, split_stats
from ._io import SPLITS

__all__ = ["FileCheck", "check_file"]


@dataclass
class FileCheck:
    """What :func:`check_file` found.

    Attributes:
        path: the dataset file.
        header: its header, when it could be read.
        header_error: why the header could not be read (then nothing else was checked).
        problems: one per bad line, in line order (each names file and line).
        stats: split → :func:`~kgemo.data.stats.split_stats` of the conversations that load.
        warnings: what loads but would make training fail or mislead.
    """

    path: str
    header: FileHeader | None = None
    header_error: str | None = None
    problems: list[FileProblem] = field(default_factory=list)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when a strict load (``kgemo train``) reads the file without an error."""
        return self.header_error is None and not self.problems

    @property
    def skipped(self) -> Counter:
        """reason → conversations a lenient load (``data.strict: false``) skips."""
        return Counter(p.reason for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "header": None if self.header is None else self.header.to_dict(),
                "header_error": self.header_error,
                "problems": [{"line": p.line, "reason": p.reason, "split": p.split, "message": str(p.error)}
                             for p in self.problems],
                "skipped": dict(self.skipped), "stats": self.stats, "warnings": list(self.warnings)}

    def format(self, lenient: bool = False, max_problems: int = 50) -> str:
        """The report ``kgemo data validate`` prints: summary, histograms, warnings, then the problems."""
        if self.header_error is not None:
            return self.header_error
        h = self.header
        assert h is not None
        n_conv = sum(s["dialogues"] for s in self.stats.values())
        n_turns = sum(s["utterances"] for s in self.stats.values())
        rule = h.split_rule
        lines = [f"{self.path} (header {h.path}): {n_conv} conversations, {n_turns} turns load",
                 "tasks: " + "; ".join(f"{t} ({len(s)} labels) scored with {h.metrics[t]}" for t, s in h.tasks.items()),
                 "splits: " + ("given per conversation" if rule is None else
                               f"rule random (seed {rule.seed}, dev {rule.dev:g}, test {rule.test:g}) for "
                               "conversations without a split"),
                 ""]
        if n_conv:
            table = {"dataset": h.name, "tasks": list(h.tasks), "metrics": dict(h.metrics),
                     "splits": {s: st for s, st in self.stats.items()}}
            lines += [format_stats(table), ""]
        lines += [f"warning: {w}" for w in self.warnings]
        shown = self.problems[:max_problems]
        lines += [str(p.error) for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"... and {len(self.problems) - len(shown)} more")
        if self.problems:
            reasons = ", ".join(f"{n} {r}" for r, n in self.skipped.most_common())
            if lenient:
                lines.append(f"lenient: {len(self.problems)} conversation(s) skipped ({reasons}); "
                             f"{n_conv} load")
            else:
                lines.append(f"{len(self.problems)} problem(s): a strict load (kgemo train) stops at the first; "
                             f"--lenient (data.strict: false) would skip these {len(self.problems)} conversation(s) "
                             f"({reasons}) and load {n_conv}")
        else:
            lines.append("ok: no problems")
        return "\n".join(lines).replace("\n\n\n", "\n\n")


def check_file(path: str | Path) -> FileCheck:
    """Read a dataset file and its header and report every problem (nothing is raised for a bad file).

    Raises:
        DataNotFoundError: the file itself is missing (a missing header is reported in ``header_error``).
    """
    path = Path(path)
    if not path.expanduser().is_file():
        raise DataNotFoundError(f"{path}: no such file")
    check = FileCheck(str(path))
    try:
        parsed = parse_file(path)
    except (DataFormatError, DataNotFoundError) as exc:
        check.header_error = str(exc)
        return check
    h = check.header = parsed.header
    order = {t: s.labels for t, s in h.tasks.items()}
    for split in SPLITS:
        check.stats[split] = split_stats(parsed.conversations(split), h.tasks, order)
    check.problems = list(parsed.problems)
    train = check.stats["train"]
    if not train["dialogues"]:
        check.warnings.append("the train split is empty: nothing to train on")
    if not check.stats["dev"]["dialogues"]:
        check.warnings.append("the dev split is empty: training picks its best epoch on dev, so it needs some")
    if not check.stats["test"]["dialogues"]:
        check.warnings.append("the test split is empty: kgemo train will report dev scores only")
    for task, counts in train["labels"].items():
        if train["dialogues"] and not any(counts.values()):
            check.warnings.append(f"no train turn has a {task} label: the {task} head learns nothing")
            continue
        missing = [lab for lab, n in counts.items() if n == 0]
        if train["dialogues"] and missing:
            check.warnings.append(f"{task}: no train example of {missing} (declared in {h.path.name})")
    return check
