from __future__ import annotations

import os

import hashlib

import numpy as np

from kgemo import checksums
from kgemo.checksums import arrays_sha256, file_sha256, sha256_file, texts_sha256


def test_file_sha256_is_memoised_by_path_size_mtime(tmp_path, monkeypatch):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(checksums.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    first = file_sha256(path)
    assert first == real(path.read_bytes()).hexdigest() and file_sha256 is sha256_file
    assert file_sha256(str(path)) == first and len(calls) == 1
    path.write_text("a,b\n1,3\n")  # same size: the mtime tells the change
    os.utime(path, ns=(1, 1))
    second = file_sha256(path)
    assert second != first and len(calls) == 2


def test_texts_sha256_separates_texts():
    assert texts_sha256(["ab", "c"]) != texts_sha256(["a", "bc"])
    assert texts_sha256([]) != texts_sha256([""])
    assert texts_sha256(["x"]) == texts_sha256(iter(["x"]))


def test_pairs_never_hash_like_plain_texts():
    assert texts_sha256([("a", "b")]) != texts_sha256(["a", "b"])
    assert texts_sha256([("ab", "")]) != texts_sha256([("a", "b")])


def test_arrays_sha256_sees_names_dtypes_shapes_and_bytes():
    a = np.arange(6, dtype=np.int32)
    base = arrays_sha256({"a": a})
    assert arrays_sha256({"a": a.copy()}) == base
    assert arrays_sha256({"b": a}) != base
    assert arrays_sha256({"a": a.astype(np.int64)}) != base
    assert arrays_sha256({"a": a.reshape(2, 3)}) != base
    assert arrays_sha256({"a": a}, extra={"v": 1}) != base
    assert arrays_sha256(a) == hashlib.sha256(a.tobytes()).hexdigest()
