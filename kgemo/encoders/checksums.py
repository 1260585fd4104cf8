"""Checksums the feature cache is keyed by, memoised so that big files are hashed once per process.

``file_sha256`` remembers each file's digest under (resolved path, size, mtime): DailyDialog's zip, which every
split reads, and a 90 MB weights file are hashed once per process, and an edited file (new size or mtime) is
hashed again.
"""
from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Iterable

from ..storage import sha256_file

__all__ = ["file_sha256", "texts_sha256"]

_memo: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, computed once per process for a given (path, size, mtime)."""
    path = Path(path).resolve()
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _lock:
        digest = _memo.get(key)
    if digest is None:
        digest = sha256_file(path)
        with _lock:
            _memo[key] = digest
    return digest


def texts_sha256(texts: Iterable[str]) -> str:
    """Hex sha256 of a sequence of texts; each text is length-prefixed so that no two lists collide
    (``["ab", "c"]`` and ``["a", "bc"]`` differ)."""
    h = hashlib.sha256()
    n = 0
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
        n += 1
    h.update(n.to_bytes(8, "little"))
    return h.hexdigest()
