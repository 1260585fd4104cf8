"""AtomicRetriever.search_vectors: retrieval from query vectors a caller already has (the annotator's features)."""
import numpy as np
import pytest

from kgemo.knowledge import AtomicRetriever, AtomicTable

TUPLES = [
    ("PersonX passes the exam", "xReact", "happy"),
    ("PersonX passes the exam", "xReact", "proud"),
    ("PersonX passes the exam", "xIntent", "to graduate"),
    ("PersonX loses the dog", "xReact", "sad"),
    ("PersonX loses the dog", "xWant", "to find it"),
]


class CountingEncoder:
    def __init__(self, inner):
        self.inner, self.id, self.dim, self.calls = inner, inner.id, inner.dim, 0

    def encode(self, texts, batch_size=None, show_progress=None):
        self.calls += 1
        return self.inner.encode(texts)


def test_search_vectors_equals_search_and_encodes_nothing(tiny_encoder):
    enc = CountingEncoder(tiny_encoder)
    r = AtomicRetriever(AtomicTable.from_tuples(TUPLES), encoder=enc)
    queries = ["PersonX passes the exam", "PersonX loses the dog"]
    by_text = r.search(queries, k=2, relations=("xReact", "xIntent"))
    calls = enc.calls
    # Unnormalised vectors are fine: search_vectors normalises them.
    vecs = 3.0 * tiny_encoder.encode(queries)
    by_vec = r.search_vectors(vecs, k=2, relations=("xReact", "xIntent"))
    assert enc.calls == calls
    for a, b in zip(by_text, by_vec):
        assert a.keys() == b.keys()
        for rel in a:
            assert [h.tail for h in a[rel]] == [h.tail for h in b[rel]]
            assert [h.head for h in a[rel]] == [h.head for h in b[rel]]
            np.testing.assert_allclose([h.score for h in a[rel]], [h.score for h in b[rel]], atol=1e-5)
    assert [h.tail for h in by_vec[1]["xReact"]] == ["sad", "happy"]  # nearest head first, then the next


def test_search_vectors_shapes(tiny_encoder):
    r = AtomicRetriever(AtomicTable.from_tuples(TUPLES), encoder=tiny_encoder)
    assert r.search_vectors(np.zeros((0, tiny_encoder.dim), np.float32)) == []
    with pytest.raises(ValueError, match="query vectors"):
        r.search_vectors(np.zeros(tiny_encoder.dim, np.float32))
