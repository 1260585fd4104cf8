"""``argparse`` ``type=`` callables the command groups share.

A bad value becomes a usage error at parse time (exit 2, ``kgemo <command>: error: argument X: ...``), before a
model or a dataset is loaded; the library still checks what it reads (format, checksums), these only check
what can be told from the command line and the file system: numbers in range, a path that exists and is a file
or a folder, an output that is not a folder.
"""
from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["count", "positive", "input_file", "input_dir", "input_path", "output_file", "output_dir", "dataset"]


def count(text: str) -> int:
    """A whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def positive(text: str) -> int:
    """A whole number >= 1."""
    value = count(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def input_path(text: str, what: str = "file or folder") -> str:
    """A file or folder that exists."""
    if not text:
        raise argparse.ArgumentTypeError("empty path")
    if not Path(text).expanduser().exists():
        raise argparse.ArgumentTypeError(f"{text}: no such {what}")
    return text


def input_file(text: str) -> str:
    """A file that exists (not a folder)."""
    input_path(text, "file")
    if Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder, not a file")
    return text


def input_dir(text: str) -> str:
    """A folder that exists."""
    input_path(text, "folder")
    if not Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder")
    return text


def output_file(text: str) -> str:
    """A file to write: not an existing folder (its parent folders are created when it is written)."""
    if not text:
        raise argparse.ArgumentTypeError("empty path")
    if Path(text).expanduser().is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder; give a file name")
    return text


def output_dir(text: str) -> str:
    """A folder to write into: not an existing file."""
    if not text:
        raise argparse.ArgumentTypeError("empty path")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder")
    return text


def dataset(text: str) -> str:
    """A registered dataset's name, or a dataset file of one's own (``path/to/chats.jsonl``) that exists."""
    from ..data import DATASETS
    from ..data.jsonl import is_file_dataset

    if is_file_dataset(text):
        return input_file(text)
    if text.lower() not in DATASETS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a dataset: choose from {sorted(DATASETS)} or give a "
                                         "file of your own (path/to/chats.jsonl)")
    return text.lower()
