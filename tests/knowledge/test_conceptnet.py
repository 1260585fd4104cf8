import logging

import numpy as np
import pytest

from kgemo.errors import CacheError
from kgemo.knowledge import ConceptNetKB, Neighbours, Span
from kgemo.knowledge.vad import affect_raw

EDGES = [
    ("IsA", "dog", "animal", 2.0),
    ("IsA", "puppy", "dog", 3.0),
    ("AtLocation", "dog", "kennel", 1.0),
    ("Desires", "dog", "ice_cream", 1.5),
    ("Causes", "ice_cream", "happy", 2.5),
    ("RelatedTo", "dog", "bark", 0.5),     # below min_weight 1
    ("RelatedTo", "dog", "animal", 1.2),   # same pair as IsA 2.0: the heavier one stays
    ("IsA", "the", "dog", 5.0),            # stopword concept
    ("IsA", "dog", "canine", 1.0),         # canine has no VAD
]


@pytest.fixture
def kb(vad_lexicon):
    return ConceptNetKB.from_edges(EDGES, vad=vad_lexicon)


def names(kb, ids):
    return [kb.concepts[i] for i in ids if i >= 0]


def test_neighbours_sorted_padded_and_typed(kb):
    nb = kb.neighbours(["dogs"], k=6)
    assert isinstance(nb, Neighbours)
    assert nb.concept.shape == (1, 6) and nb.concept.dtype == np.int64
    assert nb.vad.shape == (1, 6, 3) and nb.vad.dtype == np.float32
    assert names(kb, nb.concept[0]) == ["puppy", "animal", "ice_cream", "canine", "kennel"]
    assert nb.weight[0].tolist() == pytest.approx([3.0, 2.0, 1.5, 1.0, 1.0, 0.0])
    assert nb.mask[0].tolist() == [True] * 5 + [False]
    assert nb.concept[0, 5] == -1 and nb.relation[0, 5] == -1
    rel = [kb.relations[r] for r in nb.relation[0, :5]]
    # puppy IsA dog is stored on dog as the inverse relation.
    assert rel == ["IsA_inv", "IsA", "Desires", "IsA", "AtLocation"]
    assert kb.num_base_relations == 5 and kb.relations[:5] == ["AtLocation", "Causes", "Desires", "IsA",
                                                               "RelatedTo"]
    np.testing.assert_allclose(nb.vad[0, 0], [0.9, 0.5, 0.3])  # puppy


def test_filters_min_weight_stopwords_and_duplicates(kb):
    assert kb.concept_id("bark") == -1          # only edge below weight 1, and not a VAD word
    assert kb.concept_id("the") == -1
    assert "dog" in kb.concepts and "sad" in kb.concepts  # VAD words become concepts without edges
    assert kb.stats["edges_below_min_weight"] == 1
    nb = kb.neighbours(["animal"], k=3)
    assert names(kb, nb.concept[0]) == ["dog"] and nb.weight[0, 0] == 2.0


def test_lookup_stopwords_unknown_and_lemmas(kb):
    ids = kb.lookup(["the", "dogs", "Puppies", "xyzzy", "happily", ""])
    assert ids.dtype == np.int64
    assert ids[0] == -1 and ids[3] == -1 and ids[5] == -1
    assert kb.concepts[ids[1]] == "dog" and kb.concepts[ids[2]] == "puppy" and kb.concepts[ids[4]] == "happy"
    assert kb.tokenize("The DOGS!") == ["the", "dogs"]


def test_lookup_phrases_prefers_longest_match(kb):
    spans = kb.lookup_phrases(kb.tokenize("my dog wants ice creams"))
    assert spans == [Span(1, 2, kb.concept_id("dog")), Span(3, 5, kb.concept_id("ice_cream"))]


def test_vad_phrase_mean_unknown_neutral_and_flagged(kb):
    ids = [kb.concept_id("ice_cream"), kb.concept_id("canine"), -1]
    np.testing.assert_allclose(kb.vad(ids), [[0.6, 0.3, 0.4], [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]], atol=1e-6)
    assert kb.vad_known(ids).tolist() == [True, False, False]


def test_affect_is_kets_norm_min_max_scaled(kb):
    known = np.flatnonzero(kb.vad_known(np.arange(len(kb))))
    raw = affect_raw(kb.vad(known))
    aff = kb.affect(known)
    assert aff.min() == pytest.approx(0.0) and aff.max() == pytest.approx(1.0)
    # happy: V=1.0, A=0.735 → ‖[0.5, 0.3675]‖ is the largest of the fixture lexicon.
    assert kb.concepts[known[np.argmax(aff)]] == "happy"
    assert affect_raw(np.array([1.0, 0.735, 0.772])) == pytest.approx(np.hypot(0.5, 0.3675))
    np.testing.assert_allclose(aff, (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-6)
    assert kb.affect([-1])[0] == 0.0


def test_vectorised_neighbours_match_a_python_walk(kb):
    rng = np.random.default_rng(0)
    ids = rng.integers(-1, len(kb), 200)
    nb = kb.neighbours(ids, k=3)
    for row, cid in enumerate(ids):
        expect = [] if cid < 0 else list(kb.indices[kb.indptr[cid]:kb.indptr[cid + 1]][:3])
        assert list(nb.concept[row][nb.mask[row]]) == expect


def test_save_load_round_trip_and_checksum(kb, tmp_path):
    kb.save(tmp_path / "kb")
    back = ConceptNetKB.load(tmp_path / "kb")
    assert back.concepts == kb.concepts and back.checksum == kb.checksum and len(back) == len(kb)
    nb1, nb2 = kb.neighbours(["dog"], 4), back.neighbours(["dog"], 4)
    for a, b in zip(nb1, nb2):
        np.testing.assert_array_equal(a, b)
    other = ConceptNetKB.from_edges(EDGES[:3], vad=None)
    assert other.checksum != kb.checksum


def test_corrupt_cache_is_refused_with_a_clear_message(kb, tmp_path):
    kb.save(tmp_path / "kb")
    path = tmp_path / "kb" / "conceptnet.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="corrupt or was changed"):
        ConceptNetKB.load(tmp_path / "kb")


def test_triples_export_original_direction(kb):
    triples = kb.triples([kb.concept_id("dog")])
    assert ("puppy", "IsA", "dog", 3.0, "conceptnet") in triples
    assert ("dog", "IsA", "animal", 2.0, "conceptnet") in triples
    assert len(triples) == 5


def test_concept_embeddings_cached_and_verified(kb, tiny_encoder, kgemo_home, caplog):
    emb = kb.concept_embeddings(tiny_encoder)
    assert emb.shape == (len(kb), tiny_encoder.dim) and emb.dtype == np.float32
    # "ice_cream" is encoded as "ice cream".
    np.testing.assert_allclose(emb[kb.concept_id("ice_cream")], tiny_encoder.encode(["ice cream"])[0])
    calls = tiny_encoder.calls
    again = kb.concept_embeddings(tiny_encoder)
    assert tiny_encoder.calls == calls
    np.testing.assert_array_equal(again, emb)
    (npy,) = (kgemo_home / "knowledge" / "concept_embeddings").glob("*.npy")
    npy.write_bytes(npy.read_bytes()[:-8] + b"\0" * 8)
    with caplog.at_level(logging.WARNING):
        third = kb.concept_embeddings(tiny_encoder)
    assert "corrupt or stale" in caplog.text
    assert tiny_encoder.calls == calls + 1  # re-encoded once
    np.testing.assert_array_equal(third, emb)
