import logging

import numpy as np
import pytest

from kgemo.errors import CacheError, ChecksumError, DataNotFoundError
from kgemo.knowledge import AtomicRetriever, AtomicTable, ConceptNetKB, load_knowledge
from kgemo.knowledge import build as B
from kgemo.knowledge import readers


@pytest.fixture
def counting_readers(monkeypatch):
    """Count how many times each reader runs (a skipped part never opens its file)."""
    calls = {}

    def wrap(name, fn):
        def counted(*a, **kw):
            calls[name] = calls.get(name, 0) + 1
            return fn(*a, **kw)
        return counted

    for name, fn in list(readers.READERS.items()):
        monkeypatch.setitem(readers.READERS, name, wrap(name, fn))
    return calls


def test_pinned_checksum_mismatch_is_refused_unless_no_verify(kb_sources, tmp_path):
    with pytest.raises(ChecksumError, match=r"train100k\.txt\.gz: sha256 .* does not match .*--no-verify"):
        B.build_conceptnet(tmp_path / "cn", source=kb_sources / "train100k.txt.gz", vad_source=kb_sources)
    rep = B.build_conceptnet(tmp_path / "cn", source=kb_sources / "train100k.txt.gz", vad_source=kb_sources,
                             no_verify=True)
    assert rep["manifest"] == "conceptnet-ckbc"
    kb = ConceptNetKB.load(tmp_path / "cn")
    assert kb.concepts[kb.lookup(["dogs"])[0]] == "dog"
    # NotDesires is excluded by the CKBC manifest.
    assert "NotDesires" not in kb.relations


def test_full_conceptnet_dump_streamed_from_gzip(kb_sources, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        rep = B.build_conceptnet(tmp_path / "cn", source=kb_sources, variant="auto", vad_source=kb_sources,
                                 no_verify=True)
    assert rep["manifest"] == "conceptnet-5.7"
    s = rep["stats"]
    # 8 English pairs read; Antonym excluded, RelatedTo 0.5 below weight 1 → 6 kept.
    assert s["edges_in"] == 8 and s["edges_kept"] == 6
    # Bad rows reported with file:line, in the log and in the report.
    bad = {b["file"].rsplit("/", 1)[1]: b for b in rep["bad_rows"]}
    cn = bad["conceptnet-assertions-5.7.0.csv.gz"]
    assert cn["bad"] == 2 and cn["rows"] == 12
    assert ".csv.gz:9: no numeric weight" in cn["examples"][0]
    assert ".csv.gz:10: expected 5 tab-separated columns, found 4" in cn["examples"][1]
    assert bad["NRC-VAD-Lexicon.txt"]["examples"][0].endswith("NRC-VAD-Lexicon.txt:11: non-numeric score in "
                                                              "['x', '0.2', '0.3']")
    assert ".csv.gz:9: no numeric weight" in caplog.text
    assert "no pinned sha256" in caplog.text


def test_rerun_skips_verified_parts(kb_sources, tmp_path, counting_readers):
    args = dict(source=kb_sources / "train100k.txt.gz", vad_source=kb_sources, no_verify=True)
    first = B.build_conceptnet(tmp_path / "cn", **args)
    assert sorted(first["built"]) == ["edges:train100k.txt.gz", "kb", "vad:NRC-VAD-Lexicon.txt"]
    again = B.build_conceptnet(tmp_path / "cn", **args)
    assert again["built"] == [] and len(again["skipped"]) == 3
    assert counting_readers == {"ckbc": 1, "nrc-vad": 1}
    # A changed parameter rebuilds only the assembly, not the parsing.
    third = B.build_conceptnet(tmp_path / "cn", max_neighbours=1, **args)
    assert third["built"] == ["kb"]
    assert ConceptNetKB.load(tmp_path / "cn").neighbours(["dog"], 5).mask.sum() == 1


def test_interrupted_build_resumes_from_finished_parts(kb_sources, tmp_path, monkeypatch, counting_readers):
    args = dict(source=kb_sources / "train100k.txt.gz", vad_source=kb_sources, no_verify=True)

    def boom(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(B, "assemble_conceptnet", boom)
    with pytest.raises(KeyboardInterrupt):
        B.build_conceptnet(tmp_path / "cn", **args)
    assert not (tmp_path / "cn" / "conceptnet.npz").exists()   # nothing half-written under the final name
    monkeypatch.undo()
    monkeypatch.setitem(readers.READERS, "ckbc", lambda *a, **k: pytest.fail("finished part re-parsed"))
    rep = B.build_conceptnet(tmp_path / "cn", **args)
    assert rep["built"] == ["kb"] and sorted(rep["skipped"]) == ["edges:train100k.txt.gz",
                                                                 "vad:NRC-VAD-Lexicon.txt"]
    assert len(ConceptNetKB.load(tmp_path / "cn")) > 0


def test_corrupt_cache_is_detected_and_rebuilt(kb_sources, tmp_path, caplog):
    out = tmp_path / "cn"
    B.build_conceptnet(out, source=kb_sources / "train100k.txt.gz", vad_source=kb_sources, no_verify=True)
    good = ConceptNetKB.load(out)
    npz = out / "conceptnet.npz"
    data = bytearray(npz.read_bytes())
    data[100] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="corrupt"):
        ConceptNetKB.load(out)             # the KB class reports a corrupt cache; it knows nothing of builders
    with caplog.at_level(logging.WARNING):
        kb = load_knowledge({"conceptnet": str(out)})["conceptnet"]  # one level up: logged, rebuilt, reloaded
    assert "corrupt" in caplog.text and "rebuilding" in caplog.text
    assert kb.checksum == good.checksum
    # The builder itself also refuses a corrupt part and rebuilds only that part.
    part = next((out / "parts").glob("edges-*.npz"))
    part.write_bytes(part.read_bytes()[:-10])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        rep = B.build_conceptnet(out, source=kb_sources / "train100k.txt.gz", vad_source=kb_sources,
                                 no_verify=True)
    assert rep["built"] == ["edges:train100k.txt.gz"] and "is corrupt (sha256 mismatch)" in caplog.text


def test_stale_input_rebuilds(kb_sources, tmp_path, caplog):
    out = tmp_path / "cn"
    args = dict(source=kb_sources / "train100k.txt.gz", vad_source=kb_sources, no_verify=True)
    B.build_conceptnet(out, **args)
    (kb_sources / "NRC-VAD-Lexicon.txt").write_text("Word\tValence\tArousal\tDominance\ndog\t0.1\t0.1\t0.1\n")
    with caplog.at_level(logging.WARNING):
        rep = B.build_conceptnet(out, **args)
    assert sorted(rep["built"]) == ["kb", "vad:NRC-VAD-Lexicon.txt"] and "stale" in caplog.text
    kb = ConceptNetKB.load(out)
    np.testing.assert_allclose(kb.vad([kb.concept_id("dog")]), [[0.1, 0.1, 0.1]])


def test_missing_source_names_the_url(tmp_path):
    with pytest.raises(DataNotFoundError, match="train100k.txt.gz: https://"):
        B.build_conceptnet(tmp_path / "cn", source=tmp_path, variant="ckbc")


def test_atomic_build_table_embeddings_index_and_resume(kb_sources, tmp_path, tiny_encoder, monkeypatch):
    out = tmp_path / "atomic"
    # Interrupt the encoding after the first shard: finished shards survive.
    real = tiny_encoder.encode

    def flaky(texts, **kw):
        if tiny_encoder.calls >= 1:
            raise KeyboardInterrupt
        return real(texts, **kw)

    monkeypatch.setattr(tiny_encoder, "encode", flaky)
    with pytest.raises(KeyboardInterrupt):
        B.build_atomic(out, source=kb_sources, no_verify=True, encoder=tiny_encoder, shard_size=2)
    monkeypatch.setattr(tiny_encoder, "encode", real)
    done_before = tiny_encoder.encoded
    rep = B.build_atomic(out, source=kb_sources, no_verify=True, encoder=tiny_encoder, shard_size=2)
    table = AtomicTable.load(out)
    n_heads = len(table.heads)
    assert rep["stats"]["heads"] == n_heads == 5
    # Only the shards not finished before the interruption were encoded.
    assert tiny_encoder.encoded - done_before == n_heads - 2
    bad = {b["file"].rsplit("/", 1)[1]: b["bad"] for b in rep["bad_rows"]}
    assert bad == {"v4_atomic_dev.csv": 2, "atomic2020_system_eval_test5000.tsv": 1}
    again = B.build_atomic(out, source=kb_sources, no_verify=True, encoder=tiny_encoder, shard_size=2)
    assert again["built"] == []
    r = AtomicRetriever.load(out, encoder=tiny_encoder)
    (hits,) = r.search(["PersonX adopts a puppy"], k=2, relations=("xReact",))
    assert [h.tail for h in hits["xReact"]] == ["happy", "excited"]  # source order ("none" dropped)
    assert hits["xReact"][0].score == pytest.approx(1.0, abs=1e-5)
