#!/usr/bin/env python
"""GPU check: every registered model's training step, and exact / FAISS retrieval, on CUDA vs CPU; a JSON report.

    python scripts/gpu_check.py [--out gpu_check.json]          # on a machine with CUDA
    python scripts/gpu_check.py --device cpu --conversations 8  # the same code path on CPU (tests)

Without a CUDA device it says "no CUDA device: skipped" and writes a report with ``"status": "skipped"``.

**Models**: every model of ``kgemo.models.MODELS`` gets synthetic conversations of realistic size (``--utterances``
turns of ~10 words, words drawn from the bundled ConceptNet vocabulary so concept graphs have concepts), 384-d hash
features (MiniLM's width; no encoder runs), its own graph builder with the bundled default KB (ConceptNet + NRC-VAD,
ATOMIC with head embeddings made by the same hash encoder) and its tasks (emotion; act + sentiment for the joint
models). One training step = forward, cross-entropy (+ the model's own auxiliary losses), backward, AdamW step;
utterances/s over ``--steps`` steps after ``--warmup``, on the CPU (all its cores) and on the device (fp32, and bf16
autocast on CUDA), batches moved to the device inside the timed loop as a loader would.

**Retrieval**: ``--retrieval-n`` × 384 synthetic unit vectors (the ``retrieval_1m`` benchmark's mixture): exact
search with FAISS flat on CPU (kgemo's CPU path) vs exact torch ``topk`` on the device (kgemo's GPU path when faiss
has no GPU), batch and one query per call, and the two must return the same neighbours; then the FAISS GPU index
when ``faiss.get_num_gpus() > 0`` (else the report says why not).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


class HashEncoder:
    """Deterministic 384-d features from a text's sha256 (no model: the check times models, not the encoder)."""

    def __init__(self, dim: int = 384):
        self.dim, self.id = dim, f"gpu-check-hash-{dim}"

    def encode(self, texts, batch_size=None, show_progress=None):
        out = np.empty((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode("utf-8")).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
            "torch": torch.__version__, "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
            "cpu_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2 ** 30, 1)
    try:
        import faiss

        info["faiss"] = faiss.__version__
        info["faiss_gpus"] = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
    except ImportError as exc:
        info["faiss"] = f"not importable: {exc}"
    return info


# ---------------------------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------------------------
def conversations(n: int, turns: int, words: list[str], datasets: tuple[str, ...], spaces, seed: int = 0):
    """Random turns of ~10 words with random labels: the check times the work, not what is learnt."""
    from kgemo.data import Conversation, Utterance

    rng = np.random.default_rng(seed)
    out = []
    for c in range(n):
        length = max(2, int(rng.poisson(turns)))
        utts = [Utterance(" ".join(rng.choice(words, size=max(3, int(rng.poisson(10))))), "AB"[i % 2],
                          {t: str(rng.choice(list(s.labels))) for t, s in spaces.items()})
                for i in range(length)]
        out.append(Conversation(f"c{c}", utts, dataset=datasets[c % len(datasets)], split="train"))
    return out


def model_inputs(cls, args, encoder, kb, words):
    """(pipeline, label spaces, graphs) for model class ``cls``: its builder, knowledge and tasks."""
    import dataclasses

    import torch

    from kgemo.data import label_space
    from kgemo.graphs import builder_class
    from kgemo.knowledge import AtomicRetriever
    from kgemo.models import JointConfig
    from kgemo.pipeline import InputPipeline

    joint = issubclass(cls.config_class, JointConfig)
    spaces = ({"sentiment": label_space("mastodon", "sentiment"), "act": label_space("mastodon", "act")} if joint
              else {"emotion": label_space("meld", "emotion")})
    builder_cls = builder_class(cls.graph_builder)
    fields = {f.name for f in dataclasses.fields(builder_cls.settings_class)}
    settings = {"source": ["synthetic-source"]} if "source" in fields else {}  # cross-domain: half source
    builder = builder_cls(builder_cls.settings_class(**settings))
    knowledge = {}
    if "conceptnet" in builder.knowledge:
        knowledge["conceptnet"] = kb["conceptnet"]
    if "atomic" in builder.knowledge:
        if "atomic" not in kb:
            kb["atomic"] = AtomicRetriever.load("default", encoder=encoder)
        knowledge["atomic"] = kb["atomic"]
    pipeline = InputPipeline(builder, encoder, knowledge, encoder_name="hash")
    convs = conversations(args.conversations, args.utterances, words, ("synthetic-source", "synthetic-target"),
                          spaces)
    graphs = pipeline.graphs(convs, spaces, features=pipeline.encode(convs))
    torch.manual_seed(0)
    model = cls(pipeline.fill_widths(cls.config_class()), spaces)
    return pipeline, spaces, graphs, model


def train_step_rate(model, batches, device, steps: int, warmup: int, autocast: bool = False) -> dict:
    """Utterances/s of forward + loss + backward + AdamW step over ``steps`` batches (after ``warmup``)."""
    import torch
    import torch.nn.functional as F

    model = model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cuda = str(device).startswith("cuda")

    def step(batch):
        batch = batch.to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast and cuda):
            forward_train = getattr(model, "forward_train", None)
            logits, aux = forward_train(batch) if forward_train is not None else (model(batch), {})
            loss = sum(F.cross_entropy(out.float(), batch["utterance"][f"y_{t}"], ignore_index=-1)
                       for t, out in logits.items())
            loss = loss + sum(aux.values()) if aux else loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return int(batch["utterance"].num_nodes)

    for i in range(warmup):
        step(batches[i % len(batches)])
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    utts, t = 0, time.perf_counter()
    for i in range(steps):
        utts += step(batches[i % len(batches)])
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    out = {"utt_per_s": round(utts / seconds, 1), "steps": steps, "utterances": utts}
    if cuda:
        out["peak_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return out


def check_models(args, device: str) -> list[dict]:
    import copy

    import torch

    from kgemo.graphs import batches as make_batches
    from kgemo.knowledge import ConceptNetKB
    from kgemo.models import MODELS, get_model_class

    get_model_class("no_knowledge")  # registers every model
    encoder = HashEncoder()
    kb = {"conceptnet": ConceptNetKB.load("default")}
    words = [c for c in kb["conceptnet"].concepts[:20000] if c.isalpha()]
    names = args.models or sorted(MODELS)
    rows = []
    for name in names:
        row = {"model": name}
        try:
            cls = MODELS[name]
            pipeline, spaces, graphs, model = model_inputs(cls, args, encoder, kb, words)
            batch_list = list(make_batches(graphs, args.batch_size, pipeline.transform))
            prepare = getattr(model, "prepare_training", None)
            if prepare is not None:
                prepare(iter(batch_list))
            row.update(builder=cls.graph_builder, tasks=list(spaces), parameters=sum(p.numel() for p in
                                                                                     model.parameters()),
                       utterances_per_batch=round(sum(int(b["utterance"].num_nodes) for b in batch_list)
                                                  / len(batch_list), 1))
            cpu = train_step_rate(copy.deepcopy(model), batch_list, "cpu", args.steps, args.warmup)
            row["cpu_utt_per_s"] = cpu["utt_per_s"]
            if device != "cpu":
                dev = train_step_rate(copy.deepcopy(model), batch_list, device, args.steps, args.warmup)
                row.update({"cuda_utt_per_s": dev["utt_per_s"], "cuda_speedup": round(dev["utt_per_s"] /
                            cpu["utt_per_s"], 2), "cuda_peak_memory_mb": dev.get("peak_memory_mb")})
                bf16 = train_step_rate(copy.deepcopy(model), batch_list, device, args.steps, args.warmup, True)
                row["cuda_bf16_utt_per_s"] = bf16["utt_per_s"]
            else:  # the check's own code path, exercised on CPU (tests): the "device" run is a second CPU run
                dev = train_step_rate(copy.deepcopy(model), batch_list, "cpu", args.steps, args.warmup)
                row["device_utt_per_s"] = dev["utt_per_s"]
            row["ok"] = True
        except Exception as exc:  # one broken model must not hide the others' numbers
            row.update(ok=False, error=f"{type(exc).__name__}: {exc}",
                       trace=traceback.format_exc(limit=3).splitlines()[-3:])
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "trace"}), flush=True)
        if device != "cpu":
            torch.cuda.empty_cache()
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Retrieval
# ---------------------------------------------------------------------------------------------------------------
def _rate(fn, n: int, sync=None) -> tuple[float, object]:
    fn()  # warm-up (CUDA context, kernels, BLAS buffers)
    if sync:
        sync()
    t = time.perf_counter()
    out = fn()
    if sync:
        sync()
    return n / (time.perf_counter() - t), out


def check_retrieval(args, device: str) -> dict:
    import torch

    from bench.retrieval_1m import synthetic
    from kgemo.knowledge.index import VectorIndex, recall_at_k

    k = 10
    xb = synthetic(args.retrieval_n, 384, 2000, seed=0)
    q = synthetic(args.queries, 384, 2000, seed=2)
    single = q[: args.single]
    out = {"n": args.retrieval_n, "dim": 384, "queries": args.queries, "single_queries": len(single), "rows": []}
    flat = VectorIndex.build(xb, kind="flat", gpu=False)
    cpu_batch, (_, exact) = _rate(lambda: flat.search(q, k), len(q))
    cpu_single, _ = _rate(lambda: [flat.search(single[i:i + 1], k) for i in range(len(single))], len(single))
    out["rows"].append({"method": "faiss flat, CPU (exact)", "batch_qps": round(cpu_batch, 1),
                        "single_qps": round(cpu_single, 1), "recall@10": 1.0})

    # kgemo's torch path (VectorIndex kind "torch") on the device: exact topk over the matrix in device memory.
    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    mat = torch.from_numpy(xb).to(device)

    def torch_search(queries):
        s, i = torch.topk(torch.from_numpy(queries).to(device) @ mat.T, k, dim=1)
        return s.cpu().numpy(), i.cpu().numpy()

    chunks = lambda: [torch_search(q[a:a + 256]) for a in range(0, len(q), 256)]  # noqa: E731 (bounded memory)
    dev_batch, res = _rate(chunks, len(q), sync)
    ids = np.concatenate([i for _, i in res])
    dev_single, _ = _rate(lambda: [torch_search(single[i:i + 1]) for i in range(len(single))], len(single), sync)
    out["rows"].append({"method": f"torch exact topk, {device}", "batch_qps": round(dev_batch, 1),
                        "single_qps": round(dev_single, 1), "recall@10": round(recall_at_k(ids, exact, k), 4),
                        "batch_speedup": round(dev_batch / cpu_batch, 1),
                        "single_speedup": round(dev_single / cpu_single, 1)})
    # The same through VectorIndex (pick_device: CUDA when there is one): what AtomicRetriever does without faiss.
    vi = VectorIndex.build(xb, kind="torch")
    out["rows"][-1]["vectorindex_torch_agrees"] = bool(np.array_equal(vi.search(q[:50], k)[1], exact[:50]))
    del mat, vi

    gpus = 0
    try:
        import faiss

        gpus = int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0
        has_gpu_api = hasattr(faiss, "StandardGpuResources")
    except ImportError:
        has_gpu_api = False
    if gpus > 0:
        for kind, params in (("flat", {}), ("ivf", {"nlist": 1024, "nprobe": 32}),
                             ("ivfpq", {"nlist": 1024, "nprobe": 32, "m": 64})):
            try:
                index = VectorIndex.build(xb, kind=kind, gpu=True, train_size=50_000, **params)
                batch, (_, gids) = _rate(lambda: index.search(q, k), len(q))
                one, _ = _rate(lambda: [index.search(single[i:i + 1], k) for i in range(len(single))], len(single))
                out["rows"].append({"method": f"faiss {kind}, GPU", "params": str(params), "backend": index.backend,
                                    "batch_qps": round(batch, 1), "single_qps": round(one, 1),
                                    "recall@10": round(recall_at_k(gids, exact, k), 4),
                                    "batch_speedup": round(batch / cpu_batch, 1)})
            except Exception as exc:
                out["rows"].append({"method": f"faiss {kind}, GPU", "error": f"{type(exc).__name__}: {exc}"})
        out["faiss_gpu"] = {"available": True, "gpus": gpus}
    else:
        why = ("the installed faiss has no GPU code (faiss-cpu): faiss.get_num_gpus() is 0 and StandardGpuResources "
               "is missing" if not has_gpu_api else "faiss was built with GPU support but sees no GPU "
               "(faiss.get_num_gpus() == 0: driver / CUDA runtime mismatch?)")
        out["faiss_gpu"] = {"available": False, "reason": why, "gpu_path": "torch exact topk (VectorIndex kind "
                                                                           "'torch')"}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="gpu_check.json", help="JSON report path")
    p.add_argument("--device", default=None, help="cuda (default when available) or cpu (runs the check's code "
                   "path on CPU, for tests)")
    p.add_argument("--models", nargs="+", help="model names (default: every registered model)")
    p.add_argument("--conversations", type=int, default=64, help="synthetic conversations per model")
    p.add_argument("--utterances", type=int, default=10, help="mean turns per conversation (MELD: 9.3)")
    p.add_argument("--batch-size", type=int, default=16, help="conversations per step (train.batch_size default)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--retrieval-n", type=int, default=1_000_000, help="vectors for the retrieval check (0: skip)")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--single", type=int, default=100, help="queries timed one per call")
    args = p.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    report: dict = {"machine": machine(), "args": vars(args), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    device = args.device or ("cuda" if torch.cuda.is_available() else None)
    if device is None or (device.startswith("cuda") and not torch.cuda.is_available()):
        print("no CUDA device: skipped")
        report.update(status="skipped", reason="no CUDA device (torch.cuda.is_available() is False)", models=[],
                      retrieval=None)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        return 0
    report["device"] = device
    t0 = time.time()
    report["models"] = check_models(args, device)
    report["retrieval"] = check_retrieval(args, device) if args.retrieval_n else None
    report["seconds"] = round(time.time() - t0, 1)
    report["status"] = "ok" if all(r["ok"] for r in report["models"]) else "model errors"
    Path(args.out).write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"{report['status']}: report written to {args.out}")
    return 0 if report["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
