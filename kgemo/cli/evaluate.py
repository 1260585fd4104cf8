"""``kgemo evaluate MODEL_DIR`` — score a saved model on a dataset split with its dataset's metric."""
from __future__ import annotations

import json

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    from .argtypes import dataset, input_dir, positive

    p = sub.add_parser("evaluate", help="score a saved model folder (runs/<name>/seed<k>/model) on a split")
    p.add_argument("model", type=input_dir, help="model folder written by `kgemo train` (runs/<name>/seed<k>/model)")
    p.add_argument("--split", default="test", choices=["train", "dev", "test"])
    p.add_argument("--dataset", nargs="+", type=dataset, help="datasets to score on: names or files of your own "
                   "(path/to/chats.jsonl) (default: those it was trained on)")
    p.add_argument("--root", type=input_dir, help="dataset root (default KGEMO_DATA or ../shared/data)")
    p.add_argument("--max-conversations", type=positive, help="only the first N conversations (quick check)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..training import evaluate

    result = evaluate(args.model, args.split, args.dataset, args.root, args.max_conversations)
    print(json.dumps(result, indent=2))
    return 0
