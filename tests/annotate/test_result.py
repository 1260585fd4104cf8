"""Result objects: JSON round trip, RDF (parsed back with rdflib), networkx export, table."""
import json

import pytest
from annotate_data import CONVERSATION

from kgemo.annotate import AnnotationResult, ConceptEvidence, EventEvidence, UtteranceAnnotation, format_table


@pytest.fixture
def result(ket_annotator):
    return ket_annotator.annotate(CONVERSATION)


def test_json_round_trip_is_exact(result):
    text = result.to_json()
    back = AnnotationResult.from_json(text)
    assert back == result  # the graph is not compared (nor serialised)
    assert back.to_json() == text
    d = json.loads(text)
    assert set(d) == {"conversation_id", "model", "tasks", "utterances"}
    u = d["utterances"][1]
    assert set(u) == {"index", "speaker", "text", "labels", "probabilities", "concepts", "events"}
    assert set(u["concepts"][0]) == {"concept", "token", "relation", "direction", "weight", "attention",
                                     "token_weight", "confidence", "vad", "vad_known", "source", "effect"}
    assert set(d["utterances"][0]["events"][0]) == {"head", "relation", "tail", "score", "source", "provider"}


def test_rdf_parses_and_holds_labels_and_evidence(result):
    from rdflib import Graph, Literal, URIRef
    from rdflib.namespace import RDF

    from kgemo.knowledge.rdf import CN, KG

    ttl = result.to_rdf()
    g = Graph().parse(data=ttl, format="turtle")
    anns = sorted(g.subjects(RDF.type, KG.Annotation), key=str)
    assert [str(a) for a in anns] == [f"urn:kgemo:annotation:input%2F{i}" for i in range(4)]
    first = URIRef("urn:kgemo:annotation:input%2F0")
    assert g.value(first, KG.emotion) == Literal(result[0].emotion)
    assert g.value(first, KG.text) == Literal("I got the job")
    assert int(g.value(first, KG.position)) == 0
    assert float(g.value(first, KG.emotionProbability)) == pytest.approx(result[0].probability())
    n_evidence = sum(len(u.concepts) + len(u.events) for u in result)
    assert len(list(g.triples((None, KG.evidence, None)))) == n_evidence
    # ConceptNet statements use ConceptNet IRIs and keep their direction; concepts carry VAD when known.
    joy = next(c for c in result[1].concepts if c.concept == "joy")
    assert (CN["happy"], URIRef("http://conceptnet.io/r/RelatedTo"), CN["joy"]) in g
    assert float(g.value(CN["joy"], KG.valence)) == pytest.approx(joy.vad[0])
    # The attention weight is on the evidence node.
    weights = sorted(float(o) for o in g.objects(None, KG.attention))
    assert weights == pytest.approx(sorted(c.weight for u in result for c in u.concepts))


def test_networkx_has_readable_labels_and_weights(result):
    g = result.to_networkx()
    utt = g.nodes[("utterance", 0)]
    assert utt["label"] == "I got the job" and utt["emotion"] == result[0].emotion
    assert utt["emotion_probability"] == result[0].probability()
    labels = {d["label"] for n, d in g.nodes(data=True) if d["node_type"] == "concept"}
    assert {"work", "employment", "pet"} <= labels
    speakers = {d["label"] for n, d in g.nodes(data=True) if d["node_type"] == "speaker"}
    assert speakers == {"Anna", "Ben"}
    linked = [d for _, _, d in g.edges(data=True) if d["type"] == "linked"]
    assert linked and all(0 <= d["attention"] <= 1 for d in linked)
    tokens = [d for _, d in g.nodes(data=True) if d["node_type"] == "token"]
    assert all("token_weight" in d for d in tokens)
    events = [(u, v, d) for u, v, d in g.edges(data=True) if d["type"] in ("xReact", "oReact", "xIntent")]
    assert len(events) == sum(len(u.events) for u in result)
    assert g.nodes[events[0][1]]["label"] == result[0].events[0].tail


def test_networkx_after_json_round_trip_is_the_evidence_graph(result):
    back = AnnotationResult.from_json(result.to_json())
    g = back.to_networkx()
    assert g.nodes[("utterance", 1)]["label"] == "my dog is happy too"
    assert ("concept", result[1].concepts[0].concept) in g
    w = [d["weight"] for _, v, d in g.edges(data=True) if v == ("utterance", 1)]
    assert sum(w) == pytest.approx(sum(c.weight for c in result[1].concepts), abs=1e-6)


def test_dataclasses_round_trip_alone():
    c = ConceptEvidence("joy", "happy", "RelatedTo", "out", 0.5, 0.6, 0.8, 1.0, (0.9, 0.8, 0.7), True)
    assert ConceptEvidence.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert (c.head, c.tail) == ("happy", "joy")
    e = EventEvidence("PersonX wins", "xReact", "proud", 0.8)
    assert EventEvidence.from_dict(e.to_dict()) == e
    ev = c.to_evidence(3)
    assert (ev.source, ev.head, ev.relation, ev.tail, ev.attention, ev.utterance, ev.token) == \
        ("conceptnet", "happy", "RelatedTo", "joy", 0.5, 3, "happy")
    u = UtteranceAnnotation(0, "A", "hi", {"emotion": "joy"}, {"emotion": {"joy": 0.7, "neutral": 0.3}}, [c], [e])
    assert UtteranceAnnotation.from_dict(u.to_dict()) == u
    assert u.emotion == "joy" and u.probability() == 0.7 and u.sentiment is None
    assert u.top_concepts(3) == [("joy", 0.5)] and u.top_events(1) == [("xReact", "proud", 0.8)]


def test_table_fits_the_width_and_wraps(result):
    long = AnnotationResult("x", [UtteranceAnnotation(0, "A very long speaker name", "word " * 60,
                                                       {"emotion": "joy"}, {"emotion": {"joy": 1.0}})],
                            tasks=["emotion"])
    for width in (80, 120):
        text = format_table([result, long], width=width)
        assert max(len(line) for line in text.splitlines()) <= width
        assert "conversation input" in text and "conversation x" in text
    lines = format_table([long], width=80).splitlines()
    assert len(lines) > 4  # the utterance wrapped over several lines


def test_table_drops_evidence_columns_without_evidence(joint_model_dir, tiny_encoder):
    from kgemo.annotate import Annotator

    ann = Annotator.from_pretrained(joint_model_dir, device="cpu", encoder=tiny_encoder, events=None)
    header = ann.annotate(CONVERSATION).to_table(width=100).splitlines()[0].split()
    assert header == ["#", "speaker", "utterance", "emotion", "sentiment"]


def test_table_shows_occlusion_effects_and_hides_concepts_without_effect():
    def concept(name, weight, effect):
        return ConceptEvidence(name, "happy", "RelatedTo", "out", weight, weight, 1.0, 1.0, (0.5, 0.5, 0.5),
                               True, effect=effect)

    u = UtteranceAnnotation(0, "A", "I am happy", {"emotion": "joy"}, {"emotion": {"joy": 0.9, "neutral": 0.1}},
                            [concept("joy", 0.2, 0.31), concept("smile", 0.5, 0.004), concept("party", 0.3, -0.02)])
    table = format_table([AnnotationResult("x", [u], tasks=["emotion"])], width=120)
    assert "concepts (effect)" in table and "joy +0.31" in table
    assert "smile" not in table and "party" not in table   # no effect (or the other way): not evidence
    attention = [concept("joy", 0.2, None), concept("smile", 0.5, None)]
    u2 = UtteranceAnnotation(0, "A", "I am happy", {"emotion": "joy"}, {"emotion": {"joy": 0.9}}, attention)
    table = format_table([AnnotationResult("x", [u2], tasks=["emotion"])], width=120)
    assert "concepts (weight)" in table and "joy 0.20" in table and "smile 0.50" in table
