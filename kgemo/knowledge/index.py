"""Maximum inner-product search over normalised embeddings: FAISS (flat or IVF, CPU or GPU), torch fallback.

* ``flat`` — :class:`faiss.IndexFlatIP`, exact; the default up to ``max_flat`` (1M) vectors.
* ``ivf`` — :class:`faiss.IndexIVFFlat` (inner product) with ``nlist`` ≈ 4·√N lists (at least 39 training points
  each), ``nprobe`` = nlist/3 probed per query by default; approximate, for more than ``max_flat`` vectors (or on
  request, e.g. in the benchmark). On MiniLM embeddings of ATOMIC heads, probing a third of the lists gives
  recall@10 ≈ 0.95 (``scripts/benchmark.py retrieval``); sentence embeddings are not strongly clustered, so
  measure recall on your data before lowering it.
* GPU — when ``faiss.get_num_gpus() > 0`` the index is copied to GPU 0 for search (saved from the CPU copy).
* ``torch`` — exact search with ``torch.topk`` over the matrix, used when faiss cannot be imported.

Embeddings are L2-normalised by the caller (:func:`normalise`), so inner product = cosine similarity.
"""
from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from ..errors import CacheError

__all__ = ["VectorIndex", "normalise", "brute_force_search", "faiss_available"]

log = logging.getLogger(__name__)


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


class VectorIndex:
    """A searchable set of normalised vectors; build with :meth:`build`, persist with :meth:`to_bytes`.

    Attributes:
        kind: ``flat`` or ``ivf`` (``torch`` when faiss is missing).
        backend: ``faiss-cpu``, ``faiss-gpu`` or ``torch``.
        ntotal, dim: size and dimension.
        params: ``nlist`` / ``nprobe`` for IVF.
    """

    def __init__(self, kind: str, dim: int, ntotal: int, faiss_index: Any = None, matrix: np.ndarray | None = None,
                 params: dict | None = None, gpu: bool | str = "auto"):
        self.kind, self.dim, self.ntotal = kind, dim, ntotal
        self.params = dict(params or {})
        self._cpu_index = faiss_index
        self._index = faiss_index
        self._matrix = matrix
        self.backend = "torch" if faiss_index is None else "faiss-cpu"
        if faiss_index is not None and gpu:
            self._to_gpu(required=gpu is True)

    # -- construction ---------------------------------------------------------------------------------------
    @classmethod
    def build(cls, embeddings: np.ndarray, kind: str = "auto", nlist: int | None = None, nprobe: int | None = None,
              max_flat: int = 1_000_000, gpu: bool | str = "auto", seed: int = 0) -> "VectorIndex":
        """Index ``embeddings`` (``[N, d]``, already normalised).

        Args:
            kind: ``auto`` (flat up to ``max_flat`` vectors, else IVF), ``flat``, ``ivf`` or ``torch``.
            nlist: IVF lists (default ≈ 4·√N, at most N/39 so that each list gets training points).
            nprobe: lists probed per query (default nlist/3, at least 1).
            gpu: ``"auto"`` uses a GPU when faiss sees one; ``False`` never; ``True`` requires one.
        """
        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        n, d = emb.shape
        if kind == "auto":
            kind = "flat" if n <= max_flat else "ivf"
        if kind == "torch" or not faiss_available():
            if kind != "torch":
                log.warning("faiss is not importable: exact torch search instead of a %s index", kind)
            return cls("torch", d, n, matrix=emb)
        import faiss

        if kind == "flat":
            index = faiss.IndexFlatIP(d)
            index.add(emb)
            return cls("flat", d, n, index, matrix=emb, gpu=gpu)
        if kind != "ivf":
            raise ValueError(f"index kind must be auto, flat, ivf or torch, not {kind!r}")
        nlist = nlist or max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))
        nprobe = nprobe or max(1, nlist // 3)
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        train = emb if n <= 256 * nlist else emb[rng.choice(n, 256 * nlist, replace=False)]
        index.cp.seed = seed
        index.train(train)
        index.add(emb)
        index.nprobe = nprobe
        return cls("ivf", d, n, index, matrix=emb, params={"nlist": nlist, "nprobe": nprobe}, gpu=gpu)

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
            self._index = faiss.index_cpu_to_gpu(self._gpu_res, 0, self._cpu_index)
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
        if self.kind != "ivf":
            return
        self.params["nprobe"] = int(value)
        import faiss

        try:
            faiss.extract_index_ivf(self._index).nprobe = int(value)
        except Exception:  # GPU IVF exposes nprobe on the object itself
            self._index.nprobe = int(value)

    # -- search ---------------------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by inner product: ``([n, k] float32 scores, [n, k] int64 ids)``; ids -1 where fewer exist."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ValueError(f"queries must be [n, {self.dim}], got {q.shape}")
        if self.ntotal == 0 or len(q) == 0:
            return np.zeros((len(q), k), np.float32), np.full((len(q), k), -1, np.int64)
        if self.backend == "torch":
            return self._torch_search(q, k)
        if self.kind == "flat":
            scores, ids = _flat_search_with_blas(self._index, q, k)
        else:
            scores, ids = self._index.search(q, k)
        return scores.astype(np.float32, copy=False), ids.astype(np.int64, copy=False)

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
        if kind == "ivf" and params and "nprobe" in params:
            out.nprobe = params["nprobe"]
        return out

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v}" for k, v in self.params.items())
        return f"VectorIndex({self.kind}, n={self.ntotal}, d={self.dim}, backend={self.backend}{extra})"


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
