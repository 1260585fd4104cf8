"""ConceptNet + NRC-VAD as compact CSR arrays, for KET / CKE-Net style token → concept knowledge.

A :class:`ConceptNetKB` holds, for every concept, its neighbours sorted by ConceptNet weight (descending) in CSR
form: ``indptr [C+1]``, ``indices [E]`` (neighbour ids), ``relation [E]``, ``weight [E]``; plus ``vad [C, 3]``,
``vad_known [C]`` and the affect intensity ``[C]``. Edges are kept in both directions (KET looks a token up as
either end of an assertion); the reverse of relation ``r`` has id ``r + R`` and the name ``<name>_inv``.
A pair of concepts linked by several assertions keeps the heaviest one, as KET does.

Looking up a batch is vectorised: tokens are mapped to ids once per distinct token (memoised), and the top-k
neighbours of all ids are gathered from the CSR arrays with one fancy-indexing step, padded to ``[n, k]``.

Example:
    >>> kb = ConceptNetKB.load("default")                      # doctest: +SKIP
    >>> nb = kb.neighbours(kb.tokenize("I lost my dog"), k=5)  # doctest: +SKIP
    >>> nb.concept.shape, nb.vad.shape                         # doctest: +SKIP
    ((4, 5), (4, 5, 3))
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import CacheError
from ..storage import kgemo_home, read_json, sha256_file, short_hash, write_json
from .store import content_checksum, load_cache, pack_texts, read_cache_dir, resolve_kb_dir, save_arrays, unpack_texts
from .stopwords import STOPWORDS
from .text import concept_text, concept_words, lemma_candidates, tokenize
from .types import Neighbours, Span, Triple
from .vad import NEUTRAL_VAD, VadLexicon, affect_raw

__all__ = ["ConceptNetKB", "EdgeTable", "assemble_conceptnet"]

log = logging.getLogger(__name__)

FORMAT = "kgemo-conceptnet/1"
ARRAYS_FILE = "conceptnet.npz"
META_FILE = "kb.json"


@dataclass
class EdgeTable:
    """Edges with interned concepts and relations (the intermediate form a parsed source is kept in)."""

    concepts: list[str]
    relations: list[str]
    head: np.ndarray  # [m] int32 into concepts
    tail: np.ndarray  # [m] int32
    relation: np.ndarray  # [m] int16 into relations
    weight: np.ndarray  # [m] float32

    def __len__(self) -> int:
        return len(self.head)

    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str, str, str, float]]) -> "EdgeTable":
        """From ``(relation, head, tail, weight)`` tuples (e.g. :class:`~kgemo.knowledge.readers.Edge`)."""
        cidx: dict[str, int] = {}
        ridx: dict[str, int] = {}
        h, t, r, w = [], [], [], []
        for rel, head, tail, weight in edges:
            h.append(cidx.setdefault(head, len(cidx)))
            t.append(cidx.setdefault(tail, len(cidx)))
            r.append(ridx.setdefault(rel, len(ridx)))
            w.append(weight)
        return cls(list(cidx), list(ridx), np.array(h, dtype=np.int32), np.array(t, dtype=np.int32),
                   np.array(r, dtype=np.int16), np.array(w, dtype=np.float32))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"concepts": pack_texts(self.concepts), "relations": pack_texts(self.relations),
                "head": self.head, "tail": self.tail, "relation": self.relation, "weight": self.weight,
                "sizes": np.array([len(self.concepts), len(self.relations)], dtype=np.int64)}

    @classmethod
    def from_arrays(cls, a: dict[str, np.ndarray]) -> "EdgeTable":
        nc, nr = (int(x) for x in a["sizes"])
        return cls(unpack_texts(a["concepts"], nc), unpack_texts(a["relations"], nr), a["head"], a["tail"],
                   a["relation"], a["weight"])

    @classmethod
    def concat(cls, tables: Sequence["EdgeTable"]) -> "EdgeTable":
        """Merge tables, re-interning concepts and relations."""
        if len(tables) == 1:
            return tables[0]
        cidx: dict[str, int] = {}
        ridx: dict[str, int] = {}
        hs, ts, rs, ws = [], [], [], []
        for tb in tables:
            cmap = np.array([cidx.setdefault(c, len(cidx)) for c in tb.concepts], dtype=np.int32)
            rmap = np.array([ridx.setdefault(r, len(ridx)) for r in tb.relations], dtype=np.int16)
            if len(tb):
                hs.append(cmap[tb.head])
                ts.append(cmap[tb.tail])
                rs.append(rmap[tb.relation])
                ws.append(tb.weight)
        cat = lambda xs, dt: np.concatenate(xs).astype(dt) if xs else np.zeros(0, dt)  # noqa: E731
        return cls(list(cidx), list(ridx), cat(hs, np.int32), cat(ts, np.int32), cat(rs, np.int16),
                   cat(ws, np.float32))


def _is_stop_concept(concept: str) -> bool:
    words = concept_words(concept)
    return not words or all(w in STOPWORDS for w in words)


def assemble_conceptnet(edges: EdgeTable, vad: VadLexicon | None, *, min_weight: float = 1.0,
                        max_neighbours: int = 100, exclude_relations: Iterable[str] = (),
                        vocab: set[str] | None = None, include_vad_words: bool = True,
                        max_phrase_words: int | None = None) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Filter edges and lay them out as the CSR arrays of a :class:`ConceptNetKB`.

    Args:
        edges: parsed edges.
        vad: the VAD lexicon (``None``: every concept neutral and unknown).
        min_weight: keep edges with weight ≥ this (KET: 1).
        max_neighbours: per concept, keep this many neighbours (both directions together), heaviest first.
        exclude_relations: relation names to drop (negations, ExternalURL, ...).
        vocab: if given, keep only concepts all of whose words are in it (used for the bundled default).
        include_vad_words: also make every VAD lexicon word a concept (without edges), so a token's own
            VAD can be looked up.
        max_phrase_words: drop concepts with more words than this.

    Returns:
        ``(arrays, meta)`` ready for :meth:`ConceptNetKB.from_arrays`.
    """
    stats: dict[str, Any] = {"edges_in": int(len(edges))}
    excluded = set(exclude_relations)
    rel_keep = np.array([r not in excluded for r in edges.relations] or [False], dtype=bool)
    keep = rel_keep[edges.relation] if len(edges) else np.zeros(0, dtype=bool)
    stats["edges_excluded_relation"] = int((~keep).sum())
    w_ok = edges.weight >= min_weight
    stats["edges_below_min_weight"] = int((keep & ~w_ok).sum())
    keep &= w_ok
    keep &= edges.head != edges.tail

    # Concept filters, decided once per distinct concept.
    def concept_ok(c: str) -> bool:
        if _is_stop_concept(c):
            return False
        words = concept_words(c)
        if max_phrase_words is not None and len(words) > max_phrase_words:
            return False
        return vocab is None or all(w in vocab for w in words)

    c_ok = np.array([concept_ok(c) for c in edges.concepts] or [False], dtype=bool)
    before = int(keep.sum())
    if len(edges):
        keep &= c_ok[edges.head] & c_ok[edges.tail]
    stats["edges_dropped_concept_filter"] = before - int(keep.sum())
    head, tail = edges.head[keep], edges.tail[keep]
    rel, weight = edges.relation[keep], edges.weight[keep]
    stats["edges_kept"] = int(len(head))

    # Final vocabulary: concepts on kept edges (+ VAD words), sorted so ids do not depend on input order.
    used = np.zeros(len(edges.concepts), dtype=bool)
    used[head] = True
    used[tail] = True
    names = {edges.concepts[i] for i in np.flatnonzero(used)}
    if include_vad_words and vad is not None:
        for w in vad.words:
            c = w.replace(" ", "_")
            if concept_ok(c):
                names.add(c)
    concepts = sorted(names)
    new_id = {c: i for i, c in enumerate(concepts)}
    remap = np.array([new_id.get(c, -1) for c in edges.concepts] or [0], dtype=np.int64)
    rel_names = sorted({edges.relations[r] for r in np.unique(rel)})
    rel_remap = np.full(max(len(edges.relations), 1), -1, dtype=np.int64)
    for i, name in enumerate(edges.relations):
        if name in rel_names:
            rel_remap[i] = rel_names.index(name)
    R = len(rel_names)

    # Both directions; the reverse of relation r is r + R.
    src = np.concatenate([remap[head], remap[tail]])
    dst = np.concatenate([remap[tail], remap[head]])
    rid = np.concatenate([rel_remap[rel], rel_remap[rel] + R])
    w = np.concatenate([weight, weight]).astype(np.float32)
    # One entry per (src, dst) pair: the heaviest (ties: lowest relation id), as KET's de-duplication.
    order = np.lexsort((rid, -w, dst, src))
    src, dst, rid, w = src[order], dst[order], rid[order], w[order]
    first = np.ones(len(src), dtype=bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    src, dst, rid, w = src[first], dst[first], rid[first], w[first]
    stats["pairs_unique"] = int(len(src))
    # Per concept: heaviest first (ties: neighbour id), cut at max_neighbours.
    order = np.lexsort((dst, -w, src))
    src, dst, rid, w = src[order], dst[order], rid[order], w[order]
    counts = np.bincount(src, minlength=len(concepts))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(src)) - np.repeat(starts, counts)
    top = rank < max_neighbours
    src, dst, rid, w = src[top], dst[top], rid[top], w[top]
    indptr = np.zeros(len(concepts) + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=len(concepts)), out=indptr[1:])
    stats["csr_entries"] = int(len(dst))

    if vad is not None:
        vad_arr, known = vad.concepts(concepts)
    else:
        vad_arr = np.tile(NEUTRAL_VAD, (len(concepts), 1))
        known = np.zeros(len(concepts), dtype=bool)
    has_edges = np.diff(indptr) > 0
    stats.update(concepts=len(concepts), concepts_with_edges=int(has_edges.sum()),
                 vad_known=int(known.sum()), vad_known_with_edges=int((known & has_edges).sum()),
                 vad_coverage_with_edges=round(float((known & has_edges).sum() / max(has_edges.sum(), 1)), 4))
    arrays = {
        "concepts": pack_texts(concepts), "indptr": indptr, "indices": dst.astype(np.int32),
        "relation": rid.astype(np.int16), "weight": w, "vad": vad_arr.astype(np.float32), "vad_known": known,
    }
    relations = rel_names + [f"{r}_inv" for r in rel_names]
    meta = {"format": FORMAT, "relations": relations, "num_base_relations": R, "n_concepts": len(concepts),
            "stats": stats, "params": {"min_weight": min_weight, "max_neighbours": max_neighbours,
                                       "exclude_relations": sorted(excluded), "vocab_size": None if vocab is None
                                       else len(vocab), "include_vad_words": include_vad_words,
                                       "max_phrase_words": max_phrase_words}}
    return arrays, meta


class ConceptNetKB:
    """ConceptNet concepts, neighbours and VAD in CSR arrays; see the module docstring.

    Build one with ``kgemo kb build conceptnet`` (or :func:`kgemo.knowledge.build.build_conceptnet`), load it
    with :meth:`load`; :meth:`from_edges` makes one in memory (tests, RDF import).
    """

    def __init__(self, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: Path | None = None):
        self.meta = meta
        self.path = path
        self.concepts: list[str] = unpack_texts(arrays["concepts"], int(meta["n_concepts"]))
        self.relations: list[str] = list(meta["relations"])
        self.num_base_relations: int = int(meta["num_base_relations"])
        self.indptr = arrays["indptr"].astype(np.int64, copy=False)
        self._degree = np.diff(self.indptr)
        self.indices = arrays["indices"]
        self.relation = arrays["relation"]
        self.weight = arrays["weight"].astype(np.float32, copy=False)
        self._vad = arrays["vad"].astype(np.float32, copy=False)
        self._vad_known = arrays["vad_known"].astype(bool, copy=False)
        raw = affect_raw(self._vad)
        if self._vad_known.any():
            lo, hi = float(raw[self._vad_known].min()), float(raw[self._vad_known].max())
        else:
            lo, hi = float(raw.min(initial=0.0)), float(raw.max(initial=1.0))
        self.affect_range = (lo, hi)
        self._affect = np.clip((raw - lo) / max(hi - lo, 1e-12), 0.0, 1.0).astype(np.float32)
        self.checksum: str = meta.get("checksum") or content_checksum(arrays, {"relations": self.relations})
        self._index: dict[str, int] | None = None
        self._resolved: dict[str, int] = {}

    # -- construction ---------------------------------------------------------------------------------------
    @classmethod
    def from_edges(cls, edges: Iterable[tuple[str, str, str, float]], vad: VadLexicon | str | None = "default",
                   **params: Any) -> "ConceptNetKB":
        """An in-memory KB from ``(relation, head, tail, weight)`` tuples (heads/tails in ConceptNet form).

        Args:
            vad: a :class:`VadLexicon`, ``"default"`` (the VAD of the bundled KB's vocabulary), or ``None``.
            params: see :func:`assemble_conceptnet` (``min_weight``, ``max_neighbours``, ...).
        """
        if isinstance(vad, str):
            vad = cls.load(vad).vad_lexicon()
        arrays, meta = assemble_conceptnet(EdgeTable.from_edges(edges), vad, **params)
        meta["checksum"] = content_checksum(arrays, {"relations": meta["relations"]})
        return cls(arrays, meta)

    @classmethod
    def load(cls, name_or_path: str | Path = "default", verify: bool = True) -> "ConceptNetKB":
        """Load the bundled default (``"default"``), a built cache by name (``$KGEMO_HOME/kb/<name>``) or a
        cache folder by path (the folder with ``kb.json`` or a KB folder with a ``conceptnet/`` sub-folder).

        Raises:
            DataNotFoundError: nothing there; the message says how to build it.
            CacheError: the cache is corrupt (:func:`kgemo.knowledge.load_knowledge` rebuilds it from its
                recorded sources; this method only reports it).
        """
        def read(path: Path) -> "ConceptNetKB":
            meta, arrays = read_cache_dir(path, META_FILE, FORMAT, "ConceptNet KB", "conceptnet", verify)
            return cls(arrays, meta, path)

        return load_cache(resolve_kb_dir(name_or_path, "conceptnet", META_FILE), META_FILE, "ConceptNet KB",
                          "conceptnet", read)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"concepts": pack_texts(self.concepts), "indptr": self.indptr, "indices": self.indices,
                "relation": self.relation, "weight": self.weight, "vad": self._vad, "vad_known": self._vad_known}

    def save(self, path: str | Path, compress: bool = True) -> Path:
        """Write ``conceptnet.npz`` + ``kb.json`` into folder ``path`` (atomically, sha256 recorded)."""
        path = Path(path)
        sha = save_arrays(path / ARRAYS_FILE, self.to_arrays(), compress=compress)
        meta = dict(self.meta, checksum=self.checksum, arrays={"file": ARRAYS_FILE, "sha256": sha})
        write_json(path / META_FILE, meta)
        self.meta, self.path = meta, path
        return path

    # -- basics ---------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.concepts)

    def __repr__(self) -> str:
        return (f"ConceptNetKB({len(self)} concepts, {len(self.indices)} neighbour entries, "
                f"{self.num_base_relations} relations, checksum={self.checksum[:12]})")

    @property
    def stats(self) -> dict[str, Any]:
        return dict(self.meta.get("stats", {}))

    @property
    def index(self) -> dict[str, int]:
        """concept string → id (built on first use)."""
        if self._index is None:
            self._index = {c: i for i, c in enumerate(self.concepts)}
        return self._index

    def concept_id(self, concept: str) -> int:
        """Id of an exact concept string (``ice_cream``), or -1."""
        return self.index.get(concept, -1)

    # -- tokens → concepts ----------------------------------------------------------------------------------
    @staticmethod
    def tokenize(text: str) -> list[str]:
        """The lower-cased word tokenizer used for lookup (:func:`kgemo.knowledge.text.tokenize`)."""
        return tokenize(text)

    def _resolve(self, token: str) -> int:
        # Memoised per distinct token: the surface form, then lemma candidates; stopwords never match.
        cid = self._resolved.get(token)
        if cid is not None:
            return cid
        cid = -1
        t = token.lower()
        if t and t not in STOPWORDS:
            # The first form that has neighbours wins ("running" → "run" when "running" is only a VAD word);
            # failing that, the first form that is a concept at all.
            index, degree = self.index, self._degree
            for cand in [t] + lemma_candidates(t):
                c = index.get(cand, -1)
                if c >= 0 and cand not in STOPWORDS:
                    if degree[c] > 0:
                        cid = c
                        break
                    if cid < 0:
                        cid = c
        if len(self._resolved) < 1_000_000:
            self._resolved[token] = cid
        return cid

    def lookup(self, tokens: Sequence[str]) -> np.ndarray:
        """Token → concept id, ``-1`` for stopwords and unknown tokens.

        Shapes:
            tokens: ``[n]`` strings; returns ``[n]`` int64.
        """
        resolve = self._resolve
        return np.fromiter((resolve(t) for t in tokens), dtype=np.int64, count=len(tokens))

    def lookup_phrases(self, tokens: Sequence[str], max_words: int = 3) -> list[Span]:
        """Greedy longest-match segmentation of ``tokens`` into concepts (``ice cream`` → ``ice_cream``).

        Multi-word spans match the joined surface form, or with the last word lemmatised (``ice creams``); a span
        may start or end with a stopword only if the whole phrase is a concept (``give_up``). Single tokens are
        matched as in :meth:`lookup`. Tokens in no span are stopwords or unknown.
        """
        toks = [t.lower() for t in tokens]
        index = self.index
        spans: list[Span] = []
        i = 0
        while i < len(toks):
            match = None
            for n in range(min(max_words, len(toks) - i), 1, -1):
                words = toks[i:i + n]
                if all(w in STOPWORDS for w in words):
                    continue
                key = "_".join(words)
                cid = index.get(key, -1)
                if cid < 0:
                    for cand in lemma_candidates(words[-1]):
                        cid = index.get("_".join(words[:-1] + [cand]), -1)
                        if cid >= 0:
                            break
                if cid >= 0:
                    match = Span(i, i + n, cid)
                    break
            if match is None:
                cid = self._resolve(toks[i])
                if cid >= 0:
                    match = Span(i, i + 1, cid)
            if match is not None:
                spans.append(match)
                i = match.end
            else:
                i += 1
        return spans

    # -- neighbours -----------------------------------------------------------------------------------------
    def _ids(self, tokens_or_ids: Any) -> np.ndarray:
        if isinstance(tokens_or_ids, np.ndarray) and tokens_or_ids.dtype.kind in "iu":
            return tokens_or_ids.astype(np.int64, copy=False).reshape(-1)
        seq = list(tokens_or_ids)
        if seq and isinstance(seq[0], str):
            return self.lookup(seq)
        return np.asarray(seq, dtype=np.int64).reshape(-1)

    def neighbours(self, tokens_or_concept_ids: Sequence[str] | Sequence[int] | np.ndarray, k: int = 10
                   ) -> Neighbours:
        """Top-``k`` neighbours (by weight) of each token / concept id, padded; vectorised over the batch.

        Args:
            tokens_or_concept_ids: tokens (looked up with :meth:`lookup`) or concept ids (-1 allowed).
            k: neighbours per query.

        Shapes:
            returns :class:`~kgemo.knowledge.types.Neighbours` with ``[n, k]`` arrays (``vad`` ``[n, k, 3]``).
        """
        ids = self._ids(tokens_or_concept_ids)
        n = len(ids)
        valid = (ids >= 0) & (ids < len(self))
        safe = np.where(valid, ids, 0)
        start = self.indptr[safe]
        count = np.where(valid, np.minimum(self.indptr[safe + 1] - start, k), 0)
        ar = np.arange(k)
        mask = ar[None, :] < count[:, None]  # [n, k]
        if len(self.indices) == 0:
            mask[:] = False
        pos = np.where(mask, start[:, None] + ar[None, :], 0)
        concept = np.where(mask, self.indices[pos] if len(self.indices) else 0, -1).astype(np.int64)
        relation = np.where(mask, self.relation[pos] if len(self.indices) else 0, -1).astype(np.int64)
        weight = np.where(mask, self.weight[pos] if len(self.indices) else 0, 0).astype(np.float32)
        vad = np.where(mask[..., None], self._vad[np.where(mask, concept, 0)], 0).astype(np.float32)
        return Neighbours(concept.reshape(n, k), relation.reshape(n, k), weight.reshape(n, k),
                          vad.reshape(n, k, 3), mask.reshape(n, k))

    # -- VAD and affect -------------------------------------------------------------------------------------
    def vad(self, ids: Any) -> np.ndarray:
        """VAD of concept ids, any shape ``[...]`` → ``[..., 3]``; -1 → neutral 0.5s."""
        ids = np.asarray(ids, dtype=np.int64)
        out = self._vad[np.where(ids >= 0, ids, 0)]
        out[ids < 0] = NEUTRAL_VAD
        return out

    def vad_known(self, ids: Any) -> np.ndarray:
        """Whether each concept's VAD came from the lexicon (False for unknown concepts and -1)."""
        ids = np.asarray(ids, dtype=np.int64)
        return np.where(ids >= 0, self._vad_known[np.where(ids >= 0, ids, 0)], False)

    def affect(self, ids: Any) -> np.ndarray:
        """KET affect intensity ‖[V−0.5, A/2]‖₂ min-max normalised over the KB's known concepts, in [0, 1];
        -1 → 0."""
        ids = np.asarray(ids, dtype=np.int64)
        return np.where(ids >= 0, self._affect[np.where(ids >= 0, ids, 0)], 0.0).astype(np.float32)

    def vad_lexicon(self) -> VadLexicon:
        """The concepts with known VAD as a lexicon (phrases with spaces), e.g. to give an RDF KB VAD."""
        idx = np.flatnonzero(self._vad_known)
        return VadLexicon([self.concepts[i].replace("_", " ") for i in idx], self._vad[idx])

    # -- export ---------------------------------------------------------------------------------------------
    def triples(self, ids: Any | None = None, k: int | None = None, source: str = "conceptnet"
                ) -> list[Triple]:
        """The edges of concepts ``ids`` (all when ``None``) as :class:`Triple`, in their stored direction
        (an inverse entry is written as ``tail --r--> query``), de-duplicated."""
        ids = np.arange(len(self)) if ids is None else self._ids(ids)
        ids = ids[ids >= 0]
        if k is None:
            k = int(np.diff(self.indptr).max(initial=0))
        nb = self.neighbours(ids, max(k, 1))
        R = self.num_base_relations
        out: dict[tuple[str, str, str], Triple] = {}
        for q, row_c, row_r, row_w, row_m in zip(ids, nb.concept, nb.relation, nb.weight, nb.mask):
            for c, r, w in zip(row_c[row_m], row_r[row_m], row_w[row_m]):
                h, t = (self.concepts[q], self.concepts[c]) if r < R else (self.concepts[c], self.concepts[q])
                name = self.relations[r if r < R else r - R]
                out.setdefault((h, name, t), Triple(h, name, t, float(w), source))
        return list(out.values())

    # -- embeddings -----------------------------------------------------------------------------------------
    def concept_embeddings(self, encoder: Any, cache: bool = True, show_progress: bool | None = None,
                           compute: bool = True) -> np.ndarray | None:
        """Concept texts (``ice_cream`` → "ice cream") encoded with a sentence encoder.

        Cached under ``$KGEMO_HOME/knowledge/concept_embeddings/`` keyed by the encoder id and :attr:`checksum`,
        written atomically and verified (sha256) on load; a corrupt file is reported and re-encoded.
        With ``compute=False`` only a valid cached table is returned, else ``None`` (the annotator then encodes
        just the concepts it meets).

        Shapes:
            returns ``[len(kb), encoder.dim]`` float32.
        """
        folder = kgemo_home() / "knowledge" / "concept_embeddings"
        stem = f"{self.checksum[:16]}-{short_hash(str(encoder.id))}"
        npy, meta_path = folder / f"{stem}.npy", folder / f"{stem}.json"
        if cache and meta_path.is_file() and npy.is_file():
            try:
                meta = read_json(meta_path)
                if (meta.get("encoder") == str(encoder.id) and meta.get("kb_checksum") == self.checksum
                        and sha256_file(npy) == meta.get("sha256")):
                    emb = np.load(npy, allow_pickle=False)
                    if emb.shape == (len(self), int(meta["dim"])):
                        return emb
                log.warning("concept embedding cache %s is corrupt or stale: re-encoding", npy)
            except (CacheError, OSError, ValueError, KeyError) as exc:
                log.warning("concept embedding cache %s unreadable (%s): re-encoding", npy, exc)
        if not compute:
            return None
        texts = [concept_text(c) for c in self.concepts]
        emb = np.asarray(encoder.encode(texts, show_progress=show_progress), dtype=np.float32)
        if cache:
            from ..storage import atomic_write

            with atomic_write(npy, "wb") as fh:
                np.save(fh, emb, allow_pickle=False)
            write_json(meta_path, {"encoder": str(encoder.id), "kb_checksum": self.checksum,
                                   "dim": int(emb.shape[1]), "sha256": sha256_file(npy), "n": len(self)})
        return emb

    def info(self) -> dict[str, Any]:
        """A JSON-able summary (what ``kgemo kb info`` prints)."""
        return {"path": str(self.path) if self.path else None, "concepts": len(self),
                "neighbour_entries": int(len(self.indices)), "relations": self.relations[:self.num_base_relations],
                "checksum": self.checksum, "vad_known": int(self._vad_known.sum()),
                "stats": self.stats, "sources": self.meta.get("sources", [])}


