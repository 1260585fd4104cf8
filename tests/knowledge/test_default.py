"""The bundled default KB, and builds from the real sources (integration, skipped without the data)."""
import numpy as np
import pytest

from kgemo.knowledge import AtomicRetriever, AtomicTable, ConceptNetKB, default_kb_dir
from kgemo.knowledge import build as B


def test_default_kb_is_small_licensed_and_loads():
    folder = default_kb_dir()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 5 * 2**20
    lic = (folder / "LICENSE.md").read_text()
    for needle in ("CC BY-SA 4.0", "NRC-VAD", "CC BY 4.0"):
        assert needle in lic
    kb = ConceptNetKB.load("default")
    assert len(kb) > 30000
    ids = kb.lookup(kb.tokenize("I lost my puppy and I am crying"))
    assert [kb.concepts[i] for i in ids if i >= 0] == ["lose", "puppy", "cry"]
    nb = kb.neighbours(ids, 5)
    assert nb.mask[ids >= 0].any(axis=1).all()
    assert (np.diff(nb.weight, axis=1)[nb.mask[:, 1:]] <= 0).all()   # sorted by weight
    assert kb.vad_known(ids[ids >= 0]).all()


def test_default_atomic_table_with_another_encoder(tiny_encoder):
    r = AtomicRetriever.load("default", encoder=tiny_encoder)
    assert len(r.heads) > 5000 and "xReact" in r.relations
    head = r.heads[100]
    (res,) = r.search([head], k=1, relations=r.relations)
    assert any(hits and hits[0].head == head for hits in res.values())


@pytest.mark.slow
def test_default_atomic_uses_packaged_embeddings_with_the_default_encoder(monkeypatch):
    from kgemo.knowledge import atomic

    monkeypatch.setattr(atomic, "encode_in_shards", lambda *a, **k: pytest.fail("heads re-encoded"))
    r = AtomicRetriever.load("default")
    (res,) = r.search(["My dog ran away and I can't find him"], k=3)
    assert all(len(res[rel]) == 3 for rel in ("xIntent", "xReact", "oReact"))


@pytest.mark.integration
@pytest.mark.slow
def test_build_from_the_real_sources(data_root, tmp_path):
    rep = B.build_conceptnet(tmp_path / "cn", variant="ckbc")
    s = rep["stats"]
    assert s["edges_in"] == 100000 and rep["bad_rows"] == []
    assert 90000 < s["edges_kept"] < 100000 and s["vad_coverage_with_edges"] > 0.85
    again = B.build_conceptnet(tmp_path / "cn", variant="ckbc")
    assert again["built"] == []
    at = B.build_atomic(tmp_path / "at", encoder=None)
    assert at["stats"]["heads"] > 5000 and at["stats"]["tuples"] > 140000 and at["bad_rows"] == []
    table = AtomicTable.load(tmp_path / "at")
    # The bundled ATOMIC slice is exactly this table (same sources, same code).
    assert table.checksum == AtomicTable.load("default").checksum
