"""Million-scale retrieval: exact vs IVF-Flat vs IVF-PQ on a synthetic 1M × 384 set (build, memory, q/s, recall).

The vectors are made inside the benchmark (nothing committed): a mixture of ``--clusters`` topics in 384-d whose
spread decays over directions as a power law (variance of direction j ∝ (j+1)^-1.6, like sentence embeddings,
whose spectrum decays), randomly rotated and L2-normalised. Two held-out query sets come from the same
distribution: ``tune`` (for :func:`~kgemo.knowledge.index.tune_nprobe`) and ``eval`` (recall and speed are
measured on it, so the tuned ``nprobe`` is not judged on the queries it was tuned on).

Per index: build CPU seconds (coarse k-means is trained once on a ``--train-size`` sample and shared by the IVF
indexes — each IVF row counts it), index size (the saved file: what it holds in RAM), the smallest ``nprobe``
reaching ``--target-recall`` recall@10 on the tune set, then recall@10 against exact search on the eval set and
queries per CPU-second for the whole eval set in one call ("batch") and one query per call ("single"); ratios are
vs exact search in the same run. The IVF-PQ index is then re-opened memory-mapped and searched again.
"""
from __future__ import annotations

import gc
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def add_arguments(p) -> None:
    p.add_argument("--n", type=int, default=1_000_000, help="indexed vectors")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--clusters", type=int, default=2000, help="topics of the mixture")
    p.add_argument("--queries", type=int, default=1000, help="queries in each held-out set (tune, eval)")
    p.add_argument("--single", type=int, default=100, help="eval queries timed one per call")
    p.add_argument("--nlist", type=int, default=2048, help="IVF lists (kgemo's default 4·√N would be 4000)")
    p.add_argument("--train-size", type=int, default=100_000, help="vectors sampled to train k-means and PQ")
    p.add_argument("--pq-m", type=int, nargs="+", default=[64, 128], help="IVF-PQ code bytes per vector")
    p.add_argument("--opq", action="store_true", help="also IVF-PQ behind an OPQ rotation (largest --pq-m)")
    p.add_argument("--refine", type=int, default=10, help="IVF-PQ + re-ranking rows: refine × k candidates "
                   "re-ranked by exact inner product with the float vectors, memory-mapped from a .npy (0: none)")
    p.add_argument("--target-recall", type=float, default=0.9)
    p.add_argument("--max-nprobe", type=int, default=512, help="tuning stops here")
    p.add_argument("--threads", type=int, default=1, help="faiss / BLAS threads for every method")
    p.add_argument("--seed", type=int, default=0)


def synthetic(n: int, d: int, clusters: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    """``[n, d]`` float32 unit vectors: topic centre + anisotropic noise (power-law spectrum), rotated."""
    g = np.random.default_rng(12345)  # the distribution (rotation, spectrum, centres): fixed
    rotation, _ = np.linalg.qr(g.standard_normal((d, d)))
    scale = (np.arange(d) + 1.0) ** -0.8
    scale /= np.sqrt((scale ** 2).sum())
    centres = g.standard_normal((clusters, d)) * scale
    rng = np.random.default_rng(seed)  # the sample
    out = np.empty((n, d), np.float32)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        x = centres[rng.integers(0, clusters, b - a)] + 0.6 * rng.standard_normal((b - a, d)) * scale
        x = (x @ rotation.T).astype(np.float32)
        out[a:b] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _cpu(fn):
    """``(result, cpu seconds, wall seconds)`` of ``fn()`` (one thread: CPU time is the work, whatever the load)."""
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c, time.perf_counter() - w


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(args) -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import faiss

    from kgemo.knowledge.index import VectorIndex, brute_force_search, recall_at_k, tune_nprobe

    faiss.omp_set_num_threads(args.threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        pass
    k, nq = 10, args.queries
    rows, notes = [], []
    load_before = os.getloadavg()[0]

    (xb, t_gen, _) = _cpu(lambda: synthetic(args.n, args.dim, args.clusters, args.seed))
    tune_q = synthetic(nq, args.dim, args.clusters, args.seed + 1)
    eval_q = synthetic(nq, args.dim, args.clusters, args.seed + 2)
    tmp = Path(tempfile.mkdtemp(prefix="kgemo-1m-"))

    # -- exact: faiss flat (BLAS); its batch search of both query sets is also the ground truth -------------------
    flat, t_build, _ = _cpu(lambda: VectorIndex.build(xb, kind="flat", gpu=False, keep_matrix=False))
    (_, tune_exact), _, _ = _cpu(lambda: flat.search(tune_q, k))
    (_, exact), t_batch, w_batch = _cpu(lambda: flat.search(eval_q, k))
    _, t_single, w_single = _cpu(lambda: [flat.search(eval_q[i:i + 1], k) for i in range(args.single)])
    flat_mb = flat.save(tmp / "flat.faiss") / 2 ** 20
    (tmp / "flat.faiss").unlink()
    top = brute_force_search(xb, eval_q[:50], k)[0]
    notes.append(f"data: {args.n:,} × {args.dim} float32 ({xb.nbytes / 2 ** 20:,.0f} MB) made in {t_gen:.0f} CPU s; "
                 f"mean cosine of the eval queries' 1st / 10th exact neighbour {top[:, 0].mean():.3f} / "
                 f"{top[:, 9].mean():.3f}")
    exact_batch_qps, exact_single_qps = nq / t_batch, args.single / t_single
    rows.append({"index": "exact (faiss flat)", "params": "", "build_cpu_s": round(t_build, 1),
                 "index_mb": round(flat_mb, 1), "memory_vs_exact": 1.0, "nprobe": None, "tune_recall": 1.0,
                 "recall@10": 1.0, "batch_qps": round(exact_batch_qps, 1), "batch_speedup": 1.0,
                 "single_qps": round(exact_single_qps, 1), "single_speedup": 1.0,
                 "batch_wall_qps": round(nq / w_batch, 1), "single_wall_qps": round(args.single / w_single, 1)})
    flat = None  # free the 1.5 GB
    gc.collect()

    def measure(name: str, params: str, index: VectorIndex, build_s: float, **extra) -> dict:
        tuning = tune_nprobe(index, tune_q, args.target_recall, k, exact_ids=tune_exact, max_nprobe=args.max_nprobe)
        (_, ids), t_b, w_b = _cpu(lambda: index.search(eval_q, k))
        _, t_s, w_s = _cpu(lambda: [index.search(eval_q[i:i + 1], k) for i in range(args.single)])
        mb = index.save(tmp / f"{name}.faiss") / 2 ** 20
        row = {"index": name, "params": params, "build_cpu_s": round(build_s, 1), "index_mb": round(mb, 1),
               "memory_vs_exact": round(mb / flat_mb, 4), "nprobe": tuning.nprobe,
               "tune_recall": round(tuning.recall, 4), "recall@10": round(recall_at_k(ids, exact, k), 4),
               "batch_qps": round(nq / t_b, 1), "batch_speedup": round(nq / t_b / exact_batch_qps, 1),
               "single_qps": round(args.single / t_s, 1),
               "single_speedup": round(args.single / t_s / exact_single_qps, 1),
               "batch_wall_qps": round(nq / w_b, 1), "single_wall_qps": round(args.single / w_s, 1), **extra}
        rows.append(row)
        curve = ", ".join(f"{p}→{r:.3f}" for p, r, _ in sorted(tuning.curve))
        notes.append(f"{name} {params}: nprobe → tune-set recall@10: {curve}"
                     + ("" if tuning.reached else f" (target {args.target_recall} not reached by nprobe "
                                                  f"{args.max_nprobe})"))
        return row

    # -- k-means once, on a sample (the vectors are in random order: the first ones are a sample) ------------------
    coarse, coarse_s, _ = _cpu(lambda: VectorIndex.build(xb[:args.train_size], kind="ivf", nlist=args.nlist,
                                                         gpu=False, seed=args.seed, keep_matrix=False))
    notes.append(f"coarse k-means: {args.nlist} lists on {args.train_size:,} vectors (10 iterations), "
                 f"{coarse_s:.0f} CPU s, trained once; every IVF row reuses the centroids "
                 f"(`VectorIndex.build(..., quantizer=...)`) and its build_cpu_s includes these seconds")
    # -- IVF-Flat --------------------------------------------------------------------------------------------
    ivf, t_ivf, _ = _cpu(lambda: VectorIndex.build(xb, kind="ivf", quantizer=coarse, gpu=False, keep_matrix=False))
    measure("ivf-flat", f"nlist={args.nlist}", ivf, coarse_s + t_ivf)
    del ivf
    gc.collect()
    quantizer = coarse
    if args.refine:
        np.save(tmp / "vectors.npy", xb)
        mapped = np.load(tmp / "vectors.npy", mmap_mode="r")
    # -- IVF-PQ ----------------------------------------------------------------------------------------------
    variants = [(m, False) for m in args.pq_m] + ([(max(args.pq_m), True)] if args.opq else [])
    for m, opq in variants:
        idx, t_pq, _ = _cpu(lambda: VectorIndex.build(
            xb, kind="ivfpq", nlist=args.nlist, m=m, opq=opq, train_size=args.train_size, gpu=False,
            seed=args.seed, keep_matrix=False, quantizer=None if opq else quantizer))
        name = f"ivf-pq{' +opq' if opq else ''}"
        row = measure(name, f"nlist={args.nlist} m={m}", idx, t_pq + (0 if opq else coarse_s))
        if args.refine and not opq:
            # The same codes, and the float vectors memory-mapped from a file for re-ranking: the index holds the
            # codes in RAM; the vectors stay on disk, and the OS pages in the rows of the candidates re-ranked.
            idx._matrix = mapped
            idx.refine = args.refine
            measure(f"{name} +re-rank", f"nlist={args.nlist} m={m}, re-rank {args.refine}×k", idx,
                    t_pq + coarse_s, mapped_vectors_mb=round(mapped.nbytes / 2 ** 20, 1))
            idx.refine = 0
            idx._matrix = None
        if m == max(args.pq_m) and not opq:
            # The same index memory-mapped from its file: open time and search speed.
            loaded, t_open, w_open = _cpu(lambda: VectorIndex.load(tmp / f"{name}.faiss", gpu=False, mmap=True,
                                                                   params={"nprobe": row["nprobe"]}))
            (_, ids), t_b, _ = _cpu(lambda: loaded.search(eval_q, k))
            notes.append(f"{name} m={m} re-opened memory-mapped (IO_FLAG_MMAP): {w_open * 1000:.0f} ms to open, "
                         f"batch {nq / t_b:,.0f} q/CPU-s, recall@10 {recall_at_k(ids, exact, k):.4f} (same index)")
            del loaded
        del idx
        gc.collect()
    for f in [*tmp.glob("*.faiss"), *tmp.glob("*.npy")]:
        f.unlink()
    tmp.rmdir()
    notes.append(f"q/s = queries per CPU-second on {args.threads} thread(s) (faiss OpenMP and BLAS limited to it); "
                 f"the machine is shared (1-min load {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, "
                 f"{os.cpu_count()} CPUs), so wall-clock rates (`*_wall_qps`) measure waiting for a CPU as much as "
                 f"the search. 'single' = {args.single} eval queries one per call. memory = saved index size; the "
                 f"IVF rows hold 8-byte ids besides their codes (IVF-PQ: m bytes of codes per vector).")
    if args.refine:
        notes.append(f"'+re-rank' rows search the same IVF-PQ codes for {args.refine}×k candidates and re-rank them "
                     f"by exact inner product with the float32 vectors, memory-mapped from a .npy file "
                     f"(`mapped_vectors_mb`: on disk, not in the index; the OS caches the pages it reads — here the "
                     f"file had just been written, so it was all in the page cache: the warm-cache case).")
    notes.append(f"Peak RSS of the run {_rss_mb():,.0f} MB (the float32 data set itself is "
                 f"{xb.nbytes / 2 ** 20:,.0f} MB).")
    return {"description": __doc__.strip().splitlines()[0], "rows": rows, "notes": notes}
