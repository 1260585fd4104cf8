"""``kgemo report RUN_DIR --split test --html out.html`` — a browsable page of a saved model's predictions on a
dataset split: predicted vs gold per utterance, filters, the confusion matrix, per-class F1 and the knowledge
evidence of each utterance (:class:`kgemo.annotate.split_report.SplitReport`)."""
from __future__ import annotations

import json
import sys

from .argtypes import count, output_file, positive

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="an HTML gallery of a saved model's predictions on a dataset split",
                       description="Annotate a dataset split with a saved model and write one self-contained HTML "
                                   "page: predicted vs gold per utterance with filters (gold, predicted, error "
                                   "type), the confusion matrix, per-class F1, and each utterance's knowledge "
                                   "evidence. Prints a JSON summary.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (runs/<name>/seed0), a model folder, or "
                                                       "'default'")
    p.add_argument("--split", default="test", choices=["train", "dev", "test"], help="(default: %(default)s)")
    p.add_argument("--html", required=True, metavar="OUT", type=output_file,
                   help="the page to write (e.g. report.html)")
    p.add_argument("--dataset", nargs="+", help="datasets: names or files of your own (path/to/chats.jsonl) "
                   "(default: those the model was trained on)")
    p.add_argument("--root", help="dataset root (default KGEMO_DATA or ../shared/data)")
    p.add_argument("--max-conversations", type=positive, help="only the first N conversations of each dataset")
    p.add_argument("--top-k", type=count, default=5, help="concepts kept per utterance (default: %(default)s)")
    p.add_argument("--events", type=count, default=1, help="ATOMIC events per relation (0 = none; default: 1)")
    p.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    p.add_argument("--batch-size", type=positive, default=16, help="conversations per batch (default: %(default)s)")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from kgemo.annotate.split_report import SplitReport

    from .annotate import _quiet_loaders

    _quiet_loaders(getattr(args, "verbose", False))
    report = SplitReport.from_model(args.run_dir, args.split, datasets=args.dataset, root=args.root,
                                    max_conversations=args.max_conversations, device=args.device, top_k=args.top_k,
                                    top_events=args.events, events="default" if args.events > 0 else None,
                                    batch_size=args.batch_size)
    report.to_html(args.html)
    size = Path(args.html).stat().st_size
    print(json.dumps(report.summary(), indent=2))
    print(f"kgemo: wrote {args.html} ({size / 1e6:.2f} MB, {report.num_utterances} utterances)", file=sys.stderr)
    return 0
