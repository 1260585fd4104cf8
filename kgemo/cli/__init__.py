"""The ``kgemo`` command: thin sub-commands over the library (the logic lives in the packages).

Each command group registers itself from its own module (``kgemo/cli/<group>.py``) through ``add_parser``;
this file only dispatches, and turns a user's mistake into one line on standard error and exit code 2 instead
of a traceback:

* a usage error (unknown option, bad number, missing input file): argparse's ``kgemo <command>: error: ...``;
* a :class:`~kgemo.errors.KgemoError` (bad data, missing dataset, checksum mismatch): ``kgemo: error: ...``;
* an ``OSError`` about a path the user gave (``FileNotFoundError``, ``IsADirectoryError``,
  ``NotADirectoryError``, ``PermissionError``) — one named in the arguments, inside one, or under
  ``$KGEMO_DATA`` / ``$KGEMO_HOME`` — and a ``UnicodeDecodeError`` while reading such a file: ``kgemo: error:
  PATH: ...``. These are input problems that a library function met before it could name them itself.

Anything else is a bug (ours or a dependency's) and keeps its traceback: an ``OSError`` on a path the user never
named (a packaged resource, a temporary file), a ``UnicodeDecodeError`` with no user file to blame, a
``TypeError``, ``KeyError``, ... Turning those into one polite line would hide where to fix them. With ``-v`` the
traceback of an input error is printed too, above its line.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from pathlib import Path

from ..errors import KgemoError

__all__ = ["main", "build_parser"]

#: Command groups, each a module in this package exposing ``add_parser(subparsers)``.
GROUPS = ("data", "encoders", "kb", "train", "finetune", "evaluate", "calibrate", "annotate", "report")


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
    """Run ``kgemo`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code (0 ok, 2 bad input). A usage
    error raises argparse's ``SystemExit(2)`` after printing its message, as ``--help`` raises ``SystemExit(0)``."""
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
        return _error(str(exc), args.verbose)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as exc:
        path = _user_path_of(exc, _user_paths(args))
        if path is None:
            raise
        return _error(f"{path}: {(exc.strerror or type(exc).__name__).lower()}", args.verbose)
    except UnicodeDecodeError as exc:
        path = _decoding_file(exc, _user_paths(args))
        if path is None:
            raise
        return _error(f"{path}: not valid UTF-8 ({exc.reason}: byte 0x{exc.object[exc.start]:02x} at offset "
                      f"{exc.start}); save it as UTF-8", args.verbose)
    except KeyboardInterrupt:
        print("kgemo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kgemo ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


def _error(message: str, verbose: bool) -> int:
    if verbose:
        traceback.print_exc()
    print(f"kgemo: error: {message}", file=sys.stderr)
    return 2


def _user_paths(args: argparse.Namespace) -> list[Path]:
    """Every argument value that could be a path, and the data and cache roots the user configured."""
    values: list = []
    for key, value in vars(args).items():
        if key.endswith("command"):  # sub-command names ("kb", "build"), not paths
            continue
        values += value if isinstance(value, (list, tuple)) else [value]
    values += [os.environ.get("KGEMO_DATA"), os.environ.get("KGEMO_HOME")]
    paths = []
    for v in values:
        if isinstance(v, (str, os.PathLike)) and str(v) not in ("", "-"):
            try:
                paths.append(Path(v).expanduser().absolute())
            except (ValueError, RuntimeError):  # NUL in a text argument, a ~user that does not exist
                pass
    return paths


def _inside(path, roots: list[Path]) -> bool:
    try:
        p = Path(path).expanduser().absolute()
    except (TypeError, ValueError, RuntimeError):
        return False
    return any(p == r or r in p.parents for r in roots)


def _user_path_of(exc: OSError, roots: list[Path]):
    """The path of ``exc`` that the user named (or one inside it), else None. ``os.replace(tmp, target)`` errors
    carry the temporary file first and the user's target second: the target is the one to name."""
    for name in (exc.filename2, exc.filename):
        if name is not None and _inside(name, roots):
            return os.fsdecode(name) if isinstance(name, bytes) else name
    return None


def _decoding_file(exc: UnicodeDecodeError, roots: list[Path]):
    """The user's file being decoded when ``exc`` was raised, found in the failing frames' locals (innermost
    first: ``Path.read_text``'s ``self``, a loader's ``path``)."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    for frame in reversed(frames):
        for value in list(frame.f_locals.values()):
            if isinstance(value, (str, os.PathLike)) and len(str(value)) < 4096 and _inside(value, roots):
                try:
                    if Path(value).is_file():
                        return str(value)
                except (OSError, ValueError):
                    continue
    return None


if __name__ == "__main__":
    sys.exit(main())
