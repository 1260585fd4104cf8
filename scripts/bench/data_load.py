"""Dataset loading time: every split of every dataset present, and the DailyDialog zip cache.

Rows: seconds to load all three splits of each dataset (best of ``--repeat`` runs, caches cleared before each),
with utterances per second. For DailyDialog the three splits come from one 47 MB JSON member of a zip: the
loader parses it once per process and keeps a compact copy keyed by the zip's size and mtime; the
``naive`` row re-parses the zip for every split, which is what a loader without that cache does. The ratio
compares the two in the same run.
"""
from __future__ import annotations

import time

from kgemo.data import DATASETS, load_dataset
from kgemo.data import dailydialog as dd
from kgemo.errors import DataNotFoundError


def add_arguments(parser) -> None:
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is reported")
    parser.add_argument("--root", default=None, help="data root (default: KGEMO_DATA / ../shared/data)")


def _best(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall-clock and CPU seconds over ``repeat`` runs (CPU time is steadier on a shared machine)."""
    best, best_cpu, out = float("inf"), float("inf"), None
    for _ in range(repeat):
        dd._clear_cache()
        start, cpu = time.perf_counter(), time.process_time()
        out = fn()
        best, best_cpu = min(best, time.perf_counter() - start), min(best_cpu, time.process_time() - cpu)
    return best, best_cpu, out


def run(args) -> dict:
    rows, notes = [], []
    for name, spec in DATASETS.items():
        try:
            seconds, cpu, convs = _best(lambda: [load_dataset(name, s, root=args.root) for s in spec.splits],
                                        args.repeat)
        except DataNotFoundError:
            notes.append(f"{name}: not present, skipped")
            continue
        utts = sum(len(c) for split in convs for c in split)
        rows.append({"case": f"{name}: train+dev+test", "seconds": round(seconds, 3), "cpu_s": round(cpu, 3),
                     "dialogues": sum(len(split) for split in convs), "utterances": utts,
                     "utterances_per_s": round(utts / seconds)})

    if any(r["case"].startswith("dailydialog") for r in rows):
        def naive():
            out = []
            for split in ("train", "dev", "test"):
                dd._clear_cache()  # what a loader without the per-process parse cache pays
                out.append(load_dataset("dailydialog", split, root=args.root))
            return out

        cached = next(r["cpu_s"] for r in rows if r["case"].startswith("dailydialog"))
        seconds, cpu, _ = _best(naive, args.repeat)
        rows.append({"case": "dailydialog: naive (zip parsed per split)", "seconds": round(seconds, 3),
                     "cpu_s": round(cpu, 3), "cpu_ratio_vs_kgemo": round(cpu / cached, 2)})
        seconds, cpu, _ = _best(lambda: [load_dataset("dailydialog", s, root=args.root, layout="original")
                                    for s in ("dev", "test")], args.repeat)
        rows.append({"case": "dailydialog: original layout dev+test", "seconds": round(seconds, 3),
                     "cpu_s": round(cpu, 3)})
    notes.append("Cold process caches before every run (the ConvLab parse cache is cleared); the OS file cache is "
                 "warm. Loading includes validation of every row and building the Conversation objects.")
    return {"description": __doc__.strip().splitlines()[0], "rows": rows, "notes": notes}
