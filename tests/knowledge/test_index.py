"""VectorIndex: IVF-PQ, the size-based choice, nprobe tuning on held-out queries, memory-mapped loading."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from kgemo.knowledge.index import (MAX_FLAT, MAX_IVF, VectorIndex, brute_force_search, choose_kind, default_pq_m,
                                   normalise, recall_at_k, tune_nprobe)


def clustered(n: int, d: int = 32, clusters: int = 20, seed: int = 0) -> np.ndarray:
    """Normalised points around a few centres: structure that IVF and PQ can exploit, as real embeddings have."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((clusters, d))
    return normalise(centres[rng.integers(0, clusters, n)] + 0.5 * rng.standard_normal((n, d)))


def test_choose_kind_by_size():
    assert choose_kind(10) == "flat" and choose_kind(MAX_FLAT) == "flat"
    assert choose_kind(MAX_FLAT + 1) == "ivf" and choose_kind(MAX_IVF) == "ivf"
    assert choose_kind(MAX_IVF + 1) == "ivfpq"
    assert choose_kind(500, max_flat=100, max_ivf=400) == "ivfpq"
    emb = clustered(1200, 16)
    assert VectorIndex.build(emb, max_flat=100, max_ivf=400, gpu=False).kind == "ivfpq"


def test_default_pq_m_divides_the_dimension():
    assert default_pq_m(384) == 128 and default_pq_m(768) == 256 and default_pq_m(16) == 4
    with pytest.raises(ValueError, match="must divide"):
        VectorIndex.build(clustered(500, 16), kind="ivfpq", m=5, nlist=4, gpu=False)


@pytest.mark.parametrize("opq, m", [(False, 16), pytest.param(True, 16, marks=pytest.mark.slow)])  # OPQ: ~10 s
def test_ivfpq_stores_codes_and_finds_near_neighbours(opq, m):
    emb, q = clustered(3000, 32), clustered(50, 32, seed=1)
    index = VectorIndex.build(emb, kind="ivfpq", nlist=16, nprobe=16, m=m, opq=opq, gpu=False)
    assert index.kind == "ivfpq" and index.params == {"nlist": 16, "nprobe": 16, "m": m, "nbits": 8, "opq": opq}
    flat = VectorIndex.build(emb, kind="flat", gpu=False)
    # m one-byte codes per vector instead of 32 floats: the file is several times smaller than the flat one.
    assert len(index.to_bytes()) < len(flat.to_bytes()) / 3
    ids = index.search(q, 10)[1]
    assert recall_at_k(ids, brute_force_search(emb, q, 10)[1]) > 0.6
    assert (ids >= 0).all()


def test_tune_nprobe_finds_the_smallest_nprobe_that_reaches_the_target():
    emb, held_out = clustered(4000, 32), clustered(200, 32, seed=7)
    index = VectorIndex.build(emb, kind="ivf", nlist=64, gpu=False)
    exact = brute_force_search(emb, held_out, 10)[1]
    result = tune_nprobe(index, held_out, 0.9, exact_ids=exact)
    assert result.reached and index.nprobe == result.nprobe and result.recall >= 0.9
    assert recall_at_k(index.search(held_out, 10)[1], exact) == pytest.approx(result.recall)
    if result.nprobe > 1:  # one fewer list misses the target
        index.nprobe = result.nprobe - 1
        assert recall_at_k(index.search(held_out, 10)[1], exact) < 0.9
    measured = [p for p, _, _ in result.curve]
    assert len(measured) == len(set(measured)) and len(measured) <= 2 * np.log2(64) + 1
    # Ground truth computed from the index's own matrix gives the same answer.
    assert tune_nprobe(index, held_out, 0.9).nprobe == result.nprobe


def test_tune_nprobe_reports_an_unreachable_target(caplog):
    emb, held_out = clustered(2000, 32), clustered(100, 32, seed=3)
    index = VectorIndex.build(emb, kind="ivfpq", nlist=8, m=4, gpu=False)  # 4 bytes per vector: coarse codes
    with caplog.at_level(logging.WARNING):
        result = tune_nprobe(index, held_out, 0.999)
    assert not result.reached and result.recall < 0.999 and index.nprobe == result.nprobe
    assert "even with nprobe=8" in caplog.text
    with pytest.raises(ValueError, match="only IVF"):
        tune_nprobe(VectorIndex.build(emb, kind="flat", gpu=False), held_out)


@pytest.mark.parametrize("kind", ["flat", "ivf", "ivfpq"])
def test_save_and_memory_mapped_load_give_identical_results(kind, tmp_path):
    emb, q = clustered(3000, 32), clustered(20, 32, seed=5)
    params = {"flat": {}, "ivf": {"nlist": 16, "nprobe": 4}, "ivfpq": {"nlist": 16, "nprobe": 4, "m": 8}}[kind]
    index = VectorIndex.build(emb, kind=kind, gpu=False, **params)
    size = index.save(tmp_path / "x.faiss")
    assert size == (tmp_path / "x.faiss").stat().st_size and not list(tmp_path.glob(".*tmp"))
    loaded = VectorIndex.load(tmp_path / "x.faiss", gpu=False)  # kind read from the file
    assert loaded.mmap and loaded.kind == kind and loaded.ntotal == 3000
    if kind != "flat":
        assert loaded.nprobe == 4 and loaded.params["nlist"] == 16
    for a, b in zip(loaded.search(q, 10), index.search(q, 10)):
        np.testing.assert_array_equal(a, b)
    copy = VectorIndex.load(tmp_path / "x.faiss", gpu=False, mmap=False, params={"nprobe": 16})
    assert not copy.mmap and (kind == "flat" or copy.nprobe == 16)


def test_memory_mapped_index_survives_the_file_being_replaced(tmp_path):
    emb, q = clustered(2000, 32), clustered(10, 32, seed=2)
    index = VectorIndex.build(emb, kind="ivf", nlist=8, nprobe=8, gpu=False)
    index.save(tmp_path / "x.faiss")
    loaded = VectorIndex.load(tmp_path / "x.faiss", gpu=False)
    expected = loaded.search(q, 5)
    VectorIndex.build(clustered(500, 32, seed=9), kind="flat", gpu=False).save(tmp_path / "x.faiss")  # rebuilt
    np.testing.assert_array_equal(loaded.search(q, 5)[1], expected[1])


def test_unreadable_index_file_is_a_cache_error(tmp_path):
    from kgemo.errors import CacheError

    (tmp_path / "bad.faiss").write_bytes(b"not an index")
    with pytest.raises(CacheError, match="cannot be read"):
        VectorIndex.load(tmp_path / "bad.faiss", gpu=False)


def test_atomic_retriever_memory_maps_its_saved_index(tiny_encoder):
    from kgemo.knowledge import AtomicRetriever, AtomicTable

    table = AtomicTable.from_tuples([(f"PersonX does thing {i}", "xReact", f"feels {i % 7}") for i in range(60)])
    first = AtomicRetriever(table, encoder=tiny_encoder, index="ivf", nlist=4)
    hits = first.search_heads(["PersonX does thing 3"], 3)
    assert not first.index.mmap  # built in this process
    again = AtomicRetriever(table, encoder=tiny_encoder, index="ivf", nlist=4)
    assert again.index.mmap and again.index.kind == "ivf"
    for a, b in zip(again.search_heads(["PersonX does thing 3"], 3), hits):
        np.testing.assert_array_equal(a, b)


def test_ivf_indexes_can_share_one_trained_coarse_quantizer():
    import faiss

    emb, q = clustered(3000, 32), clustered(20, 32, seed=4)
    first = VectorIndex.build(emb, kind="ivf", nlist=16, nprobe=4, gpu=False)
    pq = VectorIndex.build(emb, kind="ivfpq", m=8, nprobe=4, quantizer=first, gpu=False)
    assert pq.params["nlist"] == 16
    a, b = (faiss.extract_index_ivf(i._cpu_index).quantizer for i in (first, pq))
    np.testing.assert_array_equal(a.reconstruct_n(0, 16), b.reconstruct_n(0, 16))  # same lists, no new k-means
    again = VectorIndex.build(emb, kind="ivf", nprobe=4, quantizer=first, gpu=False)
    for x, y in zip(again.search(q, 5), first.search(q, 5)):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="not with opq"):
        VectorIndex.build(emb, kind="ivfpq", m=8, opq=True, quantizer=first, gpu=False)


def test_tune_nprobe_stops_at_max_nprobe():
    emb, held_out = clustered(3000, 32), clustered(100, 32, seed=8)
    index = VectorIndex.build(emb, kind="ivf", nlist=64, gpu=False)
    result = tune_nprobe(index, held_out, 1.01, max_nprobe=4)  # unreachable: stops at 4
    assert not result.reached and max(p for p, _, _ in result.curve) == 4


def test_rerank_from_memory_mapped_vectors_lifts_ivfpq_recall(tmp_path):
    emb, held_out = clustered(4000, 32), clustered(100, 32, seed=6)
    np.save(tmp_path / "emb.npy", emb)
    mapped = np.load(tmp_path / "emb.npy", mmap_mode="r")
    exact = brute_force_search(emb, held_out, 10)
    index = VectorIndex.build(mapped, kind="ivfpq", nlist=8, nprobe=8, m=8, gpu=False)  # coarse 8-byte codes
    plain = recall_at_k(index.search(held_out, 10)[1], exact[1])
    index.refine = 10
    scores, ids = index.search(held_out, 10)
    assert recall_at_k(ids, exact[1]) > max(0.9, plain + 0.2)
    hit = ids == exact[1]  # where the id is right, so is its score (exact, from the float vectors), best first
    np.testing.assert_allclose(scores[hit], exact[0][hit], atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()
    assert VectorIndex.build(emb[:5], kind="ivf", nlist=1, refine=3, gpu=False).search(held_out[:2], 8)[1][
        :, 5:].tolist() == [[-1] * 3] * 2  # fewer vectors than k: padded with -1
    with pytest.raises(ValueError, match="needs the float vectors"):
        VectorIndex.build(emb, kind="ivfpq", nlist=8, m=4, keep_matrix=False, gpu=False).refine = 2


@pytest.mark.parametrize("backend", ["faiss", "torch"])
def test_exact_search_orders_ties_by_id_whatever_the_batch(backend, monkeypatch):
    # Heads 7 and 2 are the same vector and 4 is a hair away: every query must see 2 before 7, and 4 placed by its
    # exact score, alone or in a batch (FAISS's BLAS sums depend on the batch; equal heads tie).
    rng = np.random.default_rng(0)
    m = normalise(rng.normal(size=(40, 16)).astype(np.float32))
    m[7] = m[2]
    m[4] = normalise(m[2] + np.float32(1e-6) * rng.normal(size=16).astype(np.float32)[None])[0]
    if backend == "torch":
        monkeypatch.setattr("kgemo.knowledge.index.faiss_available", lambda: False)
    index = VectorIndex.build(m, kind="flat")
    queries = normalise(np.concatenate([m[[2]] + np.float32(0.01) * rng.normal(size=(1, 16)).astype(np.float32),
                                        rng.normal(size=(20, 16)).astype(np.float32)]))
    scores, ids = index.search(queries, 5)
    alone = np.concatenate([index.search(q[None], 5)[1] for q in queries])
    assert (alone == ids).all()
    assert index.backend == ("torch" if backend == "torch" else "faiss-cpu")
    assert {2, 7} <= set(ids[0])                      # the twin heads are near the first query: both found
    exact = queries.astype(np.float64) @ m.T.astype(np.float64)
    for row, s in zip(ids, exact):
        order = sorted(range(len(m)), key=lambda j: (-s[j], j))[:5]
        assert list(row) == order
    assert scores.dtype == np.float32 and np.allclose(scores, np.take_along_axis(exact, ids, 1))
