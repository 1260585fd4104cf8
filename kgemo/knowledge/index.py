"""Maximum inner-product search over normalised embeddings: FAISS (flat, IVF-Flat, IVF-PQ; CPU or GPU), torch.

* ``flat`` — :class:`faiss.IndexFlatIP`, exact; ``auto`` picks it up to ``max_flat`` (200k) vectors.
* ``ivf`` — :class:`faiss.IndexIVFFlat` (inner product) with ``nlist`` ≈ 4·√N lists, ``nprobe`` = nlist/3 probed
  per query by default; approximate, same memory as flat; ``auto`` picks it up to ``max_ivf`` (2M) vectors. On
  MiniLM embeddings of ATOMIC heads, probing a third of the lists gives recall@10 ≈ 0.95
  (``scripts/benchmark.py retrieval``).
* ``ivfpq`` — :class:`faiss.IndexIVFPQ`: the vectors stored as ``m`` one-byte codes (product quantisation of
  the residuals; default ``m`` = d/3, so 128 bytes for 384-d instead of 1,536), optionally behind an OPQ
  rotation; ``auto`` picks it above ``max_ivf``. PQ bounds recall by its quantisation error: measure it
  (``scripts/benchmark.py retrieval_1m``: recall@10 vs bytes per vector on 1M × 384).
* GPU — when ``faiss.get_num_gpus() > 0`` the index is copied to GPU 0 for search (saved from the CPU copy).
* ``torch`` — exact search with ``torch.topk`` over the matrix (on CUDA when there is one), used when faiss
  cannot be imported.

:func:`tune_nprobe` finds the smallest ``nprobe`` whose recall@k against exact search reaches a target on a
held-out query set; :meth:`VectorIndex.save` / :meth:`VectorIndex.load` write and read index files, memory-mapped
on load (``faiss.IO_FLAG_MMAP``) so a large index is paged in from the file instead of copied into RAM.

Embeddings are L2-normalised by the caller (:func:`normalise`), so inner product = cosine similarity.
"""
from __future__ import annotations

import logging
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CacheError

__all__ = ["VectorIndex", "normalise", "brute_force_search", "faiss_available", "choose_kind", "tune_nprobe",
           "NprobeTuning", "recall_at_k", "canonical_order", "TIE_MARGIN", "KINDS", "MAX_FLAT", "MAX_IVF"]

log = logging.getLogger(__name__)

#: Index kinds :meth:`VectorIndex.build` makes (``auto`` chooses among the first three by size).
KINDS = ("flat", "ivf", "ivfpq", "torch")
#: ``auto``: exact search up to this many vectors (a 200k × 384 scan is ~10 ms per query on one CPU core).
MAX_FLAT = 200_000
#: ``auto``: IVF-Flat (full float vectors, best recall per probe) up to this many, IVF-PQ (compressed) beyond.
MAX_IVF = 2_000_000


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), as contiguous float32."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def brute_force_search(matrix: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product with numpy (the benchmark's baseline): ``([n, k] scores, [n, k] ids)``."""
    k = min(k, len(matrix))
    scores = queries @ matrix.T
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(part, order, axis=1).astype(np.int64)


def recall_at_k(ids: np.ndarray, exact: np.ndarray, k: int | None = None) -> float:
    """Mean over queries of ``|approximate top-k ∩ exact top-k| / k`` (ids -1 never count)."""
    k = k or exact.shape[1]
    hits = [len(set(a[:k][a[:k] >= 0].tolist()) & set(b[:k].tolist())) for a, b in zip(ids, exact)]
    return float(np.mean(hits) / k) if hits else 1.0


def choose_kind(n: int, max_flat: int = MAX_FLAT, max_ivf: int = MAX_IVF) -> str:
    """The ``auto`` index kind for ``n`` vectors: ``flat`` up to ``max_flat``, ``ivf`` up to ``max_ivf``, else
    ``ivfpq``."""
    if n <= max_flat:
        return "flat"
    return "ivf" if n <= max_ivf else "ivfpq"


def default_nlist(n: int) -> int:
    """≈ 4·√N inverted lists, at most N/39 so that k-means gets 39 training points per list (faiss's minimum)."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))


def default_pq_m(d: int) -> int:
    """PQ sub-quantisers: the largest divisor of ``d`` up to d/3 (3 dimensions per one-byte code; 128 for 384-d).
    Fewer bytes lose recall fast on sentence-embedding-like data (``retrieval_1m``: m = 48 tops out near 0.7)."""
    return max(m for m in range(1, max(1, d // 3) + 1) if d % m == 0)


class VectorIndex:
    """A searchable set of normalised vectors; build with :meth:`build`, persist with :meth:`save` / :meth:`load`
    (or :meth:`to_bytes` / :meth:`from_bytes`).

    Attributes:
        kind: ``flat``, ``ivf``, ``ivfpq`` or ``torch`` (``torch`` also when faiss is missing).
        backend: ``faiss-cpu``, ``faiss-gpu`` or ``torch``.
        ntotal, dim: size and dimension.
        params: ``nlist`` / ``nprobe`` for IVF; ``m`` / ``nbits`` / ``opq`` for IVF-PQ.
        mmap: whether the index was loaded memory-mapped from its file.
    """

    def __init__(self, kind: str, dim: int, ntotal: int, faiss_index: Any = None, matrix: np.ndarray | None = None,
                 params: dict | None = None, gpu: bool | str = "auto", mmap: bool = False):
        self.kind, self.dim, self.ntotal = kind, dim, ntotal
        self.params = dict(params or {})
        self.mmap = mmap
        self._cpu_index = faiss_index
        self._index = faiss_index
        self._matrix = matrix
        self.backend = "torch" if faiss_index is None else "faiss-cpu"
        if faiss_index is not None and gpu:
            self._to_gpu(required=gpu is True)

    # -- construction ---------------------------------------------------------------------------------------
    @classmethod
    def build(cls, embeddings: np.ndarray, kind: str = "auto", nlist: int | None = None, nprobe: int | None = None,
              max_flat: int = MAX_FLAT, max_ivf: int = MAX_IVF, gpu: bool | str = "auto", seed: int = 0,
              m: int | None = None, nbits: int = 8, opq: bool = False, train_size: int | None = None,
              keep_matrix: bool = True, quantizer: "VectorIndex | None" = None, refine: int = 0
              ) -> "VectorIndex":
        """Index ``embeddings`` (``[N, d]``, already normalised).

        Args:
            kind: ``auto`` (:func:`choose_kind`: flat up to ``max_flat`` vectors, IVF-Flat up to ``max_ivf``,
                IVF-PQ beyond), ``flat``, ``ivf``, ``ivfpq`` or ``torch``.
            nlist: IVF lists (default ≈ 4·√N, at most N/39 so that each list gets training points).
            nprobe: lists probed per query (default nlist/3, at least 1; :func:`tune_nprobe` finds the smallest
                that reaches a recall target on your queries).
            m, nbits: IVF-PQ code: ``m`` sub-quantisers (must divide d; default :func:`default_pq_m`) of
                ``nbits`` bits each.
            opq: IVF-PQ behind a learned OPQ rotation (helps when variance is unevenly spread over dimensions).
            train_size: vectors sampled (seeded) to train k-means / PQ (default: 256 per list, at most N).
            gpu: ``"auto"`` uses a GPU when faiss sees one; ``False`` never; ``True`` requires one.
            keep_matrix: keep a reference to ``embeddings`` (the torch fallback and exact re-checks use it); pass
                False for IVF-PQ when the float matrix should be freed.
            quantizer: another IVF index over the same kind of vectors whose coarse centroids to reuse (its
                ``nlist``), so k-means runs once for several indexes (IVF-Flat and IVF-PQ variants); not with OPQ,
                whose lists live in the rotated space.
            refine: IVF / IVF-PQ: fetch ``refine × k`` candidates and re-rank them by their exact inner product
                with the float vectors (:attr:`refine`; needs the matrix — pass a memory-mapped one,
                ``np.load(path, mmap_mode="r")``, to keep it on disk). 0 = off.
        """
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        n, d = emb.shape
        if kind == "auto":
            kind = choose_kind(n, max_flat, max_ivf)
        if kind not in KINDS:
            raise ValueError(f"index kind must be auto, {', '.join(KINDS)}, not {kind!r}")
        if kind == "torch" or not faiss_available():
            if kind != "torch":
                log.warning("faiss is not importable: exact torch search instead of a %s index", kind)
            return cls("torch", d, n, matrix=emb)
        import faiss

        matrix = emb if keep_matrix else None
        if kind == "flat":
            index = faiss.IndexFlatIP(d)
            index.add(emb)
            return cls("flat", d, n, index, matrix=matrix, gpu=gpu)
        centroids = None
        if quantizer is not None:
            if opq or quantizer.kind not in ("ivf", "ivfpq") or quantizer._cpu_index is None:
                raise ValueError("quantizer= takes a faiss IVF index, and not with opq=True")
            source = faiss.extract_index_ivf(quantizer._cpu_index)
            if source.d != d:  # an OPQ index's lists are over rotated vectors of another width
                raise ValueError(f"the quantizer's lists are {source.d}-d, the vectors {d}-d")
            nlist = int(source.nlist)
            centroids = source.quantizer.reconstruct_n(0, nlist)
        nlist = nlist or default_nlist(n)
        nprobe = nprobe or max(1, nlist // 3)
        params: dict[str, Any] = {"nlist": nlist, "nprobe": nprobe}
        if kind == "ivf":
            spec = f"IVF{nlist},Flat"
        else:
            m = m or default_pq_m(d)
            if d % m:
                raise ValueError(f"PQ sub-quantisers m={m} must divide the dimension {d}")
            # "np": no polysemous training (the factory's default; minutes of annealing for a code order unused here)
            spec = f"{f'OPQ{m},' if opq else ''}IVF{nlist},PQ{m}x{nbits}np"
            params.update(m=m, nbits=nbits, opq=opq)
        index = faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.seed = seed
        if centroids is not None:  # a trained coarse quantizer holding nlist centroids: faiss skips k-means
            ivf.quantizer.add(centroids)
        train_size = min(n, train_size or 256 * nlist)
        train = emb if train_size >= n else emb[np.sort(np.random.default_rng(seed).choice(n, train_size,
                                                                                               replace=False))]
        index.train(train)
        index.add(emb)
        ivf.nprobe = nprobe
        if refine:
            params["refine"] = int(refine)
        return cls(kind, d, n, index, matrix=matrix, params=params, gpu=gpu)

    def _to_gpu(self, required: bool) -> None:
        import faiss

        try:
            ngpu = faiss.get_num_gpus()
        except AttributeError:
            ngpu = 0
        if ngpu <= 0:
            if required:
                raise RuntimeError("gpu=True but faiss sees no GPU (install faiss-gpu)")
            return
        try:
            self._gpu_res = faiss.StandardGpuResources()
            options = faiss.GpuClonerOptions()
            options.useFloat16LookupTables = self.kind == "ivfpq"  # PQ with m > 48 needs it on GPU (shared memory)
            self._index = faiss.index_cpu_to_gpu(self._gpu_res, 0, self._cpu_index, options)
            self.backend = "faiss-gpu"
        except Exception as exc:  # a faiss build without the kind on GPU: stay on CPU
            if required:
                raise
            log.warning("could not move the %s index to GPU (%s): searching on CPU", self.kind, exc)

    @property
    def nprobe(self) -> int | None:
        return self.params.get("nprobe")

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self.kind not in ("ivf", "ivfpq"):
            return
        value = max(1, min(int(value), int(self.params.get("nlist") or value)))
        self.params["nprobe"] = value
        import faiss

        try:
            faiss.extract_index_ivf(self._index).nprobe = value
        except Exception:  # a GPU index: its own parameter space
            space = faiss.GpuParameterSpace() if self.backend == "faiss-gpu" else faiss.ParameterSpace()
            space.set_index_parameter(self._index, "nprobe", value)

    @property
    def refine(self) -> int:
        """Re-ranking factor (0 = off): an IVF search fetches ``refine × k`` candidates and returns the ``k`` with
        the highest exact inner product against the float vectors (``matrix``, which may be memory-mapped: only
        the candidates' rows are read). Lifts IVF-PQ's recall above what its codes allow."""
        return int(self.params.get("refine") or 0)

    @refine.setter
    def refine(self, value: int) -> None:
        if value and self._matrix is None:
            raise ValueError("re-ranking needs the float vectors: give the index its matrix (memory-mapped is fine)")
        self.params["refine"] = int(value)

    # -- search ---------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by inner product: ``([n, k] float32 scores, [n, k] int64 ids)``; ids -1 where fewer exist."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must be [n, {self.dim}], got {q.shape}")
        if self.ntotal == 0 or len(q) == 0:
            return np.zeros((len(q), k), np.float32), np.full((len(q), k), -1, np.int64)
        matrix = self._exact_vectors()
        if matrix is not None:
            # Exact search in a canonical order: a few more candidates than asked, rescored in float64 and sorted by
            # (score, id). FAISS's BLAS path (and torch's matmul) sum in an order that depends on the query batch,
            # the thread count and the CPU, and equal heads tie: their order decided which ATOMIC events COSMIC and
            # TODKAT read (3 of MELD's 13,708 utterances moved between batch sizes, 89 had exact ties in their top 32).
            want = min(self.ntotal, k + TIE_MARGIN)
            if self.backend == "torch":
                ids = self._torch_search(q, want)[1]
            else:
                ids = _flat_search_with_blas(self._index, q, want)[1]
            return canonical_order(matrix, q, ids.astype(np.int64, copy=False), k)
        if self.backend == "torch":
            return self._torch_search(q, k)
        if self.kind == "flat":
            scores, ids = _flat_search_with_blas(self._index, q, k)
        elif self.refine and self._matrix is not None:
            _, candidates = self._index.search(q, min(self.ntotal, k * self.refine))
            return _rerank(self._matrix, q, candidates.astype(np.int64, copy=False), k)
        else:
            scores, ids = self._index.search(q, k)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

    def _exact_vectors(self) -> np.ndarray | None:
        """The float vectors of an exact index (flat or torch), for the canonical order; None for IVF / PQ. A
        flat FAISS index loaded from its file holds them itself: a view of its storage, not a copy."""
        if self.kind not in ("flat", "torch"):
            return None
        if self._matrix is None and self._cpu_index is not None:
            import faiss

            idx = self._cpu_index
            try:
                self._matrix = faiss.rev_swig_ptr(idx.get_xb(), idx.ntotal * idx.d).reshape(idx.ntotal, idx.d)
            except (AttributeError, TypeError, RuntimeError):  # another flat variant: keep FAISS's own order
                return None
        return self._matrix

    def _torch_search(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import torch

        from ..devices import pick_device

        device = pick_device()
        mat = getattr(self, "_torch_matrix", None)
        if mat is None:
            mat = self._torch_matrix = torch.from_numpy(self._matrix).to(device)
        kk = min(k, self.ntotal)
        scores, ids = torch.topk(torch.from_numpy(q).to(device) @ mat.T, kk, dim=1)
        s, i = scores.cpu().numpy(), ids.cpu().numpy().astype(np.int64)
        if kk < k:
            s = np.pad(s, ((0, 0), (0, k - kk)))
            i = np.pad(i, ((0, 0), (0, k - kk)), constant_values=-1)
        return s, i

    # -- persistence ----------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The CPU index serialised by faiss (empty for the torch backend, which keeps only the matrix)."""
        if self._cpu_index is None:
            return b""
        import faiss

        return faiss.serialize_index(self._cpu_index).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes, kind: str, matrix: np.ndarray | None, params: dict | None = None,
                   gpu: bool | str = "auto") -> "VectorIndex":
        """Inverse of :meth:`to_bytes`; falls back to torch search over ``matrix`` when faiss is missing."""
        if kind == "torch" or not faiss_available() or not data:
            if matrix is None:
                raise CacheError("no faiss and no embedding matrix to search")
            return cls("torch", matrix.shape[1], len(matrix), matrix=matrix)
        import faiss

        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise CacheError(f"faiss index cannot be read ({exc})") from exc
        out = cls(kind, index.d, index.ntotal, index, matrix=matrix, params=params, gpu=gpu)
        if kind in ("ivf", "ivfpq") and params and "nprobe" in params:
            out.nprobe = params["nprobe"]
        return out

    def save(self, path: str | Path) -> int:
        """Write the CPU index to ``path`` atomically (temp file + rename; faiss's own format); returns the size
        in bytes. The torch backend has no index file: saving it raises ``ValueError``."""
        if self._cpu_index is None:
            raise ValueError("a torch index has no file; keep its embedding matrix instead")
        import faiss

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            faiss.write_index(self._cpu_index, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path.stat().st_size

    @classmethod
    def load(cls, path: str | Path, kind: str | None = None, matrix: np.ndarray | None = None,
             params: dict | None = None, gpu: bool | str = "auto", mmap: bool = True) -> "VectorIndex":
        """Read an index file written by :meth:`save`.

        With ``mmap`` (the default) faiss maps the file instead of reading it into memory
        (``IO_FLAG_MMAP | IO_FLAG_READ_ONLY``: the inverted lists of IVF / IVF-PQ indexes and the codes of a flat
        index are paged in on access and shared between processes that load the same file), so opening a
        multi-GB index is instant and costs RAM only for what searches touch. The file must stay in place while
        the index is in use (replacing it by rename is safe: the mapping keeps the old file). Moving the index to a
        GPU copies it into GPU memory.

        Args:
            kind: the kind it was built as (default: read from the index type).
            matrix: the embeddings, for the torch fallback when faiss is missing.
            params: ``nprobe`` etc. to apply.
        """
        path = Path(path)
        if not faiss_available() or kind == "torch":
            return cls.from_bytes(b"", "torch", matrix)
        import faiss

        flags = (faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY) if mmap else 0
        try:
            index = faiss.read_index(str(path), flags)
        except RuntimeError as exc:
            raise CacheError(f"faiss index {path} cannot be read ({exc})") from exc
        kind = kind or _kind_of(index)
        out = cls(kind, index.d, index.ntotal, index, matrix=matrix, params=params, gpu=gpu, mmap=mmap)
        if kind in ("ivf", "ivfpq"):
            ivf = faiss.extract_index_ivf(index)
            out.params.setdefault("nlist", int(ivf.nlist))
            out.nprobe = out.params.get("nprobe") or int(ivf.nprobe)
        return out

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self.params.items())
        return f"VectorIndex({self.kind}, n={self.ntotal}, d={self.dim}, backend={self.backend}{extra})"


def _rerank(matrix: np.ndarray, q: np.ndarray, candidates: np.ndarray, k: int, chunk: int = 256,
            canonical: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` candidates (``[n, c]`` ids, -1 = none) with the highest exact inner product, best first.

    By default scores are float32 and equal ones keep the candidates' order. ``canonical``: scores in float64 and
    ties broken by the smaller id, so the order does not depend on what found the candidates (:func:`canonical_order`).
    """
    n, c = candidates.shape
    dtype = np.float64 if canonical else np.float32
    out_s = np.zeros((n, k), np.float32)
    out_i = np.full((n, k), -1, np.int64)
    for a in range(0, n, chunk):  # bounded memory: [chunk, c, d] floats at a time
        cand = candidates[a:a + chunk]
        valid = cand >= 0
        rows = np.unique(cand[valid])  # sorted: each row read once, in file order (cheap on a memory map)
        if not rows.size:
            continue
        vectors = np.asarray(matrix[rows], dtype=dtype)
        scores = np.einsum("ncd,nd->nc", vectors[np.searchsorted(rows, np.maximum(cand, 0))],
                           q[a:a + chunk].astype(dtype, copy=False))
        scores[~valid] = -np.inf
        if canonical:
            top = np.lexsort((np.where(valid, cand, np.iinfo(np.int64).max), -scores), axis=1)[:, :k]
        else:
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        s_top, i_top = np.take_along_axis(scores, top, 1), np.take_along_axis(cand, top, 1)
        keep = np.isfinite(s_top)
        out_s[a:a + chunk, :top.shape[1]] = np.where(keep, s_top, 0.0)
        out_i[a:a + chunk, :top.shape[1]] = np.where(keep, i_top, -1)
    return out_s, out_i


#: Candidates beyond ``k`` that an exact search rescores, so that near-ties at the k-th place are ordered too.
TIE_MARGIN = 8


def canonical_order(matrix: np.ndarray, q: np.ndarray, candidates: np.ndarray, k: int, chunk: int = 256
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best of ``candidates`` (``[n, c]`` ids, -1 = none) by their float64 inner product with ``q``, ties
    broken by the smaller id: the same order whatever batch, thread count or BLAS found the candidates.

    Each float32 product is exact in float64, so the sums of two equal vectors are equal and those of two
    different ones are ordered as their exact values are, up to float64 rounding (~1e-16)."""
    return _rerank(matrix, q, candidates, k, chunk, canonical=True)


def _kind_of(index) -> str:
    import faiss

    try:
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    except Exception:
        return "flat"
    return "ivfpq" if isinstance(ivf, faiss.IndexIVFPQ) else "ivf"


@dataclass
class NprobeTuning:
    """What :func:`tune_nprobe` found: the chosen ``nprobe``, its recall, whether the target was reached, and every
    ``(nprobe, recall@k, queries/s)`` it measured, in the order measured."""

    nprobe: int
    recall: float
    reached: bool
    target: float
    curve: list[tuple[int, float, float]] = field(default_factory=list)


def tune_nprobe(index: VectorIndex, queries: np.ndarray, target_recall: float = 0.95, k: int = 10,
                exact_ids: np.ndarray | None = None, matrix: np.ndarray | None = None,
                max_nprobe: int | None = None) -> NprobeTuning:
    """Set ``index.nprobe`` to the smallest value whose recall@``k`` on ``queries`` reaches ``target_recall``.

    Recall is measured against exact search (``exact_ids`` ``[n, k]``, or computed by brute force over ``matrix``
    or the index's own embedding matrix). ``nprobe`` doubles from 1 until the target is met, then a bisection
    between the last two values finds the smallest one that meets it (recall grows with ``nprobe``). When even
    ``nprobe = max_nprobe`` (default ``nlist``) falls short — IVF-PQ's codes bound its recall — the index is left
    at the nprobe that reached the highest recall and ``reached`` is False.

    Use queries held out from the indexed set and drawn like real ones (for ATOMIC: utterances, not heads).

    Example:
        >>> index = VectorIndex.build(emb, kind="ivfpq")                           # doctest: +SKIP
        >>> tune_nprobe(index, held_out_queries, 0.9).nprobe                        # doctest: +SKIP
        24
    """
    if index.kind not in ("ivf", "ivfpq"):
        raise ValueError(f"only IVF indexes have nprobe, not {index.kind!r}")
    q = np.ascontiguousarray(queries, dtype=np.float32)
    if exact_ids is None:
        base = matrix if matrix is not None else index._matrix
        if base is None:
            raise ValueError("tune_nprobe needs exact_ids, or the embedding matrix to compute them")
        exact_ids = brute_force_search(base, q, k)[1]
    exact_ids = exact_ids[:, :k]
    nlist = min(int(index.params["nlist"]), max_nprobe or int(index.params["nlist"]))
    measured: dict[int, float] = {}
    curve: list[tuple[int, float, float]] = []

    def recall(p: int) -> float:
        if p not in measured:
            index.nprobe = p
            t = time.perf_counter()
            ids = index.search(q, k)[1]
            qps = len(q) / max(time.perf_counter() - t, 1e-9)
            measured[p] = recall_at_k(ids, exact_ids, k)
            curve.append((p, measured[p], round(qps, 1)))
        return measured[p]

    lo, hi = 0, 1
    while recall(hi) < target_recall and hi < nlist:
        lo, hi = hi, min(2 * hi, nlist)
    if recall(hi) < target_recall:
        best = max(measured, key=lambda p: (measured[p], -p))
        index.nprobe = best
        log.warning("recall@%d %.3f < target %.3f even with nprobe=%d (%s): kept nprobe=%d", k, measured[best],
                    target_recall, nlist, index.kind, best)
        return NprobeTuning(best, measured[best], False, target_recall, curve)
    while hi - lo > 1:  # invariant: recall(hi) >= target, recall(lo) < target (or lo = 0)
        mid = (lo + hi) // 2
        if recall(mid) >= target_recall:
            hi = mid
        else:
            lo = mid
    index.nprobe = hi
    return NprobeTuning(hi, measured[hi], True, target_recall, curve)


def _flat_search_with_blas(index, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact search through BLAS for every batch size. FAISS switches from its one-query-at-a-time SIMD loop to a
    BLAS matrix product only above ``distance_compute_blas_threshold`` queries; the annotator searches a chunk of
    ~16 conversations at a time, where BLAS is 2.5x faster (MELD test in 15-query batches; identical results).
    The global threshold is restored afterwards."""
    import faiss

    cvar = getattr(faiss, "cvar", None)
    if cvar is None or not hasattr(cvar, "distance_compute_blas_threshold"):
        return index.search(q, k)
    previous = cvar.distance_compute_blas_threshold
    cvar.distance_compute_blas_threshold = 1
    try:
        return index.search(q, k)
    finally:
        cvar.distance_compute_blas_threshold = previous
