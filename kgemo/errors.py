"""Errors kgemo raises on bad input or bad caches.

Every error that comes from a user's file names the file and, where it has one, the line or dialogue, so that
nobody has to read a traceback from inside pandas or csv to find the bad row.
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["KgemoError", "DataFormatError", "DataNotFoundError", "CacheError", "ChecksumError"]


class KgemoError(Exception):
    """Base class of every error kgemo raises on purpose."""


class DataFormatError(KgemoError, ValueError):
    """A file (or an in-memory input) does not have the format kgemo expects.

    Args:
        message: what is wrong.
        path: the file, if the input came from one.
        line: 1-based line (or CSV record) number, if known.
        dialogue: dialogue / conversation id, if known.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None,
                 dialogue: str | int | None = None):
        self.message, self.path, self.line, self.dialogue = message, path, line, dialogue
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        elif line is not None:
            where = f"line {line}: "
        if dialogue is not None:
            where += f"dialogue {dialogue}: "
        super().__init__(where + message)


class DataNotFoundError(KgemoError, FileNotFoundError):
    """A dataset or knowledge source is not where kgemo looked; the message says how to get it."""


class CacheError(KgemoError):
    """A cache file is corrupt, stale or was written by something else."""


class ChecksumError(KgemoError):
    """A downloaded or user-given file does not match the sha256 its manifest expects."""
