"""ATOMIC (2019 and 2020) as a (head event, relation, tail) table, and nearest-event retrieval for TODKAT/COSMIC.

:class:`AtomicTable` keeps unique heads and tails (sorted, so ids do not depend on file order) and, per head, its
tuples sorted by relation in CSR form. Tails are de-duplicated per (head, relation) case- and space-insensitively,
keeping the first surface form; "none" tails were dropped by the readers.

:class:`AtomicRetriever` embeds every head once with the sentence encoder (L2-normalised; cached in shards, so an
interrupted encoding resumes), indexes them (:class:`~kgemo.knowledge.index.VectorIndex`: exact FAISS inner
product up to 1M heads, IVF beyond, GPU when available, torch when faiss is missing) and answers
:meth:`AtomicRetriever.search`: the nearest heads of each query text, walked in order of similarity, give up to k
distinct tails per relation (TODKAT's retrieval; the score of a tail is the cosine similarity of its head).
The index is saved with the encoder id, the table checksum and its own sha256, and verified on load.

Example:
    >>> r = AtomicRetriever.load("default")                          # doctest: +SKIP
    >>> hits = r.search(["I failed my exam"], k=3)                    # doctest: +SKIP
    >>> [h.tail for h in hits[0]["xReact"]]                           # doctest: +SKIP
    ['sad', 'disappointed', 'upset']
"""
from __future__ import annotations

import bisect
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..atomic_relations import TODKAT_RELATIONS
from ..errors import CacheError
from ..storage import atomic_write, kgemo_home, read_json, sha256_file, sha256_json, short_hash
from ..storage import write_json
from .index import VectorIndex, choose_kind, normalise
from .store import (content_checksum, load_arrays, load_cache, pack_texts, read_cache_dir, resolve_kb_dir,
                    save_arrays, unpack_texts)
from .types import AtomicHit

__all__ = ["AtomicTable", "AtomicRetriever", "DEFAULT_RELATIONS", "encode_in_shards"]

log = logging.getLogger(__name__)

FORMAT = "kgemo-atomic/1"
ARRAYS_FILE = "atomic.npz"
META_FILE = "atomic.json"
#: int8-quantised head embeddings shipped with a table (the bundled default), and their sidecar.
QUANTIZED_FILE, QUANTIZED_META = "head_embeddings.npz", "head_embeddings.json"
#: The relations retrieved when none are named: TODKAT's.
DEFAULT_RELATIONS = TODKAT_RELATIONS
_WS = re.compile(r"\s+")


def _norm_tail(t: str) -> str:
    # "Happy." and "happy" are one tail.
    return _WS.sub(" ", t.strip().lower()).rstrip(" .!")


class AtomicTable:
    """Heads, relations and tails of ATOMIC-like tuples in CSR form (see the module docstring)."""

    def __init__(self, heads: list[str], tails: list[str], relations: list[str], head_ptr: np.ndarray,
                 rel: np.ndarray, tail: np.ndarray, meta: dict[str, Any] | None = None, path: Path | None = None):
        self.heads, self.tails, self.relations = heads, tails, relations
        self.head_ptr = head_ptr.astype(np.int64, copy=False)
        self.rel = rel.astype(np.int16, copy=False)
        self.tail = tail.astype(np.int32, copy=False)
        self.meta = dict(meta or {})
        self.path = path
        self.checksum: str = self.meta.get("checksum") or content_checksum(self.to_arrays())
        self._rel_index = {r: i for i, r in enumerate(relations)}

    def __len__(self) -> int:
        """Number of tuples."""
        return len(self.tail)

    def __repr__(self) -> str:
        return (f"AtomicTable({len(self.heads)} heads, {len(self)} tuples, {len(self.relations)} relations, "
                f"checksum={self.checksum[:12]})")

    @classmethod
    def from_tuples(cls, tuples: Iterable[tuple[str, str, str]]) -> "AtomicTable":
        """From ``(head, relation, tail)`` tuples; duplicates (case/space-insensitive tails) are merged."""
        per_head: dict[str, dict[str, dict[str, str]]] = {}
        for head, rel, tail in tuples:
            head = _WS.sub(" ", head.strip())
            tail = _WS.sub(" ", tail.strip())
            if not head or not tail:
                continue
            per_head.setdefault(head, {}).setdefault(rel, {}).setdefault(_norm_tail(tail), tail)
        heads = sorted(per_head)
        relations = sorted({r for rels in per_head.values() for r in rels})
        rel_id = {r: i for i, r in enumerate(relations)}
        tails = sorted({t for rels in per_head.values() for ts in rels.values() for t in ts.values()})
        tail_id = {t: i for i, t in enumerate(tails)}
        ptr = np.zeros(len(heads) + 1, dtype=np.int64)
        rel_out: list[int] = []
        tail_out: list[int] = []
        for h, head in enumerate(heads):
            for r in sorted(per_head[head], key=rel_id.__getitem__):
                for t in per_head[head][r].values():
                    rel_out.append(rel_id[r])
                    tail_out.append(tail_id[t])
            ptr[h + 1] = len(tail_out)
        return cls(heads, tails, relations, ptr, np.array(rel_out, dtype=np.int16),
                   np.array(tail_out, dtype=np.int32))

    @classmethod
    def merge(cls, tables: Sequence["AtomicTable"]) -> "AtomicTable":
        """One table holding the tuples of all ``tables`` (heads equal as strings are merged)."""
        return cls.from_tuples(t for tb in tables for t in tb.tuples())

    def tuples(self) -> Iterable[tuple[str, str, str]]:
        for h, head in enumerate(self.heads):
            for j in range(self.head_ptr[h], self.head_ptr[h + 1]):
                yield head, self.relations[self.rel[j]], self.tails[self.tail[j]]

    def tails_of(self, head: int, relation: str) -> list[str]:
        """Tails of head id ``head`` for ``relation`` (empty if none or unknown relation)."""
        r = self._rel_index.get(relation)
        if r is None:
            return []
        lo, hi = self.head_ptr[head], self.head_ptr[head + 1]
        rels = self.rel[lo:hi]
        a, b = np.searchsorted(rels, r, "left"), np.searchsorted(rels, r, "right")
        return [self.tails[i] for i in self.tail[lo + a:lo + b]]

    def tail_ids(self, tails: Sequence[str]) -> np.ndarray:
        """Ids of ``tails`` (exact surface forms, as :meth:`tails_of` and search hits return them); -1 if absent."""
        out = np.full(len(tails), -1, dtype=np.int64)
        for i, t in enumerate(tails):
            j = bisect.bisect_left(self.tails, t)  # tails are sorted (see from_tuples)
            if j < len(self.tails) and self.tails[j] == t:
                out[i] = j
        return out

    # -- persistence ----------------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"heads": pack_texts(self.heads), "tails": pack_texts(self.tails),
                "relations": pack_texts(self.relations), "head_ptr": self.head_ptr, "rel": self.rel,
                "tail": self.tail,
                "sizes": np.array([len(self.heads), len(self.tails), len(self.relations)], dtype=np.int64)}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray], meta: dict | None = None, path: Path | None = None
                    ) -> "AtomicTable":
        nh, nt, nr = (int(x) for x in a["sizes"])
        return cls(unpack_texts(a["heads"], nh), unpack_texts(a["tails"], nt), unpack_texts(a["relations"], nr),
                   a["head_ptr"], a["rel"], a["tail"], meta, path)

    def stats(self) -> dict[str, Any]:
        counts = np.bincount(self.rel, minlength=len(self.relations)) if len(self) else np.zeros(0, int)
        return {"heads": len(self.heads), "tuples": len(self), "tails": len(self.tails),
                "relations": {r: int(c) for r, c in zip(self.relations, counts)}}

    def save(self, path: str | Path, compress: bool = True, **meta: Any) -> Path:
        """Write ``atomic.npz`` + ``atomic.json`` into folder ``path``."""
        path = Path(path)
        sha = save_arrays(path / ARRAYS_FILE, self.to_arrays(), compress=compress)
        self.meta = dict(self.meta, **meta, format=FORMAT, checksum=self.checksum, stats=self.stats(),
                         arrays={"file": ARRAYS_FILE, "sha256": sha})
        write_json(path / META_FILE, self.meta)
        self.path = path
        return path

    @classmethod
    def load(cls, name_or_path: str | Path = "default", verify: bool = True) -> "AtomicTable":
        """Load the bundled table (``"default"``), a built cache by name or a folder (see
        :func:`~kgemo.knowledge.store.resolve_kb_dir`). A corrupt cache raises :class:`CacheError`;
        :func:`kgemo.knowledge.load_knowledge` rebuilds it from its recorded sources."""
        def read(path: Path) -> "AtomicTable":
            meta, arrays = read_cache_dir(path, META_FILE, FORMAT, "ATOMIC table", "atomic", verify)
            return cls.from_arrays(arrays, meta, path)

        return load_cache(resolve_kb_dir(name_or_path, "atomic", META_FILE), META_FILE, "ATOMIC table", "atomic", read)


def _save_npy(path: Path, arr: np.ndarray) -> str:
    with atomic_write(path, "wb") as fh:
        np.save(fh, arr, allow_pickle=False)
    return sha256_file(path)


def _load_verified_npy(path: Path, meta_path: Path, expect: dict[str, Any]) -> np.ndarray | None:
    """The array at ``path`` if its sidecar JSON matches ``expect`` and its sha256; else None (logged)."""
    if not (path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = read_json(meta_path)
        if any(meta.get(k) != v for k, v in expect.items()):
            log.warning("%s is stale (made by another encoder or table): recomputing", path)
            return None
        if sha256_file(path) != meta.get("sha256"):
            log.warning("%s is corrupt (sha256 mismatch): recomputing", path)
            return None
        return np.load(path, allow_pickle=False)
    except (CacheError, OSError, ValueError) as exc:
        log.warning("%s unreadable (%s): recomputing", path, exc)
        return None


def encode_in_shards(texts: Sequence[str], encoder: Any, folder: Path, key: str, shard_size: int = 4096,
                     show_progress: bool | None = None, desc: str = "encoding") -> tuple[np.ndarray, dict[str, int]]:
    """Encode ``texts`` shard by shard, saving each shard (verified by sha256), so an interrupted run resumes.

    Returns the normalised ``[n, d]`` float32 embeddings and ``{"reused": shards reused, "encoded": shards
    encoded}``; the shard files are deleted once all are done.
    """
    from tqdm.auto import tqdm
    import sys

    folder.mkdir(parents=True, exist_ok=True)
    n_shards = max(1, -(-len(texts) // shard_size))
    parts, counts = [], {"reused": 0, "encoded": 0}
    show = sys.stderr.isatty() if show_progress is None else show_progress
    for i in tqdm(range(n_shards), desc=desc, unit="shard", disable=not show or n_shards < 2):
        chunk = list(texts[i * shard_size:(i + 1) * shard_size])
        npy, meta = folder / f"shard-{i:05d}.npy", folder / f"shard-{i:05d}.json"
        expect = {"key": key, "index": i, "n": len(chunk)}
        arr = _load_verified_npy(npy, meta, expect)
        if arr is None:
            arr = normalise(np.asarray(encoder.encode(chunk, show_progress=False), dtype=np.float32))
            write_json(meta, dict(expect, sha256=_save_npy(npy, arr)))
            counts["encoded"] += 1
        else:
            counts["reused"] += 1
        parts.append(arr)
    emb = np.concatenate(parts) if parts else np.zeros((0, int(getattr(encoder, "dim", 0))), np.float32)
    for i in range(n_shards):
        for suffix in (".npy", ".json"):
            (folder / f"shard-{i:05d}{suffix}").unlink(missing_ok=True)
    return emb, counts


class AtomicRetriever:
    """Nearest-ATOMIC-event retrieval; see the module docstring.

    Args:
        table: the ATOMIC table.
        encoder: a sentence encoder (``.encode``, ``.id``, ``.dim``); ``None`` = ``SentenceEncoder("default")``,
            loaded on first use.
        index: ``auto`` / ``flat`` / ``ivf`` / ``torch`` (see :class:`~kgemo.knowledge.index.VectorIndex`).
        nlist, nprobe: IVF parameters.
        gpu: ``"auto"``, ``True`` or ``False``.
        cache_dir: where embeddings and the index live; default: ``<table folder>/index`` for a writable build
            folder, else ``$KGEMO_HOME/knowledge/atomic/<table checksum>``.
    """

    def __init__(self, table: AtomicTable, encoder: Any = None, index: str = "auto", nlist: int | None = None,
                 nprobe: int | None = None, gpu: bool | str = "auto", cache_dir: str | Path | None = None,
                 shard_size: int = 4096):
        self.table = table
        self._encoder = encoder
        self.index_kind, self.nlist, self.nprobe, self.gpu = index, nlist, nprobe, gpu
        self.shard_size = shard_size
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._index: VectorIndex | None = None
        self._embeddings: np.ndarray | None = None
        self._tail_embeddings: np.ndarray | None = None

    @classmethod
    def load(cls, name_or_path: str | Path = "default", encoder: Any = None, **kwargs: Any) -> "AtomicRetriever":
        """Load the table (see :meth:`AtomicTable.load`); embeddings and the index come on first search."""
        return cls(AtomicTable.load(name_or_path), encoder=encoder, **kwargs)

    # -- properties -----------------------------------------------------------------------------------------
    @property
    def encoder(self) -> Any:
        if self._encoder is None:
            from ..encoders import SentenceEncoder

            self._encoder = SentenceEncoder("default")
        return self._encoder

    @property
    def heads(self) -> list[str]:
        return self.table.heads

    @property
    def relations(self) -> list[str]:
        return self.table.relations

    @property
    def id(self) -> str:
        return f"atomic-retrieval:{self.table.checksum[:12]}:{self.encoder.id}"

    @property
    def checksum(self) -> str:
        """What retrieval results depend on besides the encoder: the table and the index kind (graph cache keys)."""
        return f"{self.table.checksum}:{self.index_kind}"

    @property
    def cache_dir(self) -> Path:
        base = self._cache_dir
        if base is None:
            tp = self.table.path
            if tp is not None and (tp / "build.json").is_file() and os.access(tp, os.W_OK):
                base = tp / "index"
            else:
                base = kgemo_home() / "knowledge" / "atomic" / self.table.checksum[:16]
        return base / short_hash(str(self.encoder.id))

    # -- embeddings and index -------------------------------------------------------------------------------
    def embedding_meta(self) -> dict[str, Any]:
        """What the head embeddings depend on (their sidecar records it, and a load checks it)."""
        return {"encoder": str(self.encoder.id), "table_checksum": self.table.checksum, "n": len(self.table.heads)}

    def embeddings(self, show_progress: bool | None = None) -> np.ndarray:
        """Normalised head embeddings ``[len(heads), d]``, cached on disk (verified, resumable)."""
        if self._embeddings is None:
            expect = self.embedding_meta()
            emb = self._packaged_embeddings(expect)
            if emb is None:
                emb = self._encode_cached("embeddings", self.table.heads, expect, show_progress)
            self._embeddings = emb
        return self._embeddings

    def tail_embeddings(self, show_progress: bool | None = None) -> np.ndarray:
        """Normalised tail embeddings ``[len(tails), d]`` (the features of the event graph's ``event`` nodes),
        cached on disk like the heads'. Computed on first use only: ~80k tails for ATOMIC 2019 dev+test."""
        if self._tail_embeddings is None:
            expect = {"encoder": str(self.encoder.id), "table_checksum": self.table.checksum,
                      "n": len(self.table.tails), "texts": "tails"}
            self._tail_embeddings = self._encode_cached("tail_embeddings", self.table.tails, expect, show_progress)
        return self._tail_embeddings

    def _encode_cached(self, name: str, texts: Sequence[str], expect: dict[str, Any],
                       show_progress: bool | None) -> np.ndarray:
        folder = self.cache_dir
        npy, meta = folder / f"{name}.npy", folder / f"{name}.json"
        emb = _load_verified_npy(npy, meta, expect)
        if emb is None:
            emb, counts = encode_in_shards(texts, self.encoder, folder / f"shards-{name}", sha256_json(expect),
                                           self.shard_size, show_progress, desc=f"encoding ATOMIC {name}")
            self.store_embeddings(emb, counts, name, expect)
        return emb

    def store_embeddings(self, emb: np.ndarray, counts: dict[str, int], name: str = "embeddings",
                         expect: dict[str, Any] | None = None) -> Path:
        """Save head embeddings computed elsewhere (the merge of a sharded build, :mod:`kgemo.knowledge.shards`)
        exactly as :meth:`embeddings` saves its own: ``<name>.npy`` and its sidecar with ``counts`` (chunks
        ``reused`` / ``encoded``)."""
        folder = self.cache_dir
        expect = self.embedding_meta() if expect is None else expect
        npy = folder / f"{name}.npy"
        write_json(folder / f"{name}.json", dict(expect, sha256=_save_npy(npy, emb), dim=int(emb.shape[1]),
                                                 **counts))
        if name == "embeddings":
            self._embeddings, self._index = None, None  # read back (verified) on next use
        return npy

    def _packaged_embeddings(self, expect: dict[str, Any]) -> np.ndarray | None:
        """int8 head embeddings shipped beside a table (the bundled default), if made by this encoder."""
        tp = self.table.path
        if tp is None or not (tp / QUANTIZED_META).is_file():
            return None
        try:
            meta = read_json(tp / QUANTIZED_META)
            if any(meta.get(k) != v for k, v in expect.items()):
                return None  # another encoder: compute and cache as usual
            q = load_arrays(tp / meta["file"], meta["sha256"], what="packaged head embeddings")["q"]
        except (CacheError, KeyError) as exc:
            log.warning("%s; computing head embeddings instead", exc)
            return None
        return normalise(q.astype(np.float32) / 127.0)

    def _index_name(self, kind: str) -> str:
        if kind in ("ivf", "ivfpq"):
            return f"index-{kind}{self.nlist or ''}"
        return f"index-{kind}"

    @property
    def index(self) -> VectorIndex:
        """The search index, loaded from disk when a verified one matches, else built and saved."""
        if self._index is not None:
            return self._index
        emb = self.embeddings()
        kind = self.index_kind
        if kind == "auto":
            kind = choose_kind(len(emb))
        folder = self.cache_dir
        path, meta_path = folder / f"{self._index_name(kind)}.faiss", folder / f"{self._index_name(kind)}.json"
        emb_sha = read_json(folder / "embeddings.json")["sha256"] if (folder / "embeddings.json").is_file() else ""
        expect = {"encoder": str(self.encoder.id), "table_checksum": self.table.checksum, "kind": kind,
                  "embeddings_sha256": emb_sha}
        index = None
        if kind != "torch" and path.is_file() and meta_path.is_file():
            try:
                meta = read_json(meta_path)
                if any(meta.get(k) != v for k, v in expect.items()):
                    log.warning("%s is stale (other encoder, table or embeddings): rebuilding", path)
                elif sha256_file(path) != meta.get("sha256"):
                    log.warning("%s is corrupt (sha256 mismatch): rebuilding", path)
                else:
                    params = dict(meta.get("params") or {})
                    if self.nprobe:
                        params["nprobe"] = self.nprobe
                    index = VectorIndex.load(path, kind, emb, params, gpu=self.gpu)  # memory-mapped
            except CacheError as exc:
                log.warning("%s: %s; rebuilding", path, exc)
                index = None
        if index is None:
            index = VectorIndex.build(emb, kind=kind, nlist=self.nlist, nprobe=self.nprobe, gpu=self.gpu)
            if index.backend != "torch":
                index.save(path)
                write_json(meta_path, dict(expect, sha256=sha256_file(path), params=index.params,
                                           ntotal=index.ntotal, dim=index.dim))
        self._index = index
        return index

    def save_quantized(self, folder: str | Path) -> Path:
        """Write the head embeddings as int8 (``round(127·x)``; cosine error ≈ 1e-3) beside a table, so a fresh
        install with the same encoder needs no encoding."""
        folder = Path(folder)
        q = np.clip(np.rint(self.embeddings() * 127.0), -127, 127).astype(np.int8)
        sha = save_arrays(folder / QUANTIZED_FILE, {"q": q})
        write_json(folder / QUANTIZED_META, {"encoder": str(self.encoder.id), "table_checksum": self.table.checksum,
                                             "n": len(self.table.heads), "dim": int(q.shape[1]),
                                             "file": QUANTIZED_FILE, "sha256": sha, "dtype": "int8/127"})
        return folder / QUANTIZED_FILE

    def files(self) -> list[Path]:
        """The cache files in use (embeddings and index), for build manifests."""
        folder = self.cache_dir
        return sorted(p for p in folder.glob("*") if p.is_file())

    # -- search ---------------------------------------------------------------------------------------------
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return normalise(np.asarray(self.encoder.encode(list(texts), show_progress=False), dtype=np.float32))

    def search_heads(self, texts: Sequence[str] | np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Nearest heads: ``([n, k] cosine scores, [n, k] head ids)``; ``texts`` may be query embeddings."""
        q = texts if isinstance(texts, np.ndarray) else self.encode_queries(texts)
        return self.index.search(q, min(k, max(len(self.table.heads), 1)))

    def search(self, texts: Sequence[str], k: int = 3, relations: Sequence[str] = DEFAULT_RELATIONS,
               candidates: int | None = None) -> list[dict[str, list[AtomicHit]]]:
        """Up to ``k`` distinct tails per relation for each text, from its nearest heads.

        Args:
            texts: query utterances.
            k: tails per relation.
            relations: relation names (unknown ones give empty lists).
            candidates: nearest heads examined per query (default ``max(8k, 32)``).

        Returns:
            per text, ``{relation: [AtomicHit(tail, score, head, relation), ...]}`` best first.
        """
        texts = list(texts)
        if not texts:
            return []
        return self.search_vectors(self.encode_queries(texts), k, relations, candidates)

    def _has_relation(self, relation: str) -> np.ndarray:
        """``[len(heads)]`` bool: which heads have at least one tail for ``relation`` (cached per relation)."""
        cache = self.__dict__.setdefault("_has_relation_cache", {})
        if relation not in cache:
            table = self.table
            has = np.zeros(len(table.heads), dtype=bool)
            r = table._rel_index.get(relation)
            if r is not None:
                head_of_tuple = np.repeat(np.arange(len(table.heads)), np.diff(table.head_ptr))
                has[head_of_tuple[table.rel == r]] = True
            cache[relation] = has
        return cache[relation]

    def search_vectors(self, vectors: np.ndarray, k: int = 3, relations: Sequence[str] = DEFAULT_RELATIONS,
                       candidates: int | None = None) -> list[dict[str, list[AtomicHit]]]:
        """:meth:`search` for queries already embedded by :attr:`encoder` (e.g. utterance features a pipeline
        computed anyway), so nothing is encoded twice. Rows are L2-normalised here.

        Shapes:
            vectors: ``[n, encoder.dim]``; returns ``n`` dicts as :meth:`search` does.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"expected [n, dim] query vectors, got shape {vectors.shape}")
        if not len(vectors):
            return []
        scores, ids = self.search_heads(normalise(vectors), candidates or max(8 * k, 32))
        # Per relation, which candidates have tails at all (one vectorised test), so the walk below only visits
        # heads that can contribute; -1 = padding.
        valid = {rel: (ids >= 0) & self._has_relation(rel)[np.maximum(ids, 0)] for rel in relations}
        out = []
        for row, (s_row, i_row) in enumerate(zip(scores, ids)):
            res: dict[str, list[AtomicHit]] = {}
            for rel in relations:
                hits: list[AtomicHit] = []
                seen: set[str] = set()
                for j in np.flatnonzero(valid[rel][row]):
                    s, h = s_row[j], i_row[j]
                    for tail in self.table.tails_of(int(h), rel):
                        key = _norm_tail(tail)
                        if key not in seen:
                            seen.add(key)
                            hits.append(AtomicHit(tail, float(s), self.table.heads[h], rel))
                            if len(hits) == k:
                                break
                    if len(hits) == k:
                        break
                res[rel] = hits
            out.append(res)
        return out

    def __repr__(self) -> str:
        return f"AtomicRetriever({self.table!r}, index={self._index!r})"
