"""Shared fixtures. Tests run offline; integration tests skip with a reason when the real data is absent."""
from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def kgemo_home(tmp_path_factory, monkeypatch):
    """A fresh, empty KGEMO_HOME per test, so no test reads another's (or the user's) cache."""
    home = tmp_path_factory.mktemp("kgemo_home")
    monkeypatch.setenv("KGEMO_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def data_root():
    """The real datasets (KGEMO_DATA or ../shared/data); integration tests skip when they are absent."""
    from kgemo.storage import data_root as find

    root = find(required=False)
    if root is None:
        pytest.skip("real datasets absent: set KGEMO_DATA or provide ../shared/data")
    return root


class TinyEncoder:
    """Deterministic stand-in for SentenceEncoder: hashes text into a fixed random vector (no model load).

    Identical texts give identical vectors; ``calls`` counts encode() calls so cache tests can assert on it.
    """

    def __init__(self, dim: int = 16):
        self.dim = dim
        self.id = f"tiny-hash-{dim}"
        self.calls = 0
        self.encoded = 0

    def encode(self, texts, batch_size=None, show_progress=None):
        self.calls += 1
        self.encoded += len(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode("utf-8")).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim)
        return out


@pytest.fixture
def tiny_encoder():
    return TinyEncoder()
