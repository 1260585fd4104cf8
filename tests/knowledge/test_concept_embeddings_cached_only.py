"""ConceptNetKB.concept_embeddings(compute=False): the cached table or None, never an encoding."""
import numpy as np

from kgemo.knowledge import ConceptNetKB

EDGES = [("IsA", "puppy", "dog", 3.0), ("Causes", "ice_cream", "happy", 2.5)]


def test_compute_false_returns_only_a_cached_table(tiny_encoder):
    kb = ConceptNetKB.from_edges(EDGES, vad=None)
    assert kb.concept_embeddings(tiny_encoder, compute=False) is None
    assert tiny_encoder.calls == 0
    full = kb.concept_embeddings(tiny_encoder)
    calls = tiny_encoder.calls
    cached = kb.concept_embeddings(tiny_encoder, compute=False)
    assert tiny_encoder.calls == calls
    np.testing.assert_array_equal(cached, full)
