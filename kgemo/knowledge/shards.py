"""Sharded knowledge builds: independent processes (or cluster jobs) build one slice each; a merge in shard order
gives exactly what one process builds.

A build over many inputs — ATOMIC heads to embed, utterances to run COMET on — is cut into ``N`` shards. Shard
``i`` takes a contiguous range of the *sorted* inputs (:func:`shard_bounds`), aligned to the one-process build's
own unit of work (an embedding chunk of ``shard_size`` heads, a COMET batch of texts), so every model call sees
exactly the inputs it sees in a one-process build and returns the same bytes. Each shard writes only its own
part (:class:`Parts`: written atomically, with a JSON sidecar recording the part's key, range and sha256), so
shards share nothing but the output folder and can run as array jobs on a cluster's shared filesystem. The merge
— done by the shard that finds all ``N`` parts finished, by ``--merge``, or by the parent of ``--workers`` —
verifies every part and concatenates them in shard order.

    kgemo kb build atomic --shards 8 --shard-id $SLURM_ARRAY_TASK_ID   # one job per shard; the last one merges
    kgemo kb build atomic --shards 8 --merge                           # or merge explicitly afterwards
    kgemo kb build atomic --workers 4                                  # 4 local processes, then the merge

No scheduler of our own: a cluster's array jobs (SLURM ``--array=0-7``), ``xargs -P`` or ``--workers`` (a
process pool) start the shards.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import CacheError, KgemoError
from ..storage import atomic_write, kgemo_home, read_json, sha256_file, sha256_json, write_json

__all__ = ["shard_bounds", "check_shards", "Parts", "run_shards", "embedding_parts", "embed_heads_shard",
           "merge_head_embeddings", "comet_parts_dir",
           "merge_generation_parts", "generation_rows", "sorted_unique"]

log = logging.getLogger(__name__)


def check_shards(shards: int, shard_id: int | None = None) -> None:
    """Refuse a shard count below 1 or a shard id outside ``0 .. shards-1`` (with a message that says so)."""
    if shards < 1:
        raise KgemoError(f"--shards must be at least 1, got {shards}")
    if shard_id is not None and not 0 <= shard_id < shards:
        raise KgemoError(f"--shard-id must be in 0..{shards - 1} for --shards {shards}, got {shard_id}")


def shard_bounds(n: int, shards: int, align: int = 1) -> list[tuple[int, int]]:
    """``[start, stop)`` of each shard over ``n`` sorted items: the items cut into blocks of ``align`` (the
    one-process build's unit of work) and the blocks spread evenly and in order over the shards (a shard may be
    empty when there are fewer blocks than shards).

    Example:
        >>> shard_bounds(10, 3, align=2)        # blocks [0,2) [2,4) [4,6) [6,8) [8,10)
        [(0, 2), (2, 6), (6, 10)]
    """
    check_shards(shards)
    align = max(1, int(align))
    blocks = -(-n // align)
    return [(min(n, (i * blocks // shards) * align), min(n, ((i + 1) * blocks // shards) * align))
            for i in range(shards)]


class Parts:
    """The part files of one sharded build step: ``<folder>/<stem>-<i>-of-<N><suffix>`` plus a ``.json`` sidecar.

    A part counts as finished when its sidecar records this step's ``key`` and the data file still has the
    sha256 the sidecar recorded; a stale part (another key: other inputs, parameters or shard count) or a corrupt
    one is logged and redone.

    Args:
        folder: where the parts live (shared by every shard of the step).
        stem: the step's name (``embeddings``, ``comet``).
        shards: N.
        key: what the step's output depends on (sha256 of inputs and parameters, N included).
        suffix: the data file's suffix (``.npy``, ``.sqlite``).
    """

    def __init__(self, folder: str | Path, stem: str, shards: int, key: str, suffix: str = ".npy"):
        check_shards(shards)
        self.folder, self.stem, self.shards, self.key, self.suffix = Path(folder), stem, shards, key, suffix

    def path(self, shard: int) -> Path:
        return self.folder / f"{self.stem}-{shard:05d}-of-{self.shards:05d}{self.suffix}"

    def meta_path(self, shard: int) -> Path:
        return self.path(shard).with_suffix(".json")

    def finished(self, shard: int) -> dict[str, Any] | None:
        """The sidecar of a finished, verified part; None otherwise (a stale or corrupt one is logged)."""
        data, meta_path = self.path(shard), self.meta_path(shard)
        if not (data.is_file() and meta_path.is_file()):
            return None
        try:
            meta = read_json(meta_path)
        except CacheError as exc:
            log.warning("%s; redoing the part", exc)
            return None
        if meta.get("key") != self.key:
            log.warning("%s is stale (other inputs, parameters or shard count): redoing it", data)
            return None
        if sha256_file(data) != meta.get("sha256"):
            log.warning("%s is corrupt (sha256 mismatch): redoing it", data)
            return None
        return meta

    def missing(self) -> list[int]:
        """Shards whose part is not finished (or does not verify)."""
        return [i for i in range(self.shards) if self.finished(i) is None]

    def finish(self, shard: int, **meta: Any) -> dict[str, Any]:
        """Mark the data file of ``shard`` (already written in full) as finished: its sidecar with the key and
        sha256, written atomically last, so an interrupted part is never taken for a finished one."""
        meta = dict(meta, key=self.key, shard=shard, shards=self.shards, sha256=sha256_file(self.path(shard)))
        write_json(self.meta_path(shard), meta)
        return meta

    def save_array(self, shard: int, array: np.ndarray, **meta: Any) -> dict[str, Any]:
        with atomic_write(self.path(shard), "wb") as fh:
            np.save(fh, array, allow_pickle=False)
        return self.finish(shard, **meta)

    def load_array(self, shard: int) -> np.ndarray:
        return np.load(self.path(shard), allow_pickle=False)

    def remove(self) -> None:
        """Delete every part of this step (after a merge)."""
        for i in range(self.shards):
            self.path(i).unlink(missing_ok=True)
            self.meta_path(i).unlink(missing_ok=True)
        try:
            self.folder.rmdir()
        except OSError:  # other steps' parts, or a shard still writing
            pass


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_shards(job: Callable[[int], Any], shards: int, workers: int) -> list[Any]:
    """``[job(0), ..., job(shards-1)]``, run by ``workers`` local processes (spawned: safe with torch, CUDA and
    faiss) that split the CPU cores between them; in this process when ``workers`` is 1. ``job`` must be
    picklable (a module-level function or a ``functools.partial`` of one)."""
    if workers <= 1:
        return [job(i) for i in range(shards)]
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=min(workers, shards), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads,)) as pool:
        return list(pool.map(job, range(shards)))


# ---------------------------------------------------------------------------------------------------------------
# ATOMIC head embeddings
# ---------------------------------------------------------------------------------------------------------------
def embedding_parts(retriever: Any, shards: int) -> Parts:
    """The part files of the retriever's head embeddings cut into ``shards`` (their key: encoder, table, chunk
    size and shard count)."""
    key = sha256_json({"embeddings": retriever.embedding_meta(), "shard_size": retriever.shard_size,
                       "shards": shards})
    return Parts(retriever.cache_dir / "parts-embeddings", "embeddings", shards, key)


def embed_heads_shard(retriever: Any, shards: int, shard_id: int, show_progress: bool | None = None
                      ) -> dict[str, Any]:
    """Embed shard ``shard_id`` of ``shards`` of the retriever's (sorted) heads into its part file.

    The shard's range starts on an embedding chunk boundary (``retriever.shard_size`` heads), and its chunks are
    encoded one encoder call each (:func:`~kgemo.knowledge.atomic.encode_in_shards`, resumable) exactly as in a
    one-process build. Returns the part's sidecar (``start``, ``stop``, chunks ``reused`` / ``encoded``).
    """
    from .atomic import encode_in_shards

    check_shards(shards, shard_id)
    parts = embedding_parts(retriever, shards)
    done = parts.finished(shard_id)
    if done is not None:
        log.info("embedding part %d/%d up to date (verified), skipped", shard_id, shards)
        return done
    heads = retriever.table.heads
    start, stop = shard_bounds(len(heads), shards, retriever.shard_size)[shard_id]
    if stop == start:  # fewer chunks than shards
        emb, counts = np.zeros((0, int(retriever.encoder.dim)), np.float32), {"reused": 0, "encoded": 0}
    else:
        chunks = parts.folder / f"chunks-{shard_id:05d}-of-{shards:05d}"
        emb, counts = encode_in_shards(heads[start:stop], retriever.encoder, chunks,
                                       sha256_json({"key": parts.key, "shard": shard_id}), retriever.shard_size,
                                       show_progress, desc=f"encoding ATOMIC heads, shard {shard_id}/{shards}")
        chunks.rmdir()  # encode_in_shards deleted its chunk files once all were done
    return parts.save_array(shard_id, emb, start=start, stop=stop, **counts)


def merge_head_embeddings(retriever: Any, shards: int) -> list[int]:
    """Concatenate the finished embedding parts in shard order and save them as the retriever's head embeddings
    (:meth:`~kgemo.knowledge.atomic.AtomicRetriever.store_embeddings`: the same files, byte for byte, as a
    one-process build), then delete the parts. Returns the shards still missing (nothing merged) — empty on
    success."""
    parts = embedding_parts(retriever, shards)
    metas = [parts.finished(i) for i in range(shards)]
    missing = [i for i, m in enumerate(metas) if m is None]
    if missing:
        return missing
    bounds = shard_bounds(len(retriever.table.heads), shards, retriever.shard_size)
    for i, m in enumerate(metas):
        if (m["start"], m["stop"]) != bounds[i]:  # the key covers this; a hand-edited sidecar does not
            raise CacheError(f"{parts.path(i)} covers heads {m['start']}..{m['stop']}, expected {bounds[i]}")
    try:
        emb = np.concatenate([parts.load_array(i) for i in range(shards)])
    except FileNotFoundError:  # another shard finished at the same moment and merged first
        return parts.missing()
    counts = {"reused": sum(m["reused"] for m in metas), "encoded": sum(m["encoded"] for m in metas)}
    retriever.store_embeddings(emb, counts)
    parts.remove()
    return []


# ---------------------------------------------------------------------------------------------------------------
# COMET generations: one SQLite part per shard, merged into the generation cache
# ---------------------------------------------------------------------------------------------------------------
_TABLES = ("generations", "states")


def comet_parts_dir() -> Path:
    """Where the SQLite parts of sharded COMET builds live (one sub-folder per build key)."""
    return kgemo_home() / "knowledge" / "comet" / "shards"


def merge_generation_parts(parts: Parts, target: str | Path | None = None) -> dict[str, int]:
    """Copy every row of the finished SQLite parts into the generation cache at ``target`` (default: the one
    :class:`~kgemo.knowledge.comet.GenerationCache` opens), in shard order and row order (``INSERT OR REPLACE``,
    one transaction per part), then delete the parts. Returns the rows copied per table.

    Raises:
        CacheError: a part is missing or does not verify.
    """
    missing = parts.missing()
    if missing:
        raise CacheError(f"cannot merge: COMET shard part(s) {missing} of {parts.shards} are not finished")
    from .comet import GenerationCache

    cache = GenerationCache(target)  # creates the schema (and checks the database) if needed
    counts = {t: 0 for t in _TABLES}
    conn = cache.conn
    try:
        for i in range(parts.shards):
            conn.execute("ATTACH DATABASE ? AS part", (str(parts.path(i)),))
            try:
                with conn:
                    for table in _TABLES:
                        cur = conn.execute(f"INSERT OR REPLACE INTO main.{table} SELECT * FROM part.{table} "
                                           f"ORDER BY rowid")
                        counts[table] += cur.rowcount
            finally:
                conn.execute("DETACH DATABASE part")
    finally:
        conn.close()
    parts.remove()
    return counts


def generation_rows(path: str | Path, model: str | None = None) -> list[tuple]:
    """Every row of a generation cache (both tables, sorted by key), as stored: tails as their JSON text, states
    as their float32 bytes — what two builds must agree on byte for byte."""
    conn = sqlite3.connect(str(path))
    try:
        where, args = ("WHERE model=?", (model,)) if model else ("", ())
        rows = [("generations", *r) for r in conn.execute(
            f"SELECT model, relation, text, params, tails FROM generations {where} "
            f"ORDER BY model, relation, text, params", args)]
        rows += [("states", *r) for r in conn.execute(
            f"SELECT model, relation, text, pool, dim, vec FROM states {where} ORDER BY model, relation, text, pool",
            args)]
        return rows
    finally:
        conn.close()


def sorted_unique(texts: Sequence[str]) -> list[str]:
    """The inputs every shard of a build agrees on: distinct texts, sorted."""
    return sorted(set(texts))
