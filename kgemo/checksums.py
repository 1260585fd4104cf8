"""Every checksum kgemo keys a cache by, in one place: files, bytes, JSON, texts (and text pairs), arrays.

``sha256_file`` remembers each file's digest under (resolved path, size, mtime): DailyDialog's zip, which every
split reads, and a 90 MB weights file are hashed once per process, and an edited file (new size or mtime) is
hashed again.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

__all__ = ["sha256_file", "file_sha256", "sha256_bytes", "sha256_json", "short_hash", "texts_sha256",
           "arrays_sha256"]

_memo: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()
#: Marks a (first, second) pair in :func:`texts_sha256`, so that a pair never hashes like two plain texts.
_PAIR_TAG = (1 << 63) | 2


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file (read in 1 MiB chunks), computed once per process for a given (path, size, mtime)."""
    path = Path(path).resolve()
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _lock:
        digest = _memo.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(chunk), b""):
                h.update(block)
        digest = h.hexdigest()
        with _lock:
            _memo[key] = digest
    return digest


#: The name the encoders' public API has always used.
file_sha256 = sha256_file


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_json(obj: Any) -> str:
    """Checksum of a JSON-serialisable object, independent of dict order."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))


def short_hash(text: str, n: int = 16) -> str:
    """First ``n`` hex digits of the sha256 of ``text``; used in cache file names."""
    return sha256_bytes(text.encode("utf-8"))[:n]


def texts_sha256(texts: Iterable[str | tuple[str, str]]) -> str:
    """Hex sha256 of a sequence of texts or (first, second) text pairs (an encoder's inputs).

    Each text is length-prefixed so that no two lists collide (``["ab", "c"]`` and ``["a", "bc"]`` differ), and a
    pair is tagged, so ``[("a", "b")]`` differs from ``["a", "b"]``. A list of plain strings hashes as it always
    has, so caches keyed before pairs existed stay valid.
    """
    h = hashlib.sha256()

    def update(text: str) -> None:
        data = text.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)

    n = 0
    for x in texts:
        if isinstance(x, str):
            update(x)
        else:
            h.update(_PAIR_TAG.to_bytes(8, "little"))
            update(x[0])
            update(x[1])
        n += 1
    h.update(n.to_bytes(8, "little"))
    return h.hexdigest()


def arrays_sha256(arrays: Mapping[str, np.ndarray] | np.ndarray, extra: Any = None) -> str:
    """sha256 of arrays' names, dtypes, shapes and bytes (plus ``extra`` as JSON): equal content, equal checksum.

    A single array hashes its bytes alone (what the feature cache records for its tensor).
    """
    if isinstance(arrays, np.ndarray):
        return sha256_bytes(np.ascontiguousarray(arrays).tobytes())
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    h.update(sha256_json(extra).encode())
    return h.hexdigest()
