import numpy as np
import pytest
import torch

from kgemo.data import Conversation, Utterance, label_space
from kgemo.errors import KgemoError
from kgemo.graphs import get_builder

SPACES = {"emotion": label_space("ekman7", "emotion")}


def conv(dataset):
    return Conversation("d1", [Utterance("hi", "Ann", {"emotion": "happiness"}),
                               Utterance("bye", "Bob", {"emotion": "no emotion"})], dataset=dataset)


@pytest.mark.parametrize("dataset, domain", [("dailydialog", 0), ("meld", 1), (None, 1)])
def test_domain_per_utterance(dataset, domain):
    feats = np.ones((2, 3), np.float32)
    g = get_builder("cross_domain", window=1, source=["dailydialog"])(conv(dataset), feats, SPACES)
    assert g["utterance"].domain.tolist() == [domain, domain]
    # everything else is the conversation graph
    plain = get_builder("conversation", window=1)(conv(dataset), feats, SPACES)
    assert g["utterance"].y_emotion.tolist() == plain["utterance"].y_emotion.tolist() == [1, 0]
    assert set(g.edge_types) == set(plain.edge_types)
    for et in plain.edge_types:
        assert torch.equal(g[et].edge_index, plain[et].edge_index)


def test_source_is_required_and_a_string_becomes_a_list():
    with pytest.raises(KgemoError, match="graph.source"):
        get_builder("cross_domain")
    assert get_builder("cross_domain", source="meld").settings.source == ["meld"]
    assert get_builder("cross_domain", source=["meld"]).cache_key()["params"]["source"] == ["meld"]
