"""The ``event`` graph: ATOMIC tails per utterance as typed edges, a topic node, features attached per batch."""
import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from kgemo.data import Conversation, Utterance, label_space
from kgemo.errors import KgemoError
from kgemo.graphs import NodeFeatures, get_builder, load_graphs, save_graphs
from kgemo.knowledge import load_knowledge
from kgemo.pipeline import InputPipeline
from kgemo.graphs import to_networkx
from kgemo.knowledge import AtomicRetriever, AtomicTable

SPACES = {"emotion": label_space("meld", "emotion")}
WIN, LOSE = "PersonX wins the game", "PersonX loses the game"
TUPLES = [
    (WIN, "xReact", "happy"), (WIN, "xReact", "proud"), (WIN, "oReact", "jealous"), (WIN, "xIntent", "to win"),
    (LOSE, "xReact", "sad"), (LOSE, "oReact", "happy"), (LOSE, "xIntent", "to try"),
]


@pytest.fixture
def retriever(tiny_encoder):
    return AtomicRetriever(AtomicTable.from_tuples(TUPLES), encoder=tiny_encoder)


def conv():
    # The utterances are the heads' own texts, so with the hash encoder each finds its head at cosine 1.
    return Conversation("d1", [Utterance(WIN, "Ann", {"emotion": "joy"}), Utterance(LOSE, "Bob", {"emotion": "sadness"}),
                               Utterance("whatever", "Ann")])


def build(retriever, encoder, **params):
    c = conv()
    return get_builder("event", window=1, **params)(c, encoder.encode(c.texts), SPACES, {"atomic": retriever})


def edges(g, rel):
    e = g["event", rel, "utterance"]
    tails = g["event"].tid.tolist()
    return {(tails[s], d): (round(float(sc), 4), int(r))
            for s, d, sc, r in zip(*e.edge_index.tolist(), e.score.tolist(), e.rank.tolist())}


def test_events_link_to_the_utterance_whose_head_they_follow(retriever, tiny_encoder):
    g = build(retriever, tiny_encoder, tails_per_relation=1, relations=["xReact", "oReact"])
    tid = retriever.table.tail_ids(["happy", "proud", "jealous", "sad"]).tolist()
    happy, _, jealous, sad = tid
    x_react, o_react = edges(g, "xReact"), edges(g, "oReact")
    # Best xReact of "wins" is its own first tail (score 1, rank 0); of "loses", "sad".
    assert x_react[(happy, 0)] == (1.0, 0) and x_react[(sad, 1)] == (1.0, 0)
    assert o_react[(jealous, 0)] == (1.0, 0) and o_react[(happy, 1)] == (1.0, 0)
    # "happy" (xReact of utterance 0, oReact of utterance 1) is one event node with two typed edges.
    assert g["event"].tid.tolist().count(happy) == 1
    assert g["event"].num_nodes == len(set(g["event"].tid.tolist())) == 3
    # Every utterance gets k tails per relation, even one far from every head (its nearest head is still nearest).
    assert sorted(d for _, d in x_react) == [0, 1, 2]
    assert ("event", "xIntent", "utterance") not in g.edge_types


def test_k_ranks_and_relations(retriever, tiny_encoder):
    g = build(retriever, tiny_encoder, tails_per_relation=2, relations=["xReact"])
    happy, proud = retriever.table.tail_ids(["happy", "proud"]).tolist()
    e = edges(g, "xReact")
    assert e[(happy, 0)][1] == 0 and e[(proud, 0)][1] == 1
    assert g.edge_types.count(("event", "xReact", "utterance")) == 1
    assert set(get_builder("event").settings.relations) == {"xIntent", "xEffect", "xReact", "oEffect", "oReact"}


def test_topic_node_is_the_mean_feature_linked_to_every_utterance(retriever, tiny_encoder):
    g = build(retriever, tiny_encoder)
    feats = tiny_encoder.encode(conv().texts)
    assert torch.allclose(g["topic"].x, torch.from_numpy(feats.mean(0, keepdims=True)))
    assert g["topic", "about", "utterance"].edge_index.tolist() == [[0, 0, 0], [0, 1, 2]]
    # The conversation part is the conversation builder's.
    assert g["utterance"].y_emotion.tolist() == [SPACES["emotion"].index("joy"), SPACES["emotion"].index("sadness"), -1]


def test_errors_say_what_is_missing(retriever, tiny_encoder):
    c = conv()
    with pytest.raises(KgemoError, match="needs knowledge=\\{'atomic'"):
        get_builder("event")(c, tiny_encoder.encode(c.texts), SPACES)
    with pytest.raises(KgemoError, match="dialogue d1: 8-d utterance features cannot query ATOMIC heads embedded by "
                                         "tiny-hash-16"):
        get_builder("event")(c, np.zeros((3, 8), np.float32), SPACES, {"atomic": retriever})
    with pytest.raises(KgemoError, match="at least one ATOMIC relation"):
        get_builder("event", relations=[])


def test_tail_features_attach_per_batch_and_survive_the_graph_file(retriever, tiny_encoder, tmp_path):
    g1 = build(retriever, tiny_encoder, tails_per_relation=1)
    save_graphs([g1, g1], tmp_path / "g.safetensors")
    loaded = load_graphs(tmp_path / "g.safetensors")
    assert loaded[0].edge_types == g1.edge_types
    table = retriever.tail_embeddings()
    assert table.shape == (len(retriever.table.tails), tiny_encoder.dim)
    batch = NodeFeatures(table, ("event",), "tid")(Batch.from_data_list(loaded))
    assert torch.equal(batch["event"].x, torch.from_numpy(table)[batch["event"].tid])
    # A tail's feature is its text's embedding (normalised), so "happy" reads as "happy".
    happy = int(retriever.table.tail_ids(["happy"])[0])
    v = tiny_encoder.encode(["happy"])[0]
    np.testing.assert_allclose(table[happy], v / np.linalg.norm(v), rtol=1e-5)


def test_networkx_export_names_relations(retriever, tiny_encoder):
    g = build(retriever, tiny_encoder, tails_per_relation=1, relations=["xReact"])
    nxg = to_networkx(g)
    types = {d["type"] for _, _, d in nxg.edges(data=True)}
    assert {"xReact", "about", "context", "speaks"} <= types
    assert all("tid" in nxg.nodes[n] for n in nxg.nodes if n[0] == "event")


def test_pipeline_loads_atomic_with_its_encoder_and_caches_graphs(retriever, tiny_encoder, tmp_path, monkeypatch):
    path = retriever.table.save(tmp_path / "atomic")
    knowledge = load_knowledge({"atomic": str(path)}, tiny_encoder)
    assert knowledge["atomic"].encoder is tiny_encoder
    pipe = InputPipeline(get_builder("event", tails_per_relation=1), tiny_encoder, knowledge, {"atomic": str(path)}, "tiny")
    assert pipe.model_dims() == {"input_dim": 16, "event_dim": 16, "comet_dim": 0}
    assert pipe.spec().knowledge_checksums["atomic"].startswith(retriever.table.checksum)
    first = pipe.graphs([conv()], SPACES, cache_key={"files": "x"})
    # The second call reads the cache: searching ATOMIC again would be a bug.
    monkeypatch.setattr(AtomicRetriever, "search_vectors", lambda *a, **k: pytest.fail("searched again"))
    second = pipe.graphs([conv()], SPACES, cache_key={"files": "x"})
    assert torch.equal(first[0]["event"].tid, second[0]["event"].tid)
    batch = pipe.transform(Batch.from_data_list(second))
    assert batch["event"].x.shape == (second[0]["event"].num_nodes, 16)


def test_annotator_reuses_the_event_graphs_retriever(retriever, tiny_encoder, tmp_path):
    from kgemo.annotate import Annotator
    from kgemo.models import NoKnowledge, NoKnowledgeConfig

    path = str(retriever.table.save(tmp_path / "atomic"))
    pipe = InputPipeline(get_builder("event", tails_per_relation=1), tiny_encoder, load_knowledge({"atomic": path}, tiny_encoder),
                         {"atomic": path}, "tiny")
    model = NoKnowledge(NoKnowledgeConfig(input_dim=16, hidden=8, heads=2, context_layers=1), SPACES)
    # A model that does not read events shows retrieved ones only above a similarity; -1 shows them all.
    ann = Annotator(model, pipe, events=path, device="cpu", min_event_similarity=-1)
    assert ann.events is pipe.knowledge["atomic"]  # one table and index in memory, not two
    res = ann.annotate([(u.speaker, u.text) for u in conv()])
    assert [(e.relation, e.tail) for e in res[0].events] == [("xReact", "happy"), ("oReact", "jealous"),
                                                             ("xIntent", "to win")]


# -- a hand-made 3-speaker conversation -------------------------------------------------------------------------
class FakeComet:
    """COMET's interface with fixed answers: tails "<relation> of <text>" and states [text index, relation index];
    counts what it was asked."""

    id = checksum = "fake-comet"
    dim = 2
    source = "comet"

    def __init__(self):
        self.generated, self.stated = [], []

    def generate(self, texts, relations, k=3, num_beams=5):
        self.generated += list(texts)
        return [{r: [f"{r} of {t}", f"{r} again"][:k] for r in relations} for t in texts]

    def relation_states(self, texts, relations, pool="last"):
        self.stated += list(texts)
        return np.array([[[i, j] for j, _ in enumerate(relations)] for i, _ in enumerate(texts)], np.float32)


def three_speakers():
    return Conversation("d3", [Utterance(WIN, "Ann"), Utterance(LOSE, "Bob"), Utterance(WIN, "Cy"),
                               Utterance(LOSE, "Ann")])


def test_three_speakers_relation_edges_and_listeners(retriever, tiny_encoder):
    c = three_speakers()
    g = get_builder("event", window=1, tails_per_relation=1, relations=["xReact", "oReact", "xIntent"])(
        c, tiny_encoder.encode(c.texts), SPACES, {"atomic": retriever})
    happy, sad, jealous, to_win, to_try = retriever.table.tail_ids(["happy", "sad", "jealous", "to win", "to try"]
                                                                   ).tolist()
    # Each relation's edges go to the utterance whose head they follow: WIN at turns 0 and 2, LOSE at 1 and 3.
    assert {d: t for (t, d) in edges(g, "xReact")} == {0: happy, 1: sad, 2: happy, 3: sad}
    assert {d: t for (t, d) in edges(g, "oReact")} == {0: jealous, 1: happy, 2: jealous, 3: happy}
    assert {d: t for (t, d) in edges(g, "xIntent")} == {0: to_win, 1: to_try, 2: to_win, 3: to_try}
    # The head each edge came from.
    e = g["event", "xReact", "utterance"]
    assert [retriever.table.heads[h] for h in e.head.tolist()] == [WIN, LOSE, WIN, LOSE]
    # Speakers Ann=0, Bob=1, Cy=2: at each turn the two others listen (Cy listens at turn 0 before speaking).
    assert g["speaker", "speaks", "utterance"].edge_index.T.tolist() == [[0, 0], [1, 1], [2, 2], [0, 3]]
    listens = {tuple(p) for p in g["speaker", "listens", "utterance"].edge_index.T.tolist()}
    assert listens == {(1, 0), (2, 0), (0, 1), (2, 1), (0, 2), (1, 2), (1, 3), (2, 3)}


def test_generated_tails_and_states_from_a_comet_provider(retriever, tiny_encoder):
    c = three_speakers()
    comet = FakeComet()
    knowledge = {"atomic": retriever, "comet": comet, "text_vectors": tiny_encoder.encode}
    g = get_builder("event", tails_per_relation=2, relations=["xReact", "oReact"], generated=True, states=True)(
        c, tiny_encoder.encode(c.texts), SPACES, knowledge)
    # One generated node per distinct tail of the conversation, its stored feature the normalised text embedding.
    texts = sorted({f"{r} of {t}" for t in c.texts for r in ("xReact", "oReact")} | {"xReact again", "oReact again"})
    assert g["generated"].num_nodes == len(texts) == 6
    v = tiny_encoder.encode(texts)
    np.testing.assert_allclose(g["generated"].x.numpy(), v / np.linalg.norm(v, axis=1, keepdims=True), rtol=1e-5)
    e = g["generated", "oReact", "utterance"]
    got = {(texts[s], d, r) for s, d, r in zip(*e.edge_index.tolist(), e.rank.tolist())}
    assert got == {(f"oReact of {t}", i, 0) for i, t in enumerate(c.texts)} | {("oReact again", i, 1) for i in range(4)}
    assert e.score.tolist() == [1.0, 0.5] * 4
    # Relation states per utterance, relations in settings order; retrieval is there too.
    assert g["utterance"].relation_state.shape == (4, 2, 2)
    assert g["utterance"].relation_state[3, 1].tolist() == [3.0, 1.0]
    assert g["event", "xReact", "utterance"].edge_index.size(1) == 8
    # Only states, no retrieval: no event nodes needed.
    g2 = get_builder("event", retrieved=False, states=True)(c, tiny_encoder.encode(c.texts), SPACES, knowledge)
    assert "event" not in g2.node_types and g2["utterance"].relation_state.shape == (4, 5, 2)


def test_generation_needs_a_provider_and_text_vectors(retriever, tiny_encoder):
    c = three_speakers()
    feats = tiny_encoder.encode(c.texts)
    with pytest.raises(KgemoError, match="needs knowledge=\\{'comet'"):
        get_builder("event", generated=True)(c, feats, SPACES, {"atomic": retriever})
    with pytest.raises(KgemoError, match="text_vectors"):
        get_builder("event", generated=True)(c, feats, SPACES, {"atomic": retriever, "comet": FakeComet()})
    with pytest.raises(KgemoError, match="at least one of retrieved, generated or states"):
        get_builder("event", retrieved=False)


def test_pipeline_passes_comet_and_text_vectors_and_caches_generations(retriever, tiny_encoder, tmp_path,
                                                                      monkeypatch):
    comet = FakeComet()
    pipe = InputPipeline(get_builder("event", tails_per_relation=1, generated=True, states=True), tiny_encoder,
                         {"atomic": retriever, "comet": comet}, {"atomic": "custom", "comet": "custom"}, "tiny")
    assert pipe.model_dims() == {"input_dim": 16, "event_dim": 16, "comet_dim": 2}
    assert set(pipe.builder_knowledge()) == {"atomic", "comet", "text_vectors"}
    assert pipe.spec().knowledge_checksums["comet"] == "fake-comet"
    first = pipe.graphs([three_speakers()], SPACES, cache_key={"files": "x"})
    assert comet.generated == comet.stated == three_speakers().texts
    # A second pass over the same data reads the graph cache: no retrieval, no generation.
    monkeypatch.setattr(AtomicRetriever, "search_vectors", lambda *a, **k: pytest.fail("searched again"))
    second = pipe.graphs([three_speakers()], SPACES, cache_key={"files": "x"})
    assert len(comet.generated) == len(comet.stated) == 4
    assert torch.equal(first[0]["generated"].x, second[0]["generated"].x)
    batch = pipe.transform(Batch.from_data_list(second))
    assert batch["event"].x.shape[1] == batch["generated"].x.shape[1] == 16
