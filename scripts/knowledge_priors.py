"""Does knowledge as a prior carry signal when labels are few? A probe on frozen MiniLM features, scored on dev.

Before building a prior into a model (issue: knowledge built for the scarce regime), this measures whether it
helps the simplest learner that can use it: a class-balanced logistic regression on the packaged MiniLM's
utterance vectors, trained on a nested share of the train conversations (the same subsets as
``data.train_share``: kgemo.training.data.share_indices) and scored on the **dev** split with the dataset's metric,
with and without each prior:

* ``vad`` — NRC-VAD affect of the utterance's words as direct features: mean, min and max valence, arousal and
  dominance of the words the lexicon knows, and the share it knows (10 numbers);
* ``prototypes`` — zero-shot class prototypes: each class's name and synonyms plus their 20 strongest ConceptNet
  neighbours, encoded and averaged; the feature is the cosine of the utterance to each prototype (one per class).
  Alone (``zero_shot``: argmax of the cosines, centred per class) it is the semantic-embedding zero-shot classifier.

    python scripts/knowledge_priors.py --datasets meld emorynlp --shares 0.01 0.05 0.1 --seeds 1 2 3 \
        --out docs/knowledge_priors.json

Results: docs/learning-curves.md ("Knowledge as a prior").
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: the words that name each class (its label and one or two synonyms), for the prototypes.
CLASS_WORDS = {
    "meld": {"neutral": ["neutral", "calm", "ordinary"], "joy": ["joy", "happy"], "surprise": ["surprise", "amazed"],
             "anger": ["anger", "angry"], "sadness": ["sadness", "sad"], "disgust": ["disgust", "gross"],
             "fear": ["fear", "afraid"]},
    "emorynlp": {"Neutral": ["neutral", "calm", "ordinary"], "Joyful": ["joy", "happy"],
                 "Peaceful": ["peaceful", "content", "relaxed"], "Powerful": ["powerful", "confident", "proud"],
                 "Scared": ["fear", "scared"], "Mad": ["anger", "mad"], "Sad": ["sadness", "sad"]},
}


def prototypes(kb, encoder, words: dict[str, list[str]], labels, k: int = 20) -> np.ndarray:
    rows = []
    for label in labels:
        names = words[label]
        found = kb.neighbours(names, k=k)
        texts = list(dict.fromkeys(list(names) + [kb.concepts[c].replace("_", " ")
                                                   for row in found.concept for c in row if c >= 0]))
        v = np.asarray(encoder.encode(texts), dtype=np.float64)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        p = v.mean(0)
        rows.append(p / np.linalg.norm(p))
    return np.stack(rows)


def vad_features(kb, texts: list[str]) -> np.ndarray:
    out = []
    for text in texts:
        ids = kb.lookup(kb.tokenize(text))
        ids = ids[ids >= 0]
        known = kb.vad_known(ids) if len(ids) else np.zeros(0, bool)
        v = kb.vad(ids[known]) if known.any() else np.full((1, 3), 0.5)
        out.append(np.concatenate([v.mean(0), v.min(0), v.max(0), [known.mean() if len(ids) else 0.0]]))
    return (np.asarray(out) - 0.5) * 4  # about unit scale, like the encoder's features times sqrt(dim)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["meld", "emorynlp"], choices=sorted(CLASS_WORDS))
    p.add_argument("--shares", nargs="+", type=float, default=[0.01, 0.05, 0.1])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--out", default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sklearn.linear_model import LogisticRegression

    from kgemo.data import get_dataset, load_dataset
    from kgemo.encoders import SentenceEncoder
    from kgemo.knowledge import ConceptNetKB
    from kgemo.metrics import score
    from kgemo.training.data import share_indices

    encoder, kb = SentenceEncoder("default"), ConceptNetKB.load("default")
    results: dict = {"command": "python scripts/knowledge_priors.py " + " ".join(argv or sys.argv[1:]),
                     "learner": "LogisticRegression(class_weight='balanced', max_iter=2000) on frozen MiniLM",
                     "split": "dev", "datasets": {}}
    for dataset in args.datasets:
        spec = get_dataset(dataset)
        space, metric = spec.label_space("emotion"), spec.metric("emotion")
        split = {}
        for name in ("train", "dev"):
            convs = load_dataset(dataset, name)
            texts = [u.text for c in convs for u in c.utterances]
            y = np.array([space.index(u.labels["emotion"]) if u.labels.get("emotion") is not None else -1
                          for c in convs for u in c.utterances])
            sizes = np.array([len(c.utterances) for c in convs])
            split[name] = {"x": np.asarray(encoder.encode(texts), dtype=np.float64), "y": y,
                           "vad": vad_features(kb, texts), "offsets": np.concatenate([[0], np.cumsum(sizes)]),
                           "n": len(convs)}
        protos = prototypes(kb, encoder, CLASS_WORDS[dataset], space.labels)
        for s in split.values():
            s["proto"] = 5 * (s["x"] @ protos.T)  # cosines (the features are unit vectors), about unit scale
        dev = split["dev"]
        keep = dev["y"] >= 0
        zero = dev["proto"] - split["train"]["proto"].mean(0)
        out = {"metric": metric, "zero_shot": round(score(metric, dev["y"][keep], zero.argmax(1)[keep], space), 2),
               "shares": {}}
        variants = {"plain": ("x",), "vad": ("x", "vad"), "prototypes": ("x", "proto")}
        for share in args.shares:
            scores: dict[str, list[float]] = {v: [] for v in variants}
            for seed in args.seeds:
                tr = split["train"]
                picked = share_indices(tr["n"], share, seed, f"{dataset}/train")
                idx = np.concatenate([np.arange(tr["offsets"][i], tr["offsets"][i + 1]) for i in picked])
                idx = idx[tr["y"][idx] >= 0]
                for v, parts in variants.items():
                    fit = LogisticRegression(max_iter=2000, class_weight="balanced")
                    fit.fit(np.hstack([tr[k][idx] for k in parts]), tr["y"][idx])
                    pred = fit.predict(np.hstack([dev[k] for k in parts]))
                    scores[v].append(round(score(metric, dev["y"][keep], pred[keep], space), 2))
            out["shares"][str(share)] = {v: {"seeds": s, "mean": round(statistics.mean(s), 2)}
                                         for v, s in scores.items()}
            print(dataset, share, {v: out["shares"][str(share)][v]["mean"] for v in variants}, flush=True)
        print(dataset, "zero-shot prototypes", out["zero_shot"])
        results["datasets"][dataset] = out
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
