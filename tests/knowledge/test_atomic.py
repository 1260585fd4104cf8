import logging

import numpy as np
import pytest

from kgemo.knowledge import AtomicHit, AtomicRetriever, AtomicTable, VectorIndex
from kgemo.knowledge.index import brute_force_search, normalise

TUPLES = [
    ("PersonX passes the exam", "xReact", "happy"),
    ("PersonX passes the exam", "xReact", "Happy."),        # same tail after normalisation
    ("PersonX passes the exam", "xReact", "proud"),
    ("PersonX passes the exam", "xIntent", "to graduate"),
    ("PersonX  passes the exam ", "oReact", "proud"),        # same head after whitespace clean-up
    ("PersonX loses the dog", "xReact", "sad"),
    ("PersonX loses the dog", "xWant", "to find it"),
]


@pytest.fixture
def table():
    return AtomicTable.from_tuples(TUPLES)


def test_table_merges_heads_and_tails(table):
    assert table.heads == ["PersonX loses the dog", "PersonX passes the exam"]
    assert table.tails_of(1, "xReact") == ["happy", "proud"]
    assert table.tails_of(1, "oReact") == ["proud"]
    assert table.tails_of(0, "xIntent") == [] and table.tails_of(0, "nope") == []
    assert len(table) == 6
    assert table.stats()["relations"] == {"oReact": 1, "xIntent": 1, "xReact": 3, "xWant": 1}


def test_table_save_load_and_checksum(table, tmp_path):
    table.save(tmp_path / "t")
    back = AtomicTable.load(tmp_path / "t")
    assert back.heads == table.heads and back.checksum == table.checksum
    assert sorted(back.tuples()) == sorted(table.tuples())


def test_search_returns_tails_per_relation(table, tiny_encoder):
    r = AtomicRetriever(table, encoder=tiny_encoder)
    res = r.search(["PersonX passes the exam", "PersonX loses the dog"], k=2,
                   relations=("xReact", "xIntent", "unknownRel"))
    assert [h.tail for h in res[0]["xReact"]] == ["happy", "proud"]
    assert res[0]["xReact"][0] == AtomicHit("happy", pytest.approx(1.0, abs=1e-5), "PersonX passes the exam",
                                            "xReact")
    # The nearest head has no xIntent: the next head is walked.
    assert [h.tail for h in res[1]["xIntent"]] == ["to graduate"]
    assert res[1]["xIntent"][0].score < 0.999
    assert res[0]["unknownRel"] == []
    assert r.search([], k=2) == []


def test_index_saved_with_encoder_and_checksum_and_verified(table, tiny_encoder, kgemo_home, caplog):
    r = AtomicRetriever(table, encoder=tiny_encoder)
    r.search(["x"], k=1)
    (faiss_file,) = kgemo_home.rglob("index-flat.faiss")
    meta = faiss_file.with_suffix(".json").read_text()
    assert tiny_encoder.id in meta and table.checksum in meta
    encoded = tiny_encoder.encoded
    r2 = AtomicRetriever(table, encoder=tiny_encoder)
    r2.search(["x"], k=1)
    assert tiny_encoder.encoded == encoded + 1  # only the query: embeddings and index came from disk
    faiss_file.write_bytes(faiss_file.read_bytes()[:-4] + b"\0\0\0\0")
    with caplog.at_level(logging.WARNING):
        AtomicRetriever(table, encoder=tiny_encoder).search(["x"], k=1)
    assert "corrupt (sha256 mismatch): rebuilding" in caplog.text


@pytest.mark.parametrize("kind", ["flat", "ivf", "torch"])
def test_index_kinds_agree_with_brute_force(kind):
    rng = np.random.default_rng(0)
    emb = normalise(rng.standard_normal((2000, 32)))
    q = normalise(rng.standard_normal((50, 32)))
    params = dict(nlist=16, nprobe=16) if kind == "ivf" else {}   # probing every list makes IVF exact
    index = VectorIndex.build(emb, kind=kind, gpu=False, **params)
    s, i = index.search(q, 10)
    bs, bi = brute_force_search(emb, q, 10)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(s, bs, atol=1e-5)
    assert index.kind == kind and index.ntotal == 2000


@pytest.mark.parametrize("n_queries", [1, 3, 16])
def test_flat_small_batches_are_exact_and_leave_faiss_settings_alone(n_queries):
    import faiss  # faiss-cpu is a dependency of kgemo: a broken install must fail here, not skip
    rng = np.random.default_rng(3)
    emb = normalise(rng.standard_normal((1000, 24)))
    q = normalise(rng.standard_normal((n_queries, 24)))
    before = faiss.cvar.distance_compute_blas_threshold
    s, i = VectorIndex.build(emb, kind="flat", gpu=False).search(q, 5)
    bs, bi = brute_force_search(emb, q, 5)
    np.testing.assert_array_equal(i, bi)
    np.testing.assert_allclose(s, bs, atol=1e-5)
    assert faiss.cvar.distance_compute_blas_threshold == before


def test_index_serialisation_round_trip():
    rng = np.random.default_rng(1)
    emb = normalise(rng.standard_normal((500, 16)))
    index = VectorIndex.build(emb, kind="ivf", nlist=8, nprobe=3, gpu=False)
    back = VectorIndex.from_bytes(index.to_bytes(), "ivf", emb, index.params, gpu=False)
    q = emb[:5]
    np.testing.assert_array_equal(back.search(q, 4)[1], index.search(q, 4)[1])
    assert back.nprobe == 3


def test_auto_kind_switches_to_ivf_above_max_flat():
    emb = normalise(np.random.default_rng(2).standard_normal((300, 8)))
    assert VectorIndex.build(emb, gpu=False).kind == "flat"
    assert VectorIndex.build(emb, max_flat=100, gpu=False).kind == "ivf"


def test_torch_fallback_when_faiss_is_missing(monkeypatch, caplog):
    from kgemo.knowledge import index as index_mod

    monkeypatch.setattr(index_mod, "faiss_available", lambda: False)
    emb = normalise(np.random.default_rng(3).standard_normal((50, 8)))
    with caplog.at_level(logging.WARNING):
        vi = VectorIndex.build(emb, kind="flat")
    assert vi.backend == "torch" and "faiss is not importable" in caplog.text
    np.testing.assert_array_equal(vi.search(emb[:3], 60)[1][:, :50], brute_force_search(emb, emb[:3], 50)[1])
    assert (vi.search(emb[:3], 60)[1][:, 50:] == -1).all()
