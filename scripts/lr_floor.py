#!/usr/bin/env python
"""The logistic-regression floors: what a linear classifier on frozen sentence features, with no context and no
knowledge, scores on each dataset's test split with the dataset's own metric.

    python scripts/lr_floor.py                   # all datasets → docs/floors.json (read by scripts/evaluate.py)
    python scripts/lr_floor.py meld --no-write   # one dataset, print only
    python scripts/lr_floor.py --class-weight balanced --no-write   # the same with balanced class weights

Per utterance: the packaged MiniLM sentence embedding (``SentenceEncoder("default")``, frozen, 384-d, through
``kgemo.encoders.dataset_features``, so the features are cached under ``$KGEMO_HOME`` and shared with training).
One ``sklearn`` ``LogisticRegression`` per (dataset, task) with sklearn's defaults (C=1, lbfgs, no class weights;
``max_iter`` raised so that it converges), fitted on the train split (unlabelled utterances dropped), scored on
the test split with ``kgemo.metrics`` and the metric the dataset's registry names. Nothing is tuned on dev.
Balanced class weights (``--class-weight balanced``) score lower on every ERC dataset's metric (MELD weighted F1
51.1 vs 55.7), so the floor is the unweighted fit: the stronger, simpler baseline.
"""
from __future__ import annotations

import argparse
import datetime
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "floors.json"

#: dataset → the tasks whose floor docs/results.md shows (the ERC emotion task; both joint tasks on Mastodon).
FLOORS = {
    "meld": ("emotion",),
    "emorynlp": ("emotion",),
    "dailydialog": ("emotion",),
    "mastodon": ("act", "sentiment"),
}


def xy(conversations, features, task: str, space):
    """Stack per-conversation features; labels as ids (-1 = unlabelled)."""
    import numpy as np

    x = np.concatenate(features).astype(np.float32, copy=False)
    y = np.asarray(space.encode([u.labels.get(task) for conv in conversations for u in conv.utterances]))
    if len(x) != len(y):
        raise RuntimeError(f"{len(x)} feature rows for {len(y)} utterances")
    return x, y


def floor(dataset: str, tasks, encoder, class_weight: str | None = None, max_iter: int = 2000) -> dict:
    """Fit on train, score on test: ``{task: {metric, test, class_weight, n_train, n_test}}``."""
    from sklearn.linear_model import LogisticRegression

    from kgemo.data.registry import get_dataset
    from kgemo.encoders import dataset_features
    from kgemo.metrics import score

    spec = get_dataset(dataset)
    train, test = dataset_features(encoder, dataset, "train"), dataset_features(encoder, dataset, "test")
    out = {}
    for task in tasks:
        space = spec.label_space(task)
        x, y = xy(*train, task, space)
        xt, yt = xy(*test, task, space)
        keep = y >= 0
        clf = LogisticRegression(max_iter=max_iter, class_weight=class_weight).fit(x[keep], y[keep])
        metric = spec.metrics[task]
        out[task] = {"metric": metric, "test": round(float(score(metric, yt, clf.predict(xt), space)), 2),
                     "class_weight": class_weight or "none", "n_train": int(keep.sum()),
                     "n_test": int((yt >= 0).sum())}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("datasets", nargs="*", metavar="DATASET", help=f"datasets (default: all of {', '.join(FLOORS)})")
    p.add_argument("--class-weight", choices=("none", "balanced"), default="none",
                   help="sklearn class_weight (default: none)")
    p.add_argument("--out", default=str(OUT), help="JSON to write (default: docs/floors.json)")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    unknown = [d for d in args.datasets if d not in FLOORS]
    if unknown:
        p.error(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(FLOORS)}")
    if args.datasets and set(args.datasets) != set(FLOORS) and not args.no_write and Path(args.out) == OUT:
        p.error("docs/floors.json holds every dataset's floor from one command: give no DATASET, or --no-write")

    import sklearn

    from kgemo.encoders import SentenceEncoder

    encoder = SentenceEncoder("default")
    names = args.datasets or list(FLOORS)
    start = time.time()
    weight = None if args.class_weight == "none" else args.class_weight
    floors = {ds: floor(ds, FLOORS[ds], encoder, class_weight=weight) for ds in names}
    for ds, tasks in floors.items():
        for task, r in tasks.items():
            print(f"{ds:12s} {task:10s} {r['metric']:22s} {r['test']:6.2f}  (class_weight={r['class_weight']}, "
                  f"train {r['n_train']}, test {r['n_test']})")
    if args.no_write:
        return 0
    result = {
        "description": "Logistic regression on frozen packaged-MiniLM sentence features per utterance, no "
                       "context, no knowledge; fitted on train, test-split score with the dataset's metric "
                       "(percent). Written by scripts/lr_floor.py; scripts/evaluate.py reads it.",
        "command": "python scripts/lr_floor.py" + "".join(" " + shlex.quote(a) for a in
                                                           (sys.argv[1:] if argv is None else argv)),
        "date": datetime.date.today().isoformat(),
        "encoder": encoder.id,
        "sklearn": sklearn.__version__,
        "seconds": round(time.time() - start, 1),
        "floors": floors,
    }
    from kgemo.storage import write_json

    write_json(args.out, result)
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
