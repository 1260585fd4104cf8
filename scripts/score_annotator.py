#!/usr/bin/env python
"""Score an annotator the way a user meets it: ``Annotator.annotate_many`` over a dataset's test split.

    python scripts/score_annotator.py --model default --datasets meld dailydialog --out docs/default_scores.json

For each dataset: the gold emotion labels mapped to the model's label space (MELD / DailyDialog → Ekman-7 by
name, ``happiness`` → ``joy``), the labels the annotator shows, and the probabilities it shows (calibrated when
the model folder has a ``calibration.json``). Reported: the dataset's own metric (MELD weighted F1, DailyDialog
micro F1 without neutral), macro F1, and the expected calibration error (15 equal-width bins of the top
probability, kgemo.metrics.calibration) — the numbers the default annotator's goals are stated in.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def score_dataset(ann, dataset: str, split: str = "test", task: str = "emotion") -> dict:
    from kgemo.data import get_dataset, load_dataset
    from kgemo.metrics import score
    from kgemo.metrics.calibration import expected_calibration_error

    space = ann.model.label_spaces[task]
    convs = load_dataset(dataset, split)
    start = time.perf_counter()
    results = list(ann.annotate_many(convs))
    seconds = time.perf_counter() - start
    gold, pred, probs = [], [], []
    for conv, res in zip(convs, results):
        for utt, ann_utt in zip(conv.utterances, res.utterances):
            label = utt.labels.get(task)
            if label is None:
                continue
            gold.append(space.index(label))  # the space's aliases map the dataset's names (happiness → joy)
            pred.append(space.index(ann_utt.labels[task]))
            probs.append([ann_utt.probabilities[task][c] for c in space.labels])
    gold_a, pred_a, probs_a = np.asarray(gold), np.asarray(pred), np.asarray(probs)
    metric = get_dataset(dataset).metric(task)
    return {"utterances": len(gold), "metric": metric, "score": round(score(metric, gold_a, pred_a, space), 2),
            "macro_f1": round(score("macro_f1", gold_a, pred_a, space), 2),
            "ece": round(expected_calibration_error(probs_a, gold_a), 4),
            "agrees_with_argmax": bool((probs_a.argmax(1) == pred_a).all()), "seconds": round(seconds, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="'default' or a model folder")
    p.add_argument("--datasets", nargs="+", default=["meld", "dailydialog"])
    p.add_argument("--split", default="test")
    p.add_argument("--evidence", default="attention", choices=["attention", "occlusion"],
                   help="concept ranking (labels and probabilities do not depend on it; attention is faster)")
    p.add_argument("--out", help="write the scores as JSON here")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from kgemo import Annotator

    ann = Annotator.from_pretrained(args.model, evidence=args.evidence, events=None)
    out = {"model": args.model, "split": args.split, "calibrated": ann.calibration is not None,
           "command": "python scripts/score_annotator.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "datasets": {}}
    for ds in args.datasets:
        out["datasets"][ds] = r = score_dataset(ann, ds, args.split)
        print(f"{ds} {args.split}: {r['metric']} {r['score']:.2f}, macro F1 {r['macro_f1']:.2f}, ECE {r['ece']:.3f} "
              f"({r['utterances']} utterances, {r['seconds']} s)")
    if args.out:
        from kgemo.storage import write_json

        write_json(args.out, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
