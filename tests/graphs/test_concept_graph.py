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
