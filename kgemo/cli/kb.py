"""``kgemo kb``: build, inspect and convert knowledge caches (thin layer over :mod:`kgemo.knowledge`).

    kgemo kb build conceptnet|atomic|comet|default|all [--source PATH] [--no-verify] [--out DIR]
                                             # --source: several only for atomic
    kgemo kb build atomic|comet ... --shards N --shard-id I | --shards N --merge | --workers N
    kgemo kb info [NAME]                      # default, a built cache name, or a folder; --sources for licenses
    kgemo kb neighbours "some text" [--kb NAME] [-k 5]
    kgemo kb search "some text" [--kb NAME] [-k 3] [--relations xIntent xReact]
    kgemo kb export-rdf [--kb NAME] [--text T | --concepts C ...] [-k K] [--out FILE.ttl]
    kgemo kb import-rdf FILE --out DIR

``scripts/build_kb.py`` is the same as ``kgemo kb build``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

__all__ = ["add_parser", "add_build_arguments", "run_build"]

#: Targets whose builder takes several ``--source`` paths (``build_atomic`` merges every file it finds); the
#: others read one file or folder.
MULTI_SOURCE = ("atomic",)

log = logging.getLogger(__name__)


def add_build_arguments(p: argparse.ArgumentParser) -> None:
    from ..data.registry import DATASETS
    from ..knowledge.build import TARGETS
    from .argtypes import count, input_file, input_path, output_dir, positive

    p.add_argument("target", choices=TARGETS, help="what to build: conceptnet (ConceptNet + NRC-VAD), atomic "
                   "(table, head embeddings, FAISS index), comet (generation cache for texts), default (the "
                   "bundled KB), all (conceptnet + atomic)")
    p.add_argument("--source", action="append", metavar="PATH", type=input_path, help="source file or folder "
                   "(default: the data root, $KGEMO_DATA or ../shared/data); atomic: repeatable, every ATOMIC file "
                   "found is merged; conceptnet, default, all: one")
    p.add_argument("--vad", metavar="PATH", type=input_path, help="NRC-VAD lexicon file or folder (conceptnet)")
    p.add_argument("--variant", default="auto", help="conceptnet: auto (full 5.7 dump if found, else the CKBC "
                   "subset), full, ckbc, or a manifest .yaml")
    p.add_argument("--no-verify", action="store_true", help="use inputs whose sha256 differs from the manifest")
    p.add_argument("--out", metavar="DIR", type=output_dir, help="cache folder (default: $KGEMO_HOME/kb/<target>; "
                   "for 'default': kgemo/resources/kb/default; for 'comet': the ATOMIC cache to retrieve from)")
    p.add_argument("--min-weight", type=float, help="conceptnet: minimum edge weight (manifest: 1.0)")
    p.add_argument("--max-neighbours", type=positive, help="conceptnet: neighbours kept per concept")
    p.add_argument("--encoder", default="default", help="atomic: sentence encoder for head embeddings "
                   "('default', a model path, or 'none' for the table only)")
    p.add_argument("--index", default="auto", choices=("auto", "flat", "ivf", "ivfpq", "torch"),
                   help="atomic index kind (auto: flat up to 200k heads, IVF-Flat up to 2M, IVF-PQ beyond)")
    p.add_argument("--nlist", type=positive, help="IVF lists")
    p.add_argument("--nprobe", type=positive, help="IVF lists probed per query")
    g = p.add_argument_group("sharding (atomic head embeddings, comet generations)")
    g.add_argument("--shards", type=positive, default=1, metavar="N", help="cut the work into N shards "
                   "(contiguous slices of the sorted inputs); with --shard-id, run one of them (e.g. one cluster job "
                   "each); the shard that finds all N parts finished merges them")
    g.add_argument("--shard-id", type=count, metavar="I", help="the shard this process runs (0..N-1)")
    g.add_argument("--workers", type=positive, default=1, metavar="N", help="run the shards (N of them unless "
                   "--shards says otherwise) in N local processes, then merge")
    g.add_argument("--merge", action="store_true", help="only merge the finished parts of --shards N (an error "
                   "names the missing shards)")
    g = p.add_argument_group("comet")
    g.add_argument("--model", metavar="PATH", type=input_path, help="COMET checkpoint folder (default: ATOMIC "
                   "retrieval)")
    g.add_argument("--texts", metavar="FILE", type=input_file, help="texts to generate for, one per line (UTF-8)")
    g.add_argument("--dataset", choices=sorted(DATASETS), help="or: the utterances of this dataset "
                   "(kgemo.data.load_dataset)")
    g.add_argument("--split", action="append", choices=("train", "dev", "test"), help="dataset split "
                   "(repeatable; default: train, dev, test)")
    g.add_argument("--relations", nargs="+", help="relations (default: COSMIC's five)")
    g.add_argument("-k", type=positive, default=3, help="tails per relation")
    g.add_argument("--num-beams", type=positive, default=5, help="beam size (1 = greedy)")
    p.add_argument("--json", action="store_true", help="print the build report as JSON")


def add_parser(subparsers) -> None:
    from .argtypes import input_file, output_dir, output_file, positive

    parser = subparsers.add_parser("kb", help="knowledge caches: build, info, neighbours, search, RDF",
                                   description="Build, inspect and convert knowledge caches.")
    parser.set_defaults(func=lambda args: (parser.print_help(), 1)[1])
    sub = parser.add_subparsers(dest="kb_command", metavar="ACTION")

    p = sub.add_parser("build", help="build a knowledge cache (resumable, verified)")
    add_build_arguments(p)
    p.set_defaults(func=run_build)

    p = sub.add_parser("info", help="what a KB holds, its checksums and sources")
    p.add_argument("name", nargs="?", default="default", help="default, a built cache name, or a folder")
    p.add_argument("--sources", action="store_true", help="list the source manifests with URLs and licenses")
    p.set_defaults(func=_info)

    p = sub.add_parser("neighbours", help="ConceptNet concepts and neighbours of a text's tokens")
    p.add_argument("text")
    p.add_argument("--kb", default="default", help="'default', a built cache name, or a folder")
    p.add_argument("-k", type=positive, default=5, help="neighbours per concept (default: %(default)s)")
    p.set_defaults(func=_neighbours)

    p = sub.add_parser("search", help="nearest ATOMIC events of a text and their tails")
    p.add_argument("text")
    p.add_argument("--kb", default="default", help="'default', a built cache name, or a folder")
    p.add_argument("-k", type=positive, default=3, help="events per relation (default: %(default)s)")
    p.add_argument("--relations", nargs="+", default=["xIntent", "xReact", "oReact"])
    p.set_defaults(func=_search)

    p = sub.add_parser("export-rdf", help="a KB slice as Turtle")
    p.add_argument("--kb", default="default")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--text", help="export the neighbours of this text's tokens")
    g.add_argument("--concepts", nargs="+", help="export the neighbours of these concepts")
    p.add_argument("-k", type=positive, default=10, help="neighbours per concept")
    p.add_argument("--out", type=output_file, help="output file (default: stdout)")
    p.set_defaults(func=_export_rdf)

    p = sub.add_parser("import-rdf", help="a user's RDF graph as a ConceptNet-like KB folder")
    p.add_argument("file", type=input_file, help="RDF file (Turtle, N-Triples, RDF/XML, ...)")
    p.add_argument("--out", required=True, type=output_dir, help="KB folder to write (load it with "
                   "ConceptNetKB.load(DIR))")
    p.add_argument("--format", help="RDF syntax (default: guessed from the suffix)")
    p.add_argument("--no-vad", action="store_true", help="do not attach the default KB's VAD to concepts")
    p.set_defaults(func=_import_rdf)


def _texts_for_comet(args) -> list[str]:
    from ..errors import KgemoError

    if args.texts:
        return [line.strip() for line in Path(args.texts).read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.dataset:
        from ..data import load_dataset

        texts = []
        for split in args.split or ("train", "dev", "test"):
            for conv in load_dataset(args.dataset, split):
                texts += [u.text for u in conv.utterances]
        return texts
    raise KgemoError("kb build comet needs --texts FILE or --dataset NAME")


def _source(args):
    """``--source`` as the builder of ``args.target`` takes it: None, one path, or (atomic) a list of paths."""
    from ..errors import KgemoError

    sources = args.source or []
    if sources and args.target == "comet":
        raise KgemoError("kb build comet does not read --source; give --texts FILE or --dataset NAME (and --out "
                         "for the ATOMIC cache to retrieve from)")
    if len(sources) > 1 and args.target not in MULTI_SOURCE:
        raise KgemoError(f"kb build {args.target} reads one --source file or folder, got {len(sources)}: "
                         f"{', '.join(sources)} (only {', '.join(MULTI_SOURCE)} merges several)")
    return sources[0] if len(sources) == 1 else (sources or None)


def _sharding(args) -> dict:
    """``--shards/--shard-id/--workers/--merge`` as the atomic and comet builders take them."""
    from ..errors import KgemoError
    from ..knowledge.shards import check_shards

    given = args.shards > 1 or args.shard_id is not None or args.workers > 1 or args.merge
    if given and args.target not in ("atomic", "comet"):
        raise KgemoError(f"kb build {args.target} is not sharded; --shards, --shard-id, --workers and --merge apply "
                         "to atomic (head embeddings) and comet (generations)")
    if (args.shard_id is not None or args.merge) and args.shards == 1:
        raise KgemoError("--shard-id and --merge need --shards N (N > 1)")
    if args.merge and (args.shard_id is not None or args.workers > 1):
        raise KgemoError("--merge only merges: give it with --shards N alone")
    check_shards(args.shards, args.shard_id)
    return {"shards": args.shards, "shard_id": args.shard_id, "workers": args.workers,
            "merge": True if args.merge else None}


def run_build(args) -> int:
    from ..knowledge import build as B

    source = _source(args)
    sharding = _sharding(args)
    encoder = None if args.encoder == "none" else args.encoder
    if encoder not in (None, "default") and args.target != "atomic":  # build_atomic loads it (in each worker)
        from ..encoders import SentenceEncoder

        encoder = SentenceEncoder(encoder)
    if args.target == "conceptnet":
        rep = B.build_conceptnet(args.out, source=source, variant=args.variant, vad_source=args.vad,
                                 no_verify=args.no_verify, min_weight=args.min_weight,
                                 max_neighbours=args.max_neighbours)
    elif args.target == "atomic":
        rep = B.build_atomic(args.out, source=source, no_verify=args.no_verify, encoder=encoder, index=args.index,
                             nlist=args.nlist, nprobe=args.nprobe, **sharding)
    elif args.target == "comet":
        rep = B.build_comet(_texts_for_comet(args), model=args.model, relations=args.relations, k=args.k,
                            num_beams=args.num_beams, atomic=args.out or "default",
                            encoder=None if encoder == "default" else encoder, **sharding)
    elif args.target == "default":
        rep = B.build_default(args.out, data=source, no_verify=args.no_verify)
    else:
        rep = B.build_all(args.out, source=source, no_verify=args.no_verify, encoder=encoder)
    if args.json:
        print(json.dumps(rep, indent=2, default=str))
    else:
        _print_report(rep)
    return 0


def _print_report(rep: dict, indent: str = "") -> None:
    if "built" in rep:
        print(f"{indent}{rep['out']}: built {len(rep['built'])} part(s), {len(rep['skipped'])} up to date, "
              f"{rep['seconds']:.1f}s")
        for name, value in (rep.get("stats") or {}).items():
            if not isinstance(value, dict):
                print(f"{indent}  {name}: {value}")
        if rep.get("missing"):
            print(f"{indent}  shard {rep['shard']} of {rep['shards']} done; not merged yet: shard(s) {rep['missing']} "
                  f"unfinished (the last one to finish merges, or run --merge)")
        for bad in rep.get("bad_rows") or []:
            print(f"{indent}  {bad['file']}: {bad['bad']} of {bad['rows']} rows malformed, e.g. "
                  f"{bad['examples'][0] if bad['examples'] else ''}")
        return
    for key, value in rep.items():
        if isinstance(value, dict):
            print(f"{indent}{key}:")
            _print_report(value, indent + "  ")
        else:
            print(f"{indent}{key}: {value}")


def _info(args) -> int:
    from ..errors import DataNotFoundError
    from ..knowledge import AtomicTable, ConceptNetKB, list_manifests, load_manifest

    if args.sources:
        for name in list_manifests():
            m = load_manifest(name)
            print(f"{m.name} ({m.kind}) — {m.license}")
            for f in m.files:
                print(f"  {f.name}  sha256={f.sha256 or 'not pinned'}  {f.url}")
        return 0
    found = False
    for cls, what in ((ConceptNetKB, "conceptnet"), (AtomicTable, "atomic")):
        try:
            obj = cls.load(args.name)
        except DataNotFoundError:
            continue
        found = True
        info = obj.info() if hasattr(obj, "info") else {"path": str(obj.path), "checksum": obj.checksum,
                                                        **obj.stats()}
        print(f"[{what}] {obj!r}")
        print(json.dumps(info, indent=2, default=str))
    if not found:
        raise DataNotFoundError(f"no knowledge cache named {args.name!r} (give 'default', a name built with "
                                f"`kgemo kb build`, or a cache folder)")
    return 0


def _neighbours(args) -> int:
    from ..knowledge import ConceptNetKB

    kb = ConceptNetKB.load(args.kb)
    toks = kb.tokenize(args.text)
    ids = kb.lookup(toks)
    nb = kb.neighbours(ids, args.k)
    for t, cid, row_c, row_r, row_w, row_m in zip(toks, ids, nb.concept, nb.relation, nb.weight, nb.mask):
        if cid < 0:
            continue
        v, a, d = kb.vad([cid])[0]
        items = ", ".join(f"{kb.relations[r]}→{kb.concepts[c]} ({w:.2f})"
                          for c, r, w in zip(row_c[row_m], row_r[row_m], row_w[row_m]))
        print(f"{t} → {kb.concepts[cid]} [V={v:.2f} A={a:.2f} D={d:.2f} affect={kb.affect([cid])[0]:.2f}]: "
              f"{items or '(no neighbours)'}")
    return 0


def _search(args) -> int:
    from ..knowledge import AtomicRetriever

    r = AtomicRetriever.load(args.kb)
    (res,) = r.search([args.text], k=args.k, relations=tuple(args.relations))
    for rel, hits in res.items():
        print(f"{rel}: " + "; ".join(f"{h.tail} ({h.score:.2f}, from '{h.head}')" for h in hits))
    return 0


def _export_rdf(args) -> int:
    from ..knowledge import ConceptNetKB
    from ..knowledge.rdf import to_turtle
    from ..knowledge.text import to_concept

    kb = ConceptNetKB.load(args.kb)
    if args.text:
        ids = kb.lookup(kb.tokenize(args.text))
    elif args.concepts:
        ids = [kb.concept_id(to_concept(c)) for c in args.concepts]
    else:
        ids = None
    ttl = to_turtle(kb.triples(ids, k=args.k) if ids is not None else kb, kb=kb)
    if args.out:
        from ..storage import atomic_write

        with atomic_write(args.out, "w", encoding="utf-8") as fh:
            fh.write(ttl)
    else:
        sys.stdout.write(ttl)
    return 0


def _import_rdf(args) -> int:
    from ..knowledge.rdf import load_rdf_kb

    kb = load_rdf_kb(args.file, format=args.format, vad=None if args.no_vad else "default")
    kb.save(Path(args.out))
    print(f"{kb!r} written to {args.out}")
    return 0
