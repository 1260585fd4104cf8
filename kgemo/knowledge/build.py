"""Builders of the knowledge caches: ``kgemo kb build conceptnet|atomic|comet|default|all``.

Each builder streams its sources (progress bars on a TTY), checks every input against the sha256 pinned in its
manifest (refused on mismatch unless ``no_verify``), and works in *parts* recorded in ``<out>/build.json``
(:class:`~kgemo.knowledge.store.BuildDir`): one part per input file (parsing), then the assembled cache, then
(ATOMIC) embeddings in resumable shards and the index. Re-running skips every part whose inputs, parameters and
outputs still verify, so a second run costs only hashing; a corrupt or stale part is logged and rebuilt. All
files are written atomically. Malformed rows are counted and reported with ``file:line`` (first 20 per file) in
the log and in ``build.json``.
"""
from __future__ import annotations

import functools
import logging
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..errors import DataFormatError, DataNotFoundError, KgemoError
import numpy as np

from ..storage import kgemo_home, read_json, sha256_file, sha256_json
from .atomic import ARRAYS_FILE as ATOMIC_ARRAYS, META_FILE as ATOMIC_META, AtomicRetriever, AtomicTable
from .conceptnet import ARRAYS_FILE as CN_ARRAYS, META_FILE as CN_META, ConceptNetKB, EdgeTable, assemble_conceptnet
from .manifest import SourceFile, SourceManifest, load_manifest, verify_file
from .readers import READERS, BadRows
from .shards import (Parts, check_shards, comet_parts_dir, embed_heads_shard, embedding_parts,
                     merge_generation_parts, merge_head_embeddings, run_shards, shard_bounds, sorted_unique)
from .store import BuildDir, content_checksum, default_kb_dir, load_arrays, pack_texts, save_arrays, unpack_texts
from .text import concept_words
from .vad import VadLexicon

__all__ = ["build_conceptnet", "build_atomic", "build_comet", "build_default", "build_all", "rebuild_cache",
           "BUILD_VERSIONS", "TARGETS"]

log = logging.getLogger(__name__)

#: Bumped when a builder's output format or semantics change; part keys include it, so caches rebuild.
BUILD_VERSIONS = {"conceptnet": "1", "atomic": "2", "comet": "1"}   # atomic 2: "nan" tails dropped
TARGETS = ("conceptnet", "atomic", "comet", "default", "all")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _inputs(bd: BuildDir, manifest: SourceManifest, source: Any, no_verify: bool
            ) -> list[tuple[SourceFile, Path, str]]:
    """Locate, hash, verify and record the manifest's files found at ``source``."""
    out = []
    for sf, path in manifest.locate(source):
        t0 = time.time()
        sha = verify_file(path, sf.sha256, no_verify=no_verify)
        bd.record_input(f"{manifest.name}/{sf.name}", path, sha, format=sf.format, pinned=sf.sha256,
                        license=manifest.license, verify_s=round(time.time() - t0, 3))
        out.append((sf, path, sha))
    return out


def _sources_meta(manifests: Iterable[SourceManifest], bd: BuildDir) -> list[dict[str, Any]]:
    out = []
    for m in manifests:
        files = [{"name": k.split("/", 1)[1], "sha256": v["sha256"]} for k, v in bd.state["inputs"].items()
                 if k.startswith(m.name + "/")]
        out.append({"name": m.name, "license": m.license, "license_url": m.license_url, "citation": m.citation,
                    "files": files})
    return out


def _report(bd: BuildDir, t0: float, **extra: Any) -> dict[str, Any]:
    bad = [p["stats"]["bad_rows"] for p in bd.state["parts"].values() if p.get("stats", {}).get("bad_rows")]
    rep = {"out": str(bd.out), "built": list(bd.built), "skipped": list(bd.skipped),
           "seconds": round(time.time() - t0, 3), "bad_rows": bad, **extra}
    bd.save(complete=True, last_run={k: rep[k] for k in ("built", "skipped", "seconds")})
    return rep


# ---------------------------------------------------------------------------------------------------------------
# ConceptNet + NRC-VAD
# ---------------------------------------------------------------------------------------------------------------
def _conceptnet_manifest(variant: str, source: Any) -> SourceManifest:
    if variant in ("full", "conceptnet-5.7", "5.7"):
        return load_manifest("conceptnet-5.7")
    if variant in ("ckbc", "conceptnet-ckbc"):
        return load_manifest("conceptnet-ckbc")
    if variant.endswith(".yaml"):
        return load_manifest(variant)
    if variant != "auto":
        raise KgemoError(f"unknown ConceptNet variant {variant!r}: auto, full, ckbc or a manifest .yaml")
    full = load_manifest("conceptnet-5.7")
    if source is not None:
        p = Path(source)
        return full if ("assertions" in p.name or (p.is_dir() and full.locate(p, required=False))) \
            else load_manifest("conceptnet-ckbc")
    return full if full.locate(None, required=False) else load_manifest("conceptnet-ckbc")


def _parse_part(bd: BuildDir, kind: str, sf: SourceFile, path: Path, sha: str, **opts: Any) -> str:
    """Parse one input file into ``parts/<kind>-<file>.npz`` (skipped when already done); return its key."""
    part = f"{kind}:{sf.name}"
    key = bd.key(part, sha256=sha, format=sf.format, **opts)
    if bd.done(part, key):
        return key
    t0 = time.time()
    log.info("parsing %s (%s)", path, sf.format)
    bad = BadRows(str(path))
    reader = READERS.get(sf.format)
    if reader is None:
        raise DataFormatError(f"no reader for format {sf.format!r}", path=path)
    rel = f"parts/{kind}-{_safe(sf.name)}.npz"
    if kind == "edges":
        rows = reader(path, bad, **opts) if opts else reader(path, bad)
        table = EdgeTable.from_edges(rows)
        bad.check()
        arrays, n = table.to_arrays(), len(table)
    elif kind == "tuples":
        table = AtomicTable.from_tuples(reader(path, bad))
        bad.check()
        arrays, n = table.to_arrays(), len(table)
    else:  # vad
        rows = list(reader(path, bad))
        bad.check()
        lex = VadLexicon([r[0] for r in rows], np.array([r[1:] for r in rows], dtype=np.float32).reshape(-1, 3))
        arrays = {"words": pack_texts(lex.words), "values": lex.values, "n": np.array([len(lex)])}
        n = len(lex)
    sha_out = save_arrays(bd.out / rel, arrays)
    bd.finish(part, key, {rel: sha_out}, stats={"rows": bad.rows, "kept": n, "bad_rows": bad.to_dict()
                                                 if bad.count else None}, seconds=time.time() - t0)
    log.info("%s: %d rows, %d kept, %d malformed (%.1fs)", sf.name, bad.rows, n, bad.count, time.time() - t0)
    return key


def _load_part(bd: BuildDir, part: str) -> dict:
    (rel, sha), = bd.part(part)["outputs"].items()
    return load_arrays(bd.out / rel, sha, what=f"build part {part}")


def _vad_from_part(bd: BuildDir, part: str) -> VadLexicon:
    a = _load_part(bd, part)
    return VadLexicon(unpack_texts(a["words"], int(a["n"][0])), a["values"])


def build_conceptnet(out: str | Path | None = None, source: str | Path | None = None, variant: str = "auto",
                     vad_source: str | Path | None = None, no_verify: bool = False, *,
                     min_weight: float | None = None, max_neighbours: int | None = None,
                     exclude_relations: Sequence[str] | None = None, vocab: set[str] | None = None,
                     include_vad_words: bool = True, max_phrase_words: int | None = None, compress: bool = True
                     ) -> dict[str, Any]:
    """Build a ConceptNet + NRC-VAD cache (``conceptnet.npz`` + ``kb.json``) into ``out``.

    Args:
        out: cache folder (default ``$KGEMO_HOME/kb/conceptnet``).
        source: the ConceptNet file or a folder holding it (default: the data root's ``kb/...``).
        variant: ``auto`` (the full 5.7 dump when found, else the CKBC subset), ``full``, ``ckbc``, or a
            manifest path.
        vad_source: the NRC-VAD file or folder (default: data root).
        no_verify: accept inputs whose sha256 differs from the manifest.
        min_weight, max_neighbours, exclude_relations: override the manifest's ``parse`` options.
        vocab, include_vad_words, max_phrase_words: see :func:`assemble_conceptnet`.

    Returns:
        a report: ``out``, parts ``built`` / ``skipped``, ``seconds``, ``stats``, ``bad_rows``.
    """
    t0 = time.time()
    out = Path(out) if out is not None else kgemo_home() / "kb" / "conceptnet"
    manifest = _conceptnet_manifest(variant, source)
    vad_manifest = load_manifest("nrc-vad")
    bd = BuildDir(out, "conceptnet", BUILD_VERSIONS["conceptnet"])
    bd.state["inputs"] = {}
    params = dict(manifest.parse)
    language = params.pop("language", None)
    for name, value in (("min_weight", min_weight), ("max_neighbours", max_neighbours),
                        ("exclude_relations", exclude_relations)):
        if value is not None:
            params[name] = value
    params.update(include_vad_words=include_vad_words, max_phrase_words=max_phrase_words)
    opts = {"language": language} if language else {}
    keys = []
    edge_parts = []
    for sf, path, sha in _inputs(bd, manifest, source, no_verify):
        keys.append(_parse_part(bd, "edges", sf, path, sha, **opts))
        edge_parts.append(f"edges:{sf.name}")
    (vsf, vpath, vsha), = _inputs(bd, vad_manifest, vad_source, no_verify)[:1]
    keys.append(_parse_part(bd, "vad", vsf, vpath, vsha))
    vocab_key = None if vocab is None else sorted(vocab)
    key = bd.key("kb", parts=keys, params=params, vocab=vocab_key, compress=compress)
    if not bd.done("kb", key):
        t1 = time.time()
        edges = EdgeTable.concat([EdgeTable.from_arrays(_load_part(bd, p)) for p in edge_parts])
        vad = _vad_from_part(bd, f"vad:{vsf.name}")
        arrays, meta = assemble_conceptnet(edges, vad, vocab=vocab, **params)
        meta["name"] = manifest.name
        meta["checksum"] = content_checksum(arrays, {"relations": meta["relations"]})
        meta["sources"] = _sources_meta([manifest, vad_manifest], bd)
        kb = ConceptNetKB(arrays, meta)
        kb.save(out, compress=compress)
        bd.finish("kb", key, [CN_ARRAYS, CN_META], stats=kb.stats, seconds=time.time() - t1)
        log.info("ConceptNet KB: %s", kb)
    bd.state["args"] = {"builder": "conceptnet", "source": None if source is None else str(source),
                        "variant": variant, "vad_source": None if vad_source is None else str(vad_source),
                        "no_verify": no_verify, "min_weight": min_weight, "max_neighbours": max_neighbours,
                        "exclude_relations": exclude_relations, "vocab": vocab_key,
                        "include_vad_words": include_vad_words, "max_phrase_words": max_phrase_words,
                        "compress": compress}
    return _report(bd, t0, stats=bd.part("kb")["stats"], manifest=manifest.name)


# ---------------------------------------------------------------------------------------------------------------
# ATOMIC
# ---------------------------------------------------------------------------------------------------------------
def _atomic_inputs(bd: BuildDir, source: Any, no_verify: bool) -> list[tuple[SourceFile, Path, str]]:
    manifests = [load_manifest("atomic-2019"), load_manifest("atomic-2020")]
    sources = list(source) if isinstance(source, (list, tuple)) else [source]
    found: list[tuple[SourceFile, Path, str]] = []
    for src in sources:
        if src is not None and Path(src).is_file():
            p = Path(src)
            for m in manifests:
                sf = next((f for f in m.files if f.name == p.name), None)
                if sf is not None:
                    break
            else:  # a user file: format by extension, not verified against any manifest
                fmt = "atomic2019-csv" if p.suffix == ".csv" else "atomic2020-tsv"
                sf, m = SourceFile(name=p.name, format=fmt), None
            sha = verify_file(p, sf.sha256, no_verify=no_verify)
            bd.record_input(f"{m.name if m else 'user'}/{sf.name}", p, sha, format=sf.format, pinned=sf.sha256)
            found.append((sf, p, sha))
            continue
        for m in manifests:
            if m.locate(src, required=False):
                found += _inputs(bd, m, src, no_verify)
    if not found:
        where = ", ".join(str(s) for s in sources if s is not None) or "the data root (KGEMO_DATA)"
        urls = "\n".join(f"  {m.name}: {m.files[0].url}" for m in manifests)
        raise DataNotFoundError(f"no ATOMIC files found in {where}. Download ATOMIC (CC BY 4.0) and pass "
                                f"--source PATH:\n{urls}")
    return found


def build_atomic(out: str | Path | None = None, source: Any = None, no_verify: bool = False,
                 encoder: Any = "default", index: str = "auto", nlist: int | None = None,
                 nprobe: int | None = None, shard_size: int = 4096, compress: bool = True,
                 show_progress: bool | None = None, *, shards: int = 1, shard_id: int | None = None,
                 workers: int = 1, merge: bool | None = None) -> dict[str, Any]:
    """Build the ATOMIC table (``atomic.npz`` + ``atomic.json``), head embeddings and index into ``out``.

    Args:
        out: cache folder (default ``$KGEMO_HOME/kb/atomic``).
        source: ATOMIC 2019 CSV / ATOMIC-2020 TSV files or folders (a list is fine); default: the data root.
        encoder: a sentence encoder object, ``"default"``, or ``None`` to build the table only.
        index, nlist, nprobe: see :class:`~kgemo.knowledge.index.VectorIndex`.
        shard_size: heads per embedding chunk (the unit of resumption, and of sharding).
        shards, shard_id: embed only shard ``shard_id`` of ``shards`` (contiguous ranges of the sorted heads,
            :mod:`kgemo.knowledge.shards`) into a part file, e.g. one cluster job each; the shard that finds every
            part finished merges them and builds the index. The merged files equal a one-process build's byte for
            byte.
        workers: run the shards (``shards``, or ``workers`` of them when ``shards`` is 1) in this many local
            processes, then merge.
        merge: ``None`` merges when all parts are finished; ``True`` only merges (an error names the missing
            shards); ``False`` never merges (the workers of ``workers``).

    Returns:
        the build report; for a shard whose siblings are not finished, ``shard``, ``shards`` and ``missing``
        instead of the index stats (``build.json`` is left to the merge).
    """
    t0 = time.time()
    check_shards(shards, shard_id)
    out = Path(out) if out is not None else kgemo_home() / "kb" / "atomic"
    bd = BuildDir(out, "atomic", BUILD_VERSIONS["atomic"])
    bd.state["inputs"] = {}
    keys, parts = [], []
    for sf, path, sha in _atomic_inputs(bd, source, no_verify):
        keys.append(_parse_part(bd, "tuples", sf, path, sha))
        parts.append(f"tuples:{sf.name}")
    key = bd.key("table", parts=keys, compress=compress)
    if not bd.done("table", key):
        t1 = time.time()
        table = AtomicTable.merge([AtomicTable.from_arrays(_load_part(bd, p)) for p in parts])
        manifests = [load_manifest("atomic-2019"), load_manifest("atomic-2020")]
        table.save(out, compress=compress, sources=_sources_meta(manifests, bd))
        bd.finish("table", key, [ATOMIC_ARRAYS, ATOMIC_META], stats=table.stats(), seconds=time.time() - t1)
        log.info("ATOMIC table: %s", table)
    stats = dict(bd.part("table")["stats"])
    if encoder is not None:
        encoder_arg = encoder  # a name travels to worker processes, which load their own encoder
        if isinstance(encoder, str):
            from ..encoders import SentenceEncoder

            encoder = SentenceEncoder(encoder)
        table = AtomicTable.load(out)
        retriever = AtomicRetriever(table, encoder=encoder, index=index, nlist=nlist, nprobe=nprobe,
                                    shard_size=shard_size)
        part = f"index:{retriever.cache_dir.name}:{index}"
        ikey = bd.key(part, table=table.checksum, encoder=str(encoder.id), index=index, nlist=nlist,
                      nprobe=nprobe)
        if not bd.done(part, ikey):
            t1 = time.time()
            if shards > 1 or workers > 1 or merge:
                n = shards if shards > 1 else workers
                job = functools.partial(_atomic_shard_job, out=out, source=source, no_verify=no_verify,
                                        encoder=encoder_arg, shard_size=shard_size, compress=compress, shards=n)
                missing = _sharded_head_embeddings(retriever, n, shard_id, workers, merge, job, show_progress)
                if missing or merge is False:  # the last shard to finish (or --merge, or the parent) merges
                    return {"out": str(out), "shard": shard_id, "shards": n, "missing": missing,
                            "built": list(bd.built), "skipped": list(bd.skipped),
                            "seconds": round(time.time() - t0, 3)}
            retriever.embeddings(show_progress=show_progress)
            vi = retriever.index
            outputs = [str(p.relative_to(out)) for p in retriever.files()]
            bd.finish(part, ikey, outputs, stats={"encoder": str(encoder.id), "heads": len(table.heads),
                                                  "index": repr(vi)}, seconds=time.time() - t1)
        stats["index"] = bd.part(part)["stats"]
    bd.state["args"] = {"builder": "atomic", "source": None if source is None else
                        [str(s) for s in (source if isinstance(source, (list, tuple)) else [source])],
                        "no_verify": no_verify, "encoder": None if encoder is None else "default",
                        "index": index, "nlist": nlist, "nprobe": nprobe, "shard_size": shard_size,
                        "compress": compress}
    return _report(bd, t0, stats=stats)


def _atomic_shard_job(shard_id: int, **kwargs: Any) -> dict[str, Any]:
    """One shard of ``build_atomic(..., workers=N)``, in a worker process: its part only, no merge."""
    return build_atomic(shard_id=shard_id, merge=False, show_progress=False, **kwargs)


def _sharded_head_embeddings(retriever: AtomicRetriever, shards: int, shard_id: int | None, workers: int,
                             merge: bool | None, job: Any, show_progress: bool | None) -> list[int]:
    """Embed this process's shard(s) and merge when every part is finished; returns the shards still missing."""
    if not merge:
        if shard_id is not None:
            embed_heads_shard(retriever, shards, shard_id, show_progress)
        elif workers > 1:
            run_shards(job, shards, workers)
        else:
            for i in range(shards):
                embed_heads_shard(retriever, shards, i, show_progress)
    if merge is False:
        return embedding_parts(retriever, shards).missing()
    missing = merge_head_embeddings(retriever, shards)
    if missing and merge:
        raise KgemoError(f"cannot merge the ATOMIC head embeddings: shard(s) {missing} of {shards} are not finished "
                         f"(run them with --shards {shards} --shard-id I)")
    if not missing:
        log.info("merged %d embedding parts into %s", shards, retriever.cache_dir)
    return missing


# ---------------------------------------------------------------------------------------------------------------
# COMET generations (precomputed into the persistent SQLite cache)
# ---------------------------------------------------------------------------------------------------------------
def build_comet(texts: Sequence[str], model: str | Path | None = None, relations: Sequence[str] | None = None,
                k: int = 3, num_beams: int = 5, batch_size: int = 32, states: bool = True,
                atomic: str | Path = "default", encoder: Any = None, progress: bool | None = None, *,
                shards: int = 1, shard_id: int | None = None, workers: int = 1, merge: bool | None = None
                ) -> dict[str, Any]:
    """Fill the generation cache for ``texts``: COMET (``model`` = a local checkpoint) or, with ``model=None``,
    ATOMIC retrieval (:class:`~kgemo.knowledge.comet.RetrievedComet`). Resumable: cached texts are skipped,
    and results are committed batch by batch. A progress bar (texts) shows on a TTY, or with ``progress``.

    The distinct texts are processed sorted, ``batch_size`` at a time. With ``shards``/``shard_id`` this process
    handles only shard ``shard_id`` (a contiguous range of the sorted texts, whole batches) and writes its results
    to a SQLite part of its own (``$KGEMO_HOME/knowledge/comet/shards/<key>/``); when every part is finished
    they are merged into the generation cache in shard order (:func:`~kgemo.knowledge.shards
    .merge_generation_parts`), which then holds exactly the rows, byte for byte, of a one-process build.
    ``workers`` and ``merge`` as for :func:`build_atomic`.
    """
    from ..atomic_relations import COSMIC_RELATIONS
    from .comet import CometGenerator, RetrievedComet

    t0 = time.time()
    check_shards(shards, shard_id)
    relations = tuple(relations or COSMIC_RELATIONS)
    texts = sorted_unique(texts)
    sharded = shards > 1 or workers > 1 or bool(merge)
    # A shard writes to its own part, never to the shared cache (SQLite over a cluster filesystem is unsafe).
    cache: Any = False if sharded else True
    if model is None:
        gen: Any = RetrievedComet(AtomicRetriever.load(atomic, encoder=encoder), cache=cache)
    else:
        gen = CometGenerator(model, cache=cache)
    report: dict[str, Any] = {"source": gen.source, "id": gen.id, "texts": len(texts), "relations": list(relations)}
    if sharded:
        n = shards if shards > 1 else workers
        key = sha256_json({"id": gen.id, "texts": sha256_json(texts), "relations": relations, "k": k,
                           "num_beams": num_beams, "batch_size": batch_size, "states": states, "shards": n})
        parts = Parts(comet_parts_dir() / key[:16], "comet", n, key, suffix=".sqlite")
        report.update(shards=n, shard=shard_id)
        if not merge:
            todo = [shard_id] if shard_id is not None else list(range(n))
            if shard_id is None and workers > 1:
                run_shards(functools.partial(_comet_shard_job, texts=texts, model=model, relations=relations, k=k,
                                             num_beams=num_beams, batch_size=batch_size, states=states,
                                             atomic=atomic, encoder=encoder, shards=n), n, workers)
                todo = []
            for i in todo:
                if parts.finished(i) is None:
                    # An interrupted part resumes: it holds whole batches only (each call commits its batch), so
                    # the batches left to do are the ones a one-process build makes.
                    a, b = shard_bounds(len(texts), n, batch_size)[i]
                    gen._setup_cache(parts.path(i))
                    _fill_generation_cache(gen, texts[a:b], relations, k, num_beams, batch_size, states, progress)
                    gen.cache.conn.close()
                    parts.finish(i, start=a, stop=b)
        report["missing"] = parts.missing()
        if merge is not False and not report["missing"]:
            report["merged"] = merge_generation_parts(parts)  # into the default generation cache
        elif merge:
            raise KgemoError(f"cannot merge the COMET generations: shard(s) {report['missing']} of {n} are not "
                             f"finished (run them with --shards {n} --shard-id I)")
    else:
        report["cache_before"] = gen.cache_stats()
        _fill_generation_cache(gen, texts, relations, k, num_beams, batch_size, states, progress)
        report["cache_after"] = gen.cache_stats()
    report["seconds"] = round(time.time() - t0, 3)
    return report


def _fill_generation_cache(gen: Any, texts: Sequence[str], relations: Sequence[str], k: int, num_beams: int,
                           batch_size: int, states: bool, progress: bool | None) -> None:
    import sys

    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=len(texts), desc=f"comet cache ({gen.source})", unit="text", disable=not show) as bar:
        for i in range(0, len(texts), batch_size):
            chunk = texts[i:i + batch_size]
            gen.generate(chunk, relations, k=k, num_beams=num_beams)
            if states:
                gen.relation_states(chunk, relations)
            bar.update(len(chunk))


def _comet_shard_job(shard_id: int, texts: Sequence[str], **kwargs: Any) -> dict[str, Any]:
    """One shard of ``build_comet(..., workers=N)``, in a worker process: its part only, no merge."""
    return build_comet(texts, shard_id=shard_id, merge=False, progress=False, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# The bundled default and "all"
# ---------------------------------------------------------------------------------------------------------------
def common_vocabulary(edges_source: str | Path | None = None, vad_source: str | Path | None = None,
                      min_count: int = 3) -> set[str]:
    """NRC-VAD words ∪ the words used by at least ``min_count`` distinct concepts of the CKBC subset: a common
    English vocabulary derived offline from the sources themselves."""
    vad_m, ckbc_m = load_manifest("nrc-vad"), load_manifest("conceptnet-ckbc")
    (_, vpath), = vad_m.locate(vad_source)[:1]
    words = {w for w in VadLexicon.from_file(vpath).words if " " not in w}
    (_, cpath), = ckbc_m.locate(edges_source)[:1]
    concepts = set()
    bad = BadRows(str(cpath))
    for e in READERS["ckbc"](cpath, bad):
        concepts.add(e.head)
        concepts.add(e.tail)
    counts = Counter(w for c in concepts for w in set(concept_words(c)))
    return words | {w for w, n in counts.items() if n >= min_count and w.isalpha()}


def build_default(out: str | Path | None = None, data: str | Path | None = None, no_verify: bool = False,
                  min_count: int = 3, max_neighbours: int = 30, max_phrase_words: int = 3,
                  encoder: Any = "default") -> dict[str, Any]:
    """Rebuild the bundled default KB (``kgemo/resources/kb/default``, a few MB): the CKBC subset + NRC-VAD
    restricted to :func:`common_vocabulary`, and the ATOMIC table of every ATOMIC file found (head texts and
    tails; embeddings are computed at first use and cached in ``$KGEMO_HOME``).

    The build state (with absolute input paths) is kept in ``$KGEMO_HOME/kb/default-build``; the package gets
    only the caches and their ``kb.json`` / ``atomic.json`` (which record input names and sha256).
    """
    import shutil

    t0 = time.time()
    out = Path(out) if out is not None else default_kb_dir()
    root = Path(data) if data is not None else None
    kb_src = (root / "kb") if root is not None and (root / "kb").is_dir() else root
    work = kgemo_home() / "kb" / "default-build"
    vocab = common_vocabulary(kb_src, kb_src, min_count=min_count)
    cn = build_conceptnet(work / "conceptnet", source=kb_src, variant="ckbc", vad_source=kb_src,
                          no_verify=no_verify, vocab=vocab, max_neighbours=max_neighbours,
                          max_phrase_words=max_phrase_words)
    at = build_atomic(work / "atomic", source=kb_src, no_verify=no_verify, encoder=encoder)
    atomic_files: tuple[str, ...] = (ATOMIC_ARRAYS, ATOMIC_META)
    if encoder is not None:
        # int8 head embeddings for the default encoder, so a fresh install searches without encoding.
        from .atomic import QUANTIZED_FILE, QUANTIZED_META

        if encoder == "default":
            from ..encoders import SentenceEncoder

            encoder = SentenceEncoder("default")
        AtomicRetriever(AtomicTable.load(work / "atomic"), encoder=encoder).save_quantized(work / "atomic")
        atomic_files += (QUANTIZED_FILE, QUANTIZED_META)
    for sub, files in (("conceptnet", (CN_ARRAYS, CN_META)), ("atomic", atomic_files)):
        (out / sub).mkdir(parents=True, exist_ok=True)
        for f in files:
            src, dst = work / sub / f, out / sub / f
            if not dst.is_file() or sha256_file(dst) != sha256_file(src):
                shutil.copyfile(src, dst.with_suffix(dst.suffix + ".tmp"))
                dst.with_suffix(dst.suffix + ".tmp").replace(dst)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"out": str(out), "conceptnet": cn, "atomic": at, "vocabulary": len(vocab), "bytes": size,
            "seconds": round(time.time() - t0, 3)}


def build_all(out: str | Path | None = None, source: str | Path | None = None, no_verify: bool = False,
              encoder: Any = "default", comet_model: str | Path | None = None,
              comet_texts: Sequence[str] | None = None) -> dict[str, Any]:
    """ConceptNet (``<out>/conceptnet``) and ATOMIC (``<out>/atomic``), then COMET generations for
    ``comet_texts`` when given."""
    base = Path(out) if out is not None else kgemo_home() / "kb"
    rep: dict[str, Any] = {
        "conceptnet": build_conceptnet(base / "conceptnet", source=source, vad_source=source, no_verify=no_verify),
        "atomic": build_atomic(base / "atomic", source=source, no_verify=no_verify, encoder=encoder),
    }
    if comet_texts:
        rep["comet"] = build_comet(comet_texts, model=comet_model, atomic=base / "atomic",
                                   encoder=None if encoder == "default" else encoder)
    return rep


def rebuild_cache(path: str | Path) -> bool:
    """Rebuild the cache in ``path`` from the arguments recorded in its ``build.json`` (used when a load finds
    it corrupt). Returns False when there is nothing to rebuild from (e.g. the bundled default)."""
    path = Path(path)
    bj = path / BuildDir.FILE
    if not bj.is_file():
        return False
    try:
        args = dict(read_json(bj).get("args") or {})
    except KgemoError:
        return False
    builder = args.pop("builder", None)
    log.warning("rebuilding %s from its recorded sources", path)
    try:
        if builder == "conceptnet":
            if args.get("vocab") is not None:
                args["vocab"] = set(args["vocab"])
            build_conceptnet(path, **args)
        elif builder == "atomic":
            build_atomic(path, **args)
        else:
            return False
    except KgemoError as exc:
        log.error("could not rebuild %s: %s", path, exc)
        return False
    return True
