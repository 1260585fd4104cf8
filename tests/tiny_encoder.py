"""A deterministic stand-in sentence encoder for tests, in its own module so that worker processes can unpickle it
(a class defined in a conftest is not importable by name: several conftest modules share that name)."""
import hashlib

import numpy as np


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
