import numpy as np
import pytest
import torch
from fake_kb import CONCEPTS, FakeKB
from torch_geometric.data import Batch

from kgemo.data import Conversation, Utterance, label_space
from kgemo.errors import KgemoError
from kgemo.graphs import ConceptFeatures, get_builder

SPACES = {"emotion": label_space("meld", "emotion")}


def build(texts, **params):
    conv = Conversation("d", [Utterance(t, "AB"[i % 2], {"emotion": "neutral"}) for i, t in enumerate(texts)])
    return get_builder("concept", **params)(conv, np.zeros((len(texts), 4), np.float32), SPACES,
                                            {"conceptnet": FakeKB()})


def test_tokens_concepts_and_edge_attributes():
    g = build(["I am happy with my dog", "so sad"], concepts_per_token=2)
    # Tokens: happy, dog (utterance 0), sad (utterance 1), each with its own concept id.
    assert [CONCEPTS[i] for i in g["token"].kid.tolist()] == ["happy", "dog", "sad"]
    assert g["token", "in", "utterance"].edge_index.tolist() == [[0, 1, 2], [0, 0, 1]]
    # Concepts: joy, smile (from happy), pet, happy (from dog), cry (from sad): unique, sorted ids.
    assert sorted(CONCEPTS[i] for i in g["concept"].kid.tolist()) == ["cry", "happy", "joy", "pet", "smile"]
    link = g["concept", "linked", "token"]
    edges = {(CONCEPTS[g["concept"].kid[c]], CONCEPTS[g["token"].kid[t]]): (w, r)
             for c, t, w, r in zip(link.edge_index[0].tolist(), link.edge_index[1].tolist(), link.weight.tolist(),
                                   link.relation.tolist())}
    # Weights are divided by the token's largest confidence: happy→joy 2.0/2.0, happy→smile 1.0/2.0.
    assert edges[("joy", "happy")] == (pytest.approx(1.0), 0)
    assert edges[("smile", "happy")] == (pytest.approx(0.5), 1)
    assert edges[("pet", "dog")] == (pytest.approx(1.0), 2)
    assert edges[("happy", "dog")] == (pytest.approx(1.0 / 1.5), 0)
    assert edges[("cry", "sad")] == (pytest.approx(1.0), 1)
    assert link.affect.shape == (5,) and ((link.affect >= 0) & (link.affect <= 1)).all()
    assert link.vad_known.tolist().count(False) == 2  # smile, pet have no VAD in the fake lexicon


def test_k_limits_neighbours_and_repeated_words_count_once():
    g = build(["happy happy happy"], concepts_per_token=1)
    assert g["token"].num_nodes == 1
    assert [CONCEPTS[i] for i in g["concept"].kid.tolist()] == ["joy"]  # the strongest neighbour only


def test_the_builder_records_which_utterances_lost_words_to_max_tokens():
    # happy, dog, sad, joy: four distinct content words (the repeat counts once); max_tokens 3 keeps the first three.
    g = build(["happy dog happy sad joy", "happy dog sad", "nothing"], max_tokens=3)
    assert g["utterance"].knowledge_cut.tolist() == [True, False, False]
    assert g["token", "in", "utterance"].edge_index[1].tolist().count(0) == 3


def test_utterances_without_concepts_and_batching_with_features():
    g1, g2 = build(["nothing to see"]), build(["sad dog"])
    assert g1["token"].num_nodes == 0 and g1["concept"].num_nodes == 0
    table = np.eye(len(CONCEPTS), dtype=np.float32)
    batch = ConceptFeatures(table)(Batch.from_data_list([g1, g2]))
    assert torch.equal(batch["token"].x, torch.from_numpy(table)[batch["token"].kid])
    # Edge indices of the second graph are shifted by the batch, and still point at the right tokens.
    link = batch["concept", "linked", "token"]
    assert link.edge_index[1].max() < batch["token"].num_nodes


def test_missing_knowledge_is_a_clear_error():
    conv = Conversation("d", [Utterance("happy", "A")])
    with pytest.raises(KgemoError, match="needs knowledge"):
        get_builder("concept")(conv, np.zeros((1, 4), np.float32), SPACES, {})


def _edges(g):
    link = g["concept", "linked", "token"]
    return {(CONCEPTS[g["concept"].kid[c]], CONCEPTS[g["token"].kid[t]]): (w, bool(s))
            for c, t, w, s in zip(link.edge_index[0].tolist(), link.edge_index[1].tolist(), link.weight.tolist(),
                                  link.is_self.tolist())}


def test_self_concept_keeps_the_word_among_its_candidates():
    g = build(["I am happy"], concepts_per_token=1, self_concept=True)
    # happy's own concept (weight 1, flagged) and its strongest neighbour joy (2.0 / 2.0).
    assert _edges(g) == {("happy", "happy"): (pytest.approx(1.0), True), ("joy", "happy"): (pytest.approx(1.0), False)}
    assert _edges(build(["I am happy"], concepts_per_token=1))[("joy", "happy")][1] is False


def test_relatedness_context_is_the_unit_mean_of_the_utterance_and_its_past_turns():
    from kgemo.graphs.concept_graph import relatedness_context

    x = np.array([[2.0, 0.0], [0.0, 3.0], [0.0, -1.0]], np.float32)
    r = relatedness_context(x, 1)
    # u0: itself; u1: (e1 + e2) / √2; u2: (e2 - e2) = 0 → stays 0 (no direction).
    np.testing.assert_allclose(r, [[1, 0], [np.sqrt(0.5), np.sqrt(0.5)], [0, 0]], atol=1e-6)
    np.testing.assert_allclose(relatedness_context(x, 0), [[1, 0], [0, 1], [0, -1]], atol=1e-6)


def test_score_selection_keeps_the_concepts_related_to_the_conversation():
    # Hand-made 2-d space: the utterance points along x; "smile" lies along x, "joy" along y. By confidence
    # (happy→joy 2.0 > happy→smile 1.0) joy comes first; by relatedness smile does.
    vec = {CONCEPTS.index("joy"): [0.0, 1.0], CONCEPTS.index("smile"): [1.0, 0.0], CONCEPTS.index("cry"): [0.6, 0.8]}
    vectors = lambda ids: np.array([vec.get(int(i), [0.0, 0.0]) for i in ids], np.float32)  # noqa: E731
    conv = Conversation("d", [Utterance("happy", "A"), Utterance("sad", "B")])
    feats = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)

    def build_scored(**params):
        b = get_builder("concept", concepts_per_token=1, selection="score", context_turns=0, **params)
        return _edges(b(conv, feats, {}, {"conceptnet": FakeKB(), "concept_vectors": vectors}))

    assert set(build_scored()) == {("smile", "happy"), ("cry", "sad")}          # cos 1.0 beats 0.0; cry 0.6
    # Weight 1 on confidence: joy = 0 + 1.0, smile = 1 + 0.5 → smile still; weight 3 → joy (0 + 3 > 1 + 1.5).
    assert ("smile", "happy") in build_scored(select_confidence=1.0)
    assert ("joy", "happy") in build_scored(select_confidence=3.0)
    # A threshold drops what is not related enough: cry's cosine 0.6 < 0.7, so "sad" keeps no concept.
    assert set(build_scored(min_score=0.7)) == {("smile", "happy")}
    # Ranked by confidence alone, among related candidates only: joy (cos 0) falls under the relatedness floor, so
    # happy keeps smile although joy has the larger confidence; without the floor joy wins.
    by_confidence = {"select_relatedness": 0.0, "select_confidence": 1.0}
    assert ("joy", "happy") in build_scored(**by_confidence)
    assert set(build_scored(**by_confidence, min_relatedness=0.5)) == {("smile", "happy"), ("cry", "sad")}
    # The kept edge's confidence is normalised among the kept concepts: smile alone → 1.
    assert build_scored()[("smile", "happy")][0] == pytest.approx(1.0)
    with pytest.raises(KgemoError, match="concept_vectors"):
        get_builder("concept", selection="score")(conv, feats, {}, {"conceptnet": FakeKB()})
