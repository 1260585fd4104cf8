import numpy as np
import pytest

from kgemo.errors import DataFormatError
from kgemo.knowledge import ConceptNetKB, Evidence, Triple
from kgemo.knowledge.rdf import evidence_to_graph, load_rdf_kb, read_rdf_triples, to_graph, to_turtle

EDGES = [("IsA", "dog", "animal", 2.0), ("IsA", "puppy", "dog", 3.0), ("Desires", "dog", "ice_cream", 1.5),
         ("Causes", "ice_cream", "happy", 2.5), ("AtLocation", "dog", "kennel", 1.0)]


def test_kb_round_trip_through_turtle(vad_lexicon, tmp_path):
    kb = ConceptNetKB.from_edges(EDGES, vad=vad_lexicon)
    ttl = to_turtle(kb)
    assert "cn:ice_cream" in ttl and "kg:weight" in ttl and "kg:valence" in ttl
    path = tmp_path / "kb.ttl"
    path.write_text(ttl)
    back = load_rdf_kb(path, vad=vad_lexicon)
    strip = lambda ts: sorted((t.head, t.relation, t.tail, round(t.weight, 6)) for t in ts)  # noqa: E731
    assert strip(back.triples()) == strip(kb.triples()) == sorted(
        (h, r, t, w) for r, h, t, w in EDGES)
    for c in ("dog", "ice_cream", "happy"):
        np.testing.assert_allclose(back.vad([back.concept_id(c)]), kb.vad([kb.concept_id(c)]))
    # Saved as a folder, the imported KB loads like any other cache.
    back.save(tmp_path / "user_kb")
    assert ConceptNetKB.load(tmp_path / "user_kb").checksum == back.checksum


def test_slice_export_is_the_neighbourhood(vad_lexicon):
    kb = ConceptNetKB.from_edges(EDGES, vad=vad_lexicon)
    g = to_graph(kb.triples(kb.lookup(["puppies"]), k=5), kb=kb)
    ttl = g.serialize(format="turtle")
    assert "cn:puppy" in ttl and "cn:dog" in ttl and "cn:kennel" not in ttl


def test_user_rdf_plain_and_reified_triples(fixtures):
    triples = read_rdf_triples(fixtures / "user_kb.ttl")
    assert Triple("umbrella", "usedFor", "rain", 1.0, "rdf") in triples      # rdfs:label names the node
    assert Triple("sunshine", "causes", "happiness", 2.5, "rdf") in triples  # rdf:Statement weight
    assert Triple("puppy", "isA", "young_dog", 1.0, "rdf") in triples        # literal object
    assert len(triples) == 4
    kb = load_rdf_kb(fixtures / "user_kb.ttl", vad=None)
    nb = kb.neighbours(["sunshine"], 2)
    assert kb.concepts[nb.concept[0, 0]] == "happiness" and nb.weight[0, 0] == 2.5


def test_evidence_graph_keeps_provenance():
    ev = [Evidence("conceptnet", "dog", "IsA", "animal", weight=2.0, attention=0.7, utterance=0, token="dog"),
          Evidence("atomic-retrieval", "PersonX loses the dog", "xReact", "sad", weight=0.83, utterance=1)]
    g = evidence_to_graph(ev, annotation_id="dlg-1", labels={"emotion": "sadness"})
    ttl = g.serialize(format="turtle")
    for needle in ("kg:Annotation", "kg:Evidence", "kg:attention", '"atomic-retrieval"', '"sadness"',
                   "kgrel:xReact", '"PersonX loses the dog"', "cnr:IsA"):
        assert needle in ttl
    assert len(list(g.subjects(predicate=None, object=None))) > 0
    # Evidence given as dicts works too.
    assert len(evidence_to_graph([e.to_dict() for e in ev])) == len(evidence_to_graph(ev))


def test_malformed_rdf_names_the_file(tmp_path):
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix ex: <http://example.org/> .\nex:a ex:b .\n")
    with pytest.raises(DataFormatError, match="bad.ttl: cannot parse as RDF"):
        load_rdf_kb(bad)
