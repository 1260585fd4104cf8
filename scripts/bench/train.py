"""Training throughput (utterances/s) per model, and graph building cold vs cached (conversations/s).

Features come from the feature cache (encoding is benchmarked separately by ``encode``). Each model trains for
``--epochs`` epochs through the real trainer; the time of each training epoch (without validation) is measured by
a callback. Ratios compare models (vs ``no_knowledge``) and cached vs cold graph building in the same run.
"""
from __future__ import annotations

import logging
import tempfile
import time

import lightning as L
import torch


class EpochTimer(L.Callback):
    def __init__(self):
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer, pl_module):
        self._t = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.times.append(time.perf_counter() - self._t)


def add_arguments(p):
    p.add_argument("--dataset", default="meld")
    p.add_argument("--models", nargs="+", default=["no_knowledge", "ket", "ckenet"])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: small graph models gain nothing from more on a shared CPU)")
    p.add_argument("--accelerator", default="auto")


def run(args) -> dict:
    from kgemo.graphs import GraphCache
    from kgemo.training import fit, load_config, prepare_data
    from kgemo.training.data import build_pipeline

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, notes = [], []
    for name in args.models:
        cfg = load_config(f"configs/{name}_{args.dataset}.yaml",
                          [f"train.epochs={args.epochs}", "train.progress=false", "train.patience=100",
                           f"train.accelerator={args.accelerator}", f"train.threads={args.threads}"])
        pipeline = build_pipeline(cfg)
        _ = pipeline.transform  # concept table from its cache, outside the timings
        # Graph building: cold (build + write the cache) vs cached (read + verify), same conversations.
        with tempfile.TemporaryDirectory() as tmp:
            data = prepare_data(cfg, splits=("train",), pipeline=pipeline)  # features from the real cache
            convs = data.conversations["train"]
            feats = [g["utterance"].x.numpy() for g in data.graphs["train"]]
            cache = GraphCache(tmp)
            t = time.perf_counter()
            cache.get_or_build({"bench": name}, lambda: pipeline.builder.build_many(
                convs, feats, data.label_spaces, pipeline.knowledge, progress=False))
            cold = time.perf_counter() - t
            t = time.perf_counter()
            cache.get_or_build({"bench": name}, lambda: [])
            warm = time.perf_counter() - t
        data = prepare_data(cfg, pipeline=pipeline)
        timer = EpochTimer()
        with tempfile.TemporaryDirectory() as out:
            cfg.output_dir = out
            result = fit(cfg, data=data, callbacks=[timer])
        utts = result["train_utterances"]
        epoch_s = sum(timer.times) / len(timer.times)
        rows.append({"dataset": args.dataset, "model": name,
                     "device": "cuda" if torch.cuda.is_available() and args.accelerator != "cpu" else "cpu",
                     "train utt/s": round(utts / epoch_s, 1), "s/epoch": round(epoch_s, 2),
                     "parameters": result["parameters"],
                     "graphs cold conv/s": round(len(convs) / cold, 1),
                     "graphs cached conv/s": round(len(convs) / warm, 1),
                     "cached/cold": round(cold / warm, 1)})
    base = next((r for r in rows if r["model"] == "no_knowledge"), None)
    if base:
        for r in rows:
            r["speed vs no_knowledge"] = round(r["train utt/s"] / base["train utt/s"], 2)
    notes.append(f"{args.epochs} epochs each through `kgemo.training.fit`; s/epoch excludes validation; torch "
                 f"threads {torch.get_num_threads()}.")
    notes.append("graphs cold = build every train graph and write the cache; cached = read it back and verify. "
                 "Builders whose cached/cold is below 1 (the plain conversation graph) are not cached "
                 "(`GraphBuilder.cache = False`).")
    return {"description": __doc__.strip().splitlines()[0], "rows": rows, "notes": notes}
