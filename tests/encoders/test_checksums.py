from __future__ import annotations

import os

from kgemo.encoders import checksums
from kgemo.encoders.checksums import file_sha256, texts_sha256
from kgemo.storage import sha256_file


def test_file_sha256_is_memoised_by_path_size_mtime(tmp_path, monkeypatch):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    calls = []
    monkeypatch.setattr(checksums, "sha256_file", lambda p: calls.append(p) or sha256_file(p))
    first = file_sha256(path)
    assert first == sha256_file(path)
    assert file_sha256(str(path)) == first and len(calls) == 1
    path.write_text("a,b\n1,3\n")  # same size: the mtime tells the change
    os.utime(path, ns=(1, 1))
    second = file_sha256(path)
    assert second != first and len(calls) == 2


def test_texts_sha256_separates_texts():
    assert texts_sha256(["ab", "c"]) != texts_sha256(["a", "bc"])
    assert texts_sha256([]) != texts_sha256([""])
    assert texts_sha256(["x"]) == texts_sha256(iter(["x"]))
