"""``kgemo data``: list the datasets, print their statistics, download them, check a file of your own, export a
dataset to that format."""
from __future__ import annotations

import argparse
import json

__all__ = ["add_parser"]

_SPLITS = ("train", "dev", "test")


def add_parser(subparsers) -> None:
    from ..data.registry import DATASETS
    from .argtypes import count, input_dir, input_file, output_dir

    names = sorted(DATASETS)
    parser = subparsers.add_parser("data", help="datasets: list, stats, download, validate, export",
                                   description="Datasets: list them, print statistics, download them, check a "
                                               "dataset file of your own (validate), write a dataset in that "
                                               "format (export).")
    parser.set_defaults(func=lambda args: _help(parser))
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")

    p = sub.add_parser("list", help="the datasets kgemo knows and whether they are present")
    p.add_argument("--root", type=input_dir, help="data root (default: $KGEMO_DATA, else ../shared/data, else "
                   "$KGEMO_HOME/data)")
    p.set_defaults(func=_list)

    p = sub.add_parser("stats", help="dialogues, utterances, speakers, lengths and label histograms per split")
    p.add_argument("dataset", choices=names)
    p.add_argument("--split", choices=_SPLITS, help="one split (default: all)")
    p.add_argument("--root", type=input_dir, help="data root holding <dataset>/")
    p.add_argument("--layout", choices=("auto", "convlab", "original"), help="DailyDialog source layout")
    p.add_argument("--lenient", action="store_true", help="skip bad rows / dialogues and report them "
                   "(strict=False) instead of stopping at the first one")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_stats)

    p = sub.add_parser("download", help="download a dataset and verify its checksums")
    p.add_argument("dataset", choices=names + ["all"])
    p.add_argument("--to", dest="dest", metavar="DIR", type=output_dir, help="data root to write into (default: "
                   "$KGEMO_DATA, else $KGEMO_HOME/data)")
    p.add_argument("--from", dest="source", metavar="PATH_OR_URL", help="copy from a local folder or file:// "
                   "URL (or an http(s) mirror) instead of the official URLs; required for iemocap")
    p.add_argument("--force", action="store_true", help="fetch again even if a verified copy exists")
    p.set_defaults(func=_download)

    p = sub.add_parser("validate", help="check a dataset file of your own (chats.jsonl + chats.yaml): every bad "
                       "line, label histograms per split, what --lenient would skip",
                       description="Check a dataset file of your own and its YAML header (docs/your-data.md): "
                       "list every bad line as FILE:LINE: message, print label histograms per split and task of "
                       "what loads, warn about what would make training fail. Exit status 1 when a strict load "
                       "(kgemo train) would fail; with --lenient, 0 when something loads.")
    p.add_argument("file", type=input_file, metavar="FILE", help="the .jsonl file (its header is found beside it)")
    p.add_argument("--lenient", action="store_true", help="report the bad lines as what a lenient load "
                   "(data.strict: false) skips, and succeed if anything loads")
    p.add_argument("--max-problems", type=count, default=50, help="problem lines to print (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the report")
    p.set_defaults(func=_validate)

    p = sub.add_parser("export", help="write a dataset as a file of your own format (DIR/<name>.jsonl + .yaml)",
                       description="Write every split of a built-in dataset as DIR/<name>.jsonl with its header "
                       "DIR/<name>.yaml (docs/your-data.md). Training from the file gives the same scores as "
                       "training from the built-in loader.")
    p.add_argument("dataset", choices=names)
    p.add_argument("--out", required=True, metavar="DIR", type=output_dir, help="folder to write into")
    p.add_argument("--root", type=input_dir, help="data root holding <dataset>/")
    p.add_argument("--layout", choices=("auto", "convlab", "original"), help="DailyDialog source layout")
    p.set_defaults(func=_export)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 1


def _list(args) -> int:
    from ..data.registry import DATASETS
    from ..errors import KgemoError

    rows = [("dataset", "tasks (classes)", "metrics", "download", "present under root")]
    for name, spec in DATASETS.items():
        present = []
        for split in spec.splits:
            try:
                spec.source_files(split, root=args.root)
                present.append(split)
            except KgemoError:
                pass
        rows.append((name, ", ".join(f"{t} ({len(s)})" for t, s in spec.tasks.items()),
                     ", ".join(f"{t}: {m}" for t, m in spec.metrics.items()),
                     "yes" if spec.downloadable else "local copy", " ".join(present) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


def _stats(args) -> int:
    from ..data.registry import get_dataset
    from ..data.stats import dataset_stats, format_stats
    from ..errors import KgemoError

    options = {}
    if args.layout:
        if "layout" not in get_dataset(args.dataset).options:
            raise KgemoError(f"--layout applies to dailydialog only, not {args.dataset}")
        options["layout"] = args.layout
    stats = dataset_stats(args.dataset, [args.split] if args.split else None, root=args.root,
                          strict=not args.lenient, **options)
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0


def _validate(args) -> int:
    from ..data.validate import check_file
    from ..errors import KgemoError

    check = check_file(args.file)
    if check.header_error is not None:  # nothing else can be checked: one line, like any input error
        raise KgemoError(check.header_error)
    if args.json:
        print(json.dumps(check.to_dict(), indent=2))
    else:
        print(check.format(lenient=args.lenient, max_problems=args.max_problems))
    if args.lenient:
        return 0 if any(s["dialogues"] for s in check.stats.values()) else 1
    return 0 if check.ok else 1


def _export(args) -> int:
    from ..data.export import export_dataset
    from ..data.registry import get_dataset
    from ..errors import KgemoError

    options = {}
    if args.layout:
        if "layout" not in get_dataset(args.dataset).options:
            raise KgemoError(f"--layout applies to dailydialog only, not {args.dataset}")
        options["layout"] = args.layout
    jsonl, header = export_dataset(args.dataset, args.out, root=args.root, **options)
    print(f"{args.dataset}: wrote {jsonl} and {header}")
    return 0


def _download(args) -> int:
    from ..data.download import MANIFEST, download_dataset

    names = sorted(MANIFEST) if args.dataset == "all" else [args.dataset]
    for name in names:
        paths = download_dataset(name, dest=args.dest, source=args.source, force=args.force)
        print(f"{name}: {len(paths)} files ready in {_root_of(paths, name)}")
    return 0


def _root_of(paths, name: str):
    """The data root of downloaded files: the parent of their ``<name>/`` folder."""
    for p in paths:
        for parent in p.parents:
            if parent.name == name:
                return parent.parent
    return None
