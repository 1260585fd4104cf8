#!/usr/bin/env python
"""How close must the nearest ATOMIC event be before its inferences mean something? Chosen on dev data.

    python scripts/atomic_threshold.py                    # MELD + DailyDialog dev -> docs/atomic_threshold.json

For a model that does not read ATOMIC (KET, the default), the annotator shows the inferences of the ATOMIC head
nearest to the utterance (cosine of the sentence embeddings, the model's own encoder). This script asks, on dev
splits with emotion labels, when such an inference agrees with the speaker's feeling:

* gold valence: joy → positive; anger, disgust, fear, sadness → negative (neutral and surprise have none and are
  left out);
* inference valence: the xReact ("PersonX feels") and oReact ("others feel") tail of the nearest head that has the
  relation (what the annotator shows, ``top_events=1``), scored by NRC-VAD: the mean valence of its words
  (stop-words aside) ≥ 0.65 positive, ≤ 0.35 negative, else none (left out);
* agreement: the share of (utterance, relation) pairs with both valences where they are the same, per similarity
  band and above each candidate threshold, against the same share for the first tail of a random head with that
  relation (seeded; what an unrelated match gives: the base rates of both valences).

The threshold is the smallest candidate (a step of 0.05) above which the nearest heads agree clearly more often
than random heads: at least 10 points more, with the 95% Wilson interval of the agreement above the random
agreement's interval, and at least 30 pairs; so a reader who sees an inference can take it as related to the
turn. Written to ``docs/atomic_threshold.json``; ``kgemo.annotate.annotator.MIN_EVENT_SIMILARITY`` must equal its
``threshold`` (a test checks it).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RELATIONS = ("xReact", "oReact")
GOLD_VALENCE = {"joy": 1, "anger": -1, "disgust": -1, "fear": -1, "sadness": -1}
POSITIVE, NEGATIVE = 0.65, 0.35
CANDIDATES = [round(0.05 * k, 2) for k in range(2, 15)]        # 0.10 ... 0.70
MIN_GAIN, MIN_PAIRS = 0.10, 30


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def tail_valence(tail: str, lexicon, stopwords) -> int:
    """+1 / -1 / 0 for an ATOMIC tail by the mean NRC-VAD valence of its words."""
    import re

    words = [w for w in re.findall(r"[a-z']+", tail.lower()) if w not in stopwords]
    rows = [i for i in (lexicon.word_index(w) for w in words) if i >= 0]
    if not rows:
        return 0
    v = float(lexicon.values[rows, 0].mean())
    return 1 if v >= POSITIVE else -1 if v <= NEGATIVE else 0


def pairs(datasets, split: str, model: str, seed: int):
    """(dataset, relation, similarity, gold valence, nearest tail valence, random tail valence) per labelled pair."""
    from kgemo.annotate import resolve_model_path
    from kgemo.data import dataset_files, load_dataset, to_ekman
    from kgemo.encoders import FeatureCache, file_sha256
    from kgemo.knowledge import AtomicRetriever, VadLexicon
    from kgemo.knowledge.stopwords import STOPWORDS
    from kgemo.pipeline import load_model_and_pipeline
    from kgemo.storage import data_root

    _, pipeline, _ = load_model_and_pipeline(resolve_model_path(model), "cpu")
    retriever = AtomicRetriever.load("default", encoder=pipeline.encoder)
    lexicon = VadLexicon.from_file(data_root() / "kb" / "NRC-VAD-Lexicon.txt")
    table = retriever.table
    rng = np.random.default_rng(seed)
    rows = []
    for ds in datasets:
        convs = load_dataset(ds, split)
        sources = {Path(p).name: file_sha256(p) for p in dataset_files(ds, split)}
        feats = np.concatenate(FeatureCache().conversation_features(pipeline.encoder, convs, key=f"{ds}/{split}",
                                                                    sources=sources))
        gold = [GOLD_VALENCE.get(to_ekman(u.labels["emotion"]), 0) for c in convs for u in c]
        hits = retriever.search_vectors(feats, k=1, relations=RELATIONS)
        for rel in RELATIONS:
            candidates = np.flatnonzero(retriever._has_relation(rel))
            for g, row in zip(gold, hits):
                if not g or not row.get(rel):
                    continue
                h = row[rel][0]
                random_tail = table.tails_of(int(rng.choice(candidates)), rel)[0]
                rows.append((ds, rel, h.score, g, tail_valence(h.tail, lexicon, STOPWORDS),
                             tail_valence(random_tail, lexicon, STOPWORDS)))
    return rows, str(pipeline.encoder.id)


def agreement(sel) -> dict:
    """Agreement of the nearest and the random tails' valence with the gold valence over ``sel`` pairs."""
    near = [(g == v) for _, _, _, g, v, _ in sel if v]
    rand = [(g == v) for _, _, _, g, _, v in sel if v]
    out = {"pairs": len(sel), "nearest_decided": len(near), "random_decided": len(rand)}
    for name, xs in (("nearest", near), ("random", rand)):
        k = int(sum(xs))
        lo, hi = wilson(k, len(xs))
        out[name] = round(k / len(xs), 4) if xs else None
        out[f"{name}_ci"] = [round(lo, 4), round(hi, 4)]
    return out


def choose(rows) -> tuple[float | None, list[dict]]:
    table = []
    chosen = None
    for t in CANDIDATES:
        a = {"threshold": t, **agreement([r for r in rows if r[2] >= t])}
        ok = (a["nearest"] is not None and a["nearest_decided"] >= MIN_PAIRS
              and a["nearest"] - a["random"] >= MIN_GAIN and a["nearest_ci"][0] > a["random_ci"][1])
        a["clearly_better"] = bool(ok)
        table.append(a)
        if ok and chosen is None:
            chosen = t
    return chosen, table


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["meld", "dailydialog"])
    p.add_argument("--split", default="dev")
    p.add_argument("--model", default="default", help="whose encoder embeds the queries (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "docs" / "atomic_threshold.json"))
    args = p.parse_args(argv)

    rows, encoder = pairs(args.datasets, args.split, args.model, args.seed)
    chosen, above = choose(rows)
    edges = [-1.0, 0.2, 0.3, 0.4, 0.5, 0.6, 1.01]
    bands = [{"band": [lo, min(hi, 1.0)], **agreement([r for r in rows if lo <= r[2] < hi])}
             for lo, hi in zip(edges[:-1], edges[1:])]
    per_dataset = {ds: choose([r for r in rows if r[0] == ds])[0] for ds in args.datasets}
    sims = np.array([r[2] for r in rows])
    result = {
        "threshold": chosen, "criterion": (f"smallest similarity t in steps of 0.05 such that, over (utterance, "
                                           f"relation) pairs with similarity >= t, the nearest head's tail valence "
                                           f"agrees with the gold valence at least {MIN_GAIN:.0%} points more often "
                                           f"than a random head's, the 95% Wilson intervals do not overlap, and at "
                                           f"least {MIN_PAIRS} pairs are decided"),
        "datasets": args.datasets, "split": args.split, "relations": list(RELATIONS), "encoder": encoder,
        "seed": args.seed, "valence": {"gold": GOLD_VALENCE, "tail_positive_at_least": POSITIVE,
                                       "tail_negative_at_most": NEGATIVE, "lexicon": "NRC-VAD"},
        "pairs": len(rows), "similarity_quantiles": {q: round(float(np.quantile(sims, q)), 4)
                                                     for q in (0.1, 0.25, 0.5, 0.75, 0.9)} if len(rows) else {},
        "above_threshold": above, "bands": bands, "threshold_per_dataset": per_dataset,
        "command": "python scripts/atomic_threshold.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    from kgemo.storage import write_json

    write_json(args.out, result)
    print(f"threshold {chosen} ({len(rows)} pairs; per dataset {per_dataset}); encoder {encoder}")
    print(f"{'t':>5} {'pairs':>6} {'nearest':>8} {'random':>7}")
    for a in above:
        print(f"{a['threshold']:>5} {a['nearest_decided']:>6} {a['nearest']!s:>8} {a['random']!s:>7}"
              f"{'  *' if a['clearly_better'] else ''}")
    for b in bands:
        print(f"band {b['band']}: {b['nearest_decided']} decided, nearest {b['nearest']}, random {b['random']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
