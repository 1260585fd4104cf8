"""The ``kgemo`` command: thin sub-commands over the library (the logic lives in the packages).

Each command group registers itself from its own module (``kgemo/cli/<group>.py``) through ``add_parser``;
this file only dispatches, and turns a :class:`~kgemo.errors.KgemoError` into a one-line message and exit code 2
instead of a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import KgemoError

__all__ = ["main", "build_parser"]

#: Command groups, each a module in this package exposing ``add_parser(subparsers)``.
GROUPS = ("data", "kb", "train", "evaluate", "annotate", "report")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="kgemo", description="Emotion understanding in conversations with "
                                     "knowledge graphs.")
    parser.add_argument("--version", action="version", version=f"kgemo {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in GROUPS:
        try:
            module = importlib.import_module(f"{__name__}.{group}")
        except ModuleNotFoundError as exc:  # a group not written yet must not break the others
            if exc.name != f"{__name__}.{group}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    # Lightning prints through its own handler; keep its lines from appearing twice, and its tips out.
    logging.getLogger("lightning.pytorch").propagate = False
    if not args.verbose:
        logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
        for noisy in ("sentence_transformers", "httpx", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except KgemoError as exc:
        print(f"kgemo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kgemo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kgemo ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
