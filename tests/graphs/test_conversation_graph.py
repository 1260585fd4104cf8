import numpy as np
import pytest
import torch

from kgemo.data import Conversation, Utterance, label_space
from kgemo.errors import DataFormatError, KgemoError
from kgemo.graphs import get_builder, to_networkx

SPACES = {"emotion": label_space("meld", "emotion"), "sentiment": label_space("meld", "sentiment")}


def conv():
    return Conversation("d1", [
        Utterance("hi", "Ann", {"emotion": "joy", "sentiment": "positive"}),
        Utterance("hello", "Bob", {"emotion": "neutral"}),
        Utterance("bye", "Ann", {"emotion": "sadness", "sentiment": "negative"}),
    ])


def test_nodes_labels_and_speakers():
    feats = np.arange(6, dtype=np.float32).reshape(3, 2)
    g = get_builder("conversation", window=1)(conv(), feats, SPACES)
    u = g["utterance"]
    assert torch.equal(u.x, torch.from_numpy(feats))
    assert u.speaker.tolist() == [0, 1, 0]
    assert u.y_emotion.tolist() == [1, 0, 4]            # joy, neutral, sadness in MELD's order
    assert u.y_sentiment.tolist() == [1, -1, 2]         # missing label → -1
    assert g["speaker"].num_nodes == 2
    assert g["speaker", "speaks", "utterance"].edge_index.tolist() == [[0, 1, 0], [0, 1, 2]]


def test_context_edges_follow_window():
    g = get_builder("conversation", window=1)(conv(), np.zeros((3, 2), np.float32), SPACES)
    ctx = g["utterance", "context", "utterance"]
    pairs = set(zip(ctx.edge_index[0].tolist(), ctx.edge_index[1].tolist()))
    assert pairs == {(0, 0), (1, 1), (2, 2), (0, 1), (1, 0), (1, 2), (2, 1)}
    assert (0, 2) not in pairs  # distance 2 > window
    g = get_builder("conversation", window=5, past_only=True)(conv(), np.zeros((3, 2), np.float32), SPACES)
    assert (g["utterance", "context", "utterance"].rel_pos >= 0).all()


def test_errors_name_the_dialogue():
    b = get_builder("conversation")
    with pytest.raises(DataFormatError, match="dialogue d1.*2 feature rows for 3"):
        b(conv(), np.zeros((2, 2), np.float32), SPACES)
    bad = Conversation("d2", [Utterance("x", "A", {"emotion": "happiness"})])
    with pytest.raises(DataFormatError, match="dialogue d2.*'happiness' is not in meld/emotion"):
        b(bad, np.zeros((1, 2), np.float32), SPACES)
    with pytest.raises(KgemoError, match="unknown graph builder"):
        get_builder("nope")


def test_label_space_aliases_map_datasets_together():
    # DailyDialog's "happiness" becomes Ekman-7 "joy" when training on the shared space.
    from kgemo.data.labels import LABEL_SPACES

    c = Conversation("d", [Utterance("x", "A", {"emotion": "happiness"})])
    g = get_builder("conversation")(c, np.zeros((1, 2), np.float32), {"emotion": LABEL_SPACES["ekman7/emotion"]})
    assert g["utterance"].y_emotion.tolist() == [LABEL_SPACES["ekman7/emotion"].labels.index("joy")]


def test_networkx_export_has_every_node_and_edge():
    g = get_builder("conversation", window=1)(conv(), np.zeros((3, 2), np.float32), SPACES)
    nxg = to_networkx(g, names={"utterance": ["hi", "hello", "bye"]})
    assert nxg.number_of_nodes() == 3 + 2
    assert nxg.number_of_edges() == 3 + 7
    assert nxg.nodes[("utterance", 2)]["label"] == "bye"
    assert nxg.nodes[("utterance", 0)]["y_emotion"] == 1
    types = {d["type"] for _, _, d in nxg.edges(data=True)}
    assert types == {"speaks", "context"}
