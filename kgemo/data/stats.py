"""Summary statistics of a dataset's splits (what ``kgemo data stats`` prints)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from .conversation import Conversation
from .registry import get_dataset
from .report import LoadReport

__all__ = ["split_stats", "dataset_stats", "format_stats"]


def split_stats(conversations: Sequence[Conversation], tasks: Iterable[str] | None = None,
                label_order: dict[str, Sequence[str]] | None = None) -> dict[str, Any]:
    """Counts for one split.

    Returns a dict with ``dialogues``, ``utterances``, ``speakers`` (distinct speaker names; anonymous parties such
    as DailyDialog's ``A`` / ``B`` count once), ``speakers_per_dialogue`` (mean), ``mean_length``, ``max_length``
    and ``labels``: task → {label: count} in ``label_order`` (labels with no utterance included, with 0), plus
    ``unlabelled``: task → count of utterances without that label.
    """
    lengths = [len(c) for c in conversations]
    n_utts = sum(lengths)
    tasks = list(tasks) if tasks is not None else sorted({t for c in conversations for u in c for t in u.labels})
    labels: dict[str, dict[str, int]] = {}
    unlabelled: dict[str, int] = {}
    for task in tasks:
        counts = Counter(u.labels.get(task) for c in conversations for u in c)
        missing = counts.pop(None, 0)
        order = list((label_order or {}).get(task, ())) or sorted(counts)
        order += sorted(set(counts) - set(order))  # a label outside the space still shows
        labels[task] = {lab: counts.get(lab, 0) for lab in order}
        if missing:
            unlabelled[task] = missing
    return {
        "dialogues": len(conversations),
        "utterances": n_utts,
        "speakers": len({s for c in conversations for s in c.speakers}),
        "speakers_per_dialogue": (sum(len(set(c.speakers)) for c in conversations) / len(conversations)
                                  if conversations else 0.0),
        "mean_length": n_utts / len(conversations) if conversations else 0.0,
        "max_length": max(lengths, default=0),
        "labels": labels,
        "unlabelled": unlabelled,
    }


def dataset_stats(name: str, splits: Iterable[str] | None = None, root: str | Path | None = None,
                  strict: bool = True, **options) -> dict[str, Any]:
    """Load the splits of dataset ``name`` and return ``{"dataset", "tasks", "metrics", "splits": {split: stats}}``
    (plus ``"skipped"``: split → :meth:`LoadReport.to_dict` for splits where ``strict=False`` skipped something)."""
    spec = get_dataset(name)
    order = {task: space.labels for task, space in spec.tasks.items()}
    out: dict[str, Any] = {"dataset": spec.name, "tasks": list(spec.tasks), "metrics": dict(spec.metrics),
                           "splits": {}}
    for split in splits or spec.splits:
        report = LoadReport()
        convs = spec.load(split, root=root, strict=strict, report=report, **options)
        out["splits"][report.split] = split_stats(convs, spec.tasks, order)
        if report.total_skipped:
            out.setdefault("skipped", {})[report.split] = report.to_dict()
    return out


def format_stats(stats: dict[str, Any]) -> str:
    """A plain-text table: one column per split, label histograms as ``count (percent)``."""
    splits = list(stats["splits"])
    cols = [stats["splits"][s] for s in splits]
    rows: list[tuple[str, list[str]]] = [
        ("dialogues", [f"{c['dialogues']}" for c in cols]),
        ("utterances", [f"{c['utterances']}" for c in cols]),
        ("speakers (distinct names)", [f"{c['speakers']}" for c in cols]),
        ("speakers per dialogue", [f"{c['speakers_per_dialogue']:.2f}" for c in cols]),
        ("dialogue length, mean", [f"{c['mean_length']:.2f}" for c in cols]),
        ("dialogue length, max", [f"{c['max_length']}" for c in cols]),
    ]
    for task in stats["tasks"]:
        rows.append((f"{task} (metric: {stats['metrics'][task]})", ["" for _ in cols]))
        for label in cols[0]["labels"][task] if cols else ():
            cells = []
            for c in cols:
                n, total = c["labels"][task].get(label, 0), c["utterances"]
                cells.append(f"{n} ({100 * n / total:.1f}%)" if total else "0")
            rows.append((f"  {label}", cells))
        if any(task in c["unlabelled"] for c in cols):
            rows.append(("  (unlabelled)", [f"{c['unlabelled'].get(task, 0)}" for c in cols]))
    head = [stats["dataset"]] + splits
    w0 = max(len(head[0]), *(len(r[0]) for r in rows))
    widths = [max(len(splits[i]), *(len(r[1][i]) for r in rows)) for i in range(len(splits))]
    lines = [head[0].ljust(w0) + "".join("  " + s.rjust(w) for s, w in zip(splits, widths))]
    lines += [name.ljust(w0) + "".join("  " + v.rjust(w) for v, w in zip(vals, widths)) for name, vals in rows]
    for split, rep in stats.get("skipped", {}).items():
        lines.append(f"{split}: skipped {rep['skipped_rows']} rows, {rep['skipped_dialogues']} dialogues "
                     f"{rep['skipped']}")
    return "\n".join(lines)
