"""COSMIC / TODKAT: knowledge preparation (utterances/s, cold vs cached) and training throughput vs KET.

Preparation, on the first ``--utterances`` utterances of ``--dataset``'s ``--split``, each with an empty cache
(cold) and then again with it filled (cached), in one process:

* ``event graph (retrieval)`` — building the COSMIC event graphs: ATOMIC retrieval with the utterance features
  (``search_vectors``, five relations, 3 tails each) vs reading them back from the graph cache;
* ``kb build comet (RetrievedComet)`` — ``build_comet`` without a checkpoint: the offline stand-in's tails and states
  for five relations (text encoding + retrieval) vs answered from the SQLite generation cache;
* ``kb build comet (tiny COMET)`` — ``build_comet`` with a tiny random BART COMET built here (1 layer, d = 16; the
  real COMET-BART is ~400M parameters, so this measures kgemo's batching and cache, not a real model) vs cached.

Training: each of ``--models`` trains ``--epochs`` epochs through the real trainer on the dataset (features and
graphs from their caches); the train-epoch time is measured by a callback and reported as utterances/s, with the
ratio to KET from the same run.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path


def add_arguments(p):
    p.add_argument("--dataset", default="meld")
    p.add_argument("--split", default="test", help="split whose utterances the preparation rows use")
    p.add_argument("--utterances", type=int, default=1000, help="utterances for the preparation rows")
    p.add_argument("--models", nargs="+", default=["ket", "cosmic", "todkat"])
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: small graph models gain nothing from more on a shared CPU)")
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--skip-training", action="store_true")


def _tiny_comet(folder: Path, texts: list[str]) -> Path:
    """A random 1-layer BART with a word-level vocabulary of ``texts`` (5,000 words at most), saved as a COMET
    checkpoint."""
    import re

    from kgemo.knowledge.comet import save_random_comet

    words = list(dict.fromkeys(w for t in texts for w in re.findall(r"\S+", t)))[:5000]
    return save_random_comet(folder, words, max_positions=128)


def _preparation(args, rows, notes):
    from kgemo.data import load_dataset
    from kgemo.graphs import GraphCache
    from kgemo.knowledge.build import build_comet
    from kgemo.training import load_config, prepare_data
    from kgemo.training.data import build_pipeline

    cfg = load_config(f"configs/cosmic_{args.dataset}.yaml", ["train.progress=false"])
    pipeline = build_pipeline(cfg)
    convs, n = [], 0
    for conv in load_dataset(args.dataset, args.split):
        if n >= args.utterances:
            break
        convs.append(conv)
        n += len(conv)
    texts = [u.text for c in convs for u in c.utterances]
    base = {"dataset": args.dataset, "split": args.split, "utterances": len(texts)}

    # Event graphs: retrieval from the (cached) utterance features vs the graph cache.
    data = prepare_data(cfg, splits=(args.split,), pipeline=pipeline)
    feats = [g["utterance"].x.numpy() for g in data.graphs[args.split][:len(convs)]]
    retriever = pipeline.knowledge["atomic"]
    retriever.index  # noqa: B018  the index loads outside the timing
    with tempfile.TemporaryDirectory() as tmp:
        cache = GraphCache(tmp)
        t = time.perf_counter()
        cache.get_or_build({"bench": "event"}, lambda: pipeline.builder.build_many(
            convs, feats, data.label_spaces, pipeline.builder_knowledge(), progress=False))
        cold = time.perf_counter() - t
        t = time.perf_counter()
        cache.get_or_build({"bench": "event"}, lambda: [])
        warm = time.perf_counter() - t
    rows.append({**base, "step": "event graph (retrieval)", "cold utt/s": round(len(texts) / cold, 1),
                 "cached utt/s": round(len(texts) / warm, 1), "cached/cold": round(cold / warm, 1)})

    # build_comet: the RetrievedComet stand-in and a tiny COMET, each into a fresh cache, twice.
    old_home = os.environ.get("KGEMO_HOME")
    with tempfile.TemporaryDirectory() as tmp:
        for label, model in (("kb build comet (RetrievedComet)", None),
                             ("kb build comet (tiny COMET, greedy)", "tiny")):
            os.environ["KGEMO_HOME"] = str(Path(tmp) / label.replace(" ", "_"))
            path = None if model is None else _tiny_comet(Path(tmp) / "comet", texts)
            kw = dict(model=path, k=3, num_beams=1 if model else 5, encoder=pipeline.encoder, progress=False)
            first = build_comet(texts, **kw)
            second = build_comet(texts, **kw)
            rows.append({**base, "step": label, "cold utt/s": round(len(set(texts)) / first["seconds"], 1),
                         "cached utt/s": round(len(set(texts)) / max(second["seconds"], 1e-6), 1),
                         "cached/cold": round(first["seconds"] / max(second["seconds"], 1e-6), 1)})
        if old_home is None:
            os.environ.pop("KGEMO_HOME", None)
        else:
            os.environ["KGEMO_HOME"] = old_home
    notes.append("Preparation rows: distinct texts per second; 'cached' is a second pass over the same texts "
                 "(graph cache / SQLite generation cache), which is what every later training run costs.")
    notes.append("The tiny COMET is a random 1-layer BART (d = 16) decoding greedily: it measures kgemo's batching "
                 "and caching, not a real COMET-BART (~400M parameters), which no offline machine here has.")


def _epoch_timer():
    """The training benchmark's EpochTimer (scripts/bench/train.py), loaded from its file like benchmark.py does."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_train", Path(__file__).with_name("train.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EpochTimer()


def _training(args, rows, notes):
    import torch

    from kgemo.training import fit, load_config, prepare_data
    from kgemo.training.data import build_pipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() and args.accelerator != "cpu" else "cpu"
    for name in args.models:
        cfg = load_config(f"configs/{name}_{args.dataset}.yaml",
                          [f"train.epochs={args.epochs}", "train.progress=false", "train.patience=100",
                           f"train.accelerator={args.accelerator}", f"train.threads={args.threads}"])
        pipeline = build_pipeline(cfg)
        _ = pipeline.transform  # concept / tail tables from their caches, outside the timings
        data = prepare_data(cfg, pipeline=pipeline)
        timer = _epoch_timer()
        with tempfile.TemporaryDirectory() as out:
            cfg.output_dir = out
            result = fit(cfg, data=data, callbacks=[timer])
        epoch_s = sum(timer.times) / len(timer.times)
        rows.append({"dataset": args.dataset, "step": f"train {name}", "device": device,
                     "train utt/s": round(result["train_utterances"] / epoch_s, 1), "s/epoch": round(epoch_s, 2),
                     "parameters": result["parameters"]})
    ket = next((r for r in rows if r.get("step") == "train ket"), None)
    if ket:
        for r in rows:
            if "train utt/s" in r:
                r["vs ket"] = round(r["train utt/s"] / ket["train utt/s"], 2)
    notes.append("Training rows: forward + backward + optimiser step over the train split, validation excluded; "
                 "COSMIC walks the turns of a batch one position at a time (two directions), so it is the slowest.")


def run(args) -> dict:
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    rows: list[dict] = []
    notes: list[str] = []
    _preparation(args, rows, notes)
    if not args.skip_training:
        _training(args, rows, notes)
    return {"description": (__doc__ or "").strip().splitlines()[0], "rows": rows, "notes": notes}
