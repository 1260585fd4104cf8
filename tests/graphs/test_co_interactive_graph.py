"""The ``co_interactive`` builder on hand-made conversations whose edges are known, plus the real datasets."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from kgemo.data import Conversation, Utterance, load_dataset
from kgemo.data.labels import label_space
from kgemo.errors import KgemoError
from kgemo.graphs import CoInteractiveGraphBuilder, get_builder, load_graphs, save_graphs
from kgemo.graphs.co_interactive_graph import speaker_links, window_pairs, word_hashes

SPACES = {"sentiment": label_space("mastodon", "sentiment"), "act": label_space("mastodon", "act")}
ALL_PAIRS_3 = {(j, i) for i in range(3) for j in range(3)}


def pairs(edge_index: torch.Tensor) -> set[tuple[int, int]]:
    return {(int(j), int(i)) for j, i in edge_index.t()}


def conversation(speakers="ABA", reply_to=((0, 0), (1, 1), (2, 2), (0, 2))) -> Conversation:
    labels = [("+", "I"), ("-", "Q"), ("*", "A"), ("+", "S"), ("-", "T")]
    utts = [Utterance(f"utterance {k}", s, {"sentiment": labels[k][0], "act": labels[k][1]})
            for k, s in enumerate(speakers)]
    return Conversation("c", utts, "mastodon", "train", reply_to=None if reply_to is None else list(reply_to))


def build(conv=None, **params):
    conv = conv or conversation()
    feats = np.arange(len(conv) * 4, dtype=np.float32).reshape(len(conv), 4)
    return get_builder("co_interactive", **params)(conv, feats, SPACES)


def test_schema_and_labels():
    g = build()
    assert set(g.node_types) == {"utterance", "speaker", "act", "sentiment", "word"}
    assert g["act"].num_nodes == g["sentiment"].num_nodes == g["utterance"].num_nodes == 3
    assert g["utterance"].y_sentiment.tolist() == [0, 1, 2]          # positive, negative, neutral
    assert g["utterance"].y_act.tolist() == [0, 2, 3]                # I, Q, A in the mastodon/act order
    assert torch.equal(g["utterance"].x, torch.arange(12.0).view(3, 4))
    assert ("utterance", "context", "utterance") not in g.edge_types  # replaced by the task nodes' context


def test_word_nodes():
    conv = Conversation("w", [Utterance("Is it? is IT?", "A"), Utterance("yes", "B")])
    g = get_builder("co_interactive")(conv, np.zeros((2, 4), np.float32), {})
    hashes = word_hashes("is it ?")
    assert g["word"].num_nodes == 4                                  # is, it, ? (once each) + yes
    assert g["word"].hash.tolist() == hashes.tolist() + word_hashes("yes").tolist()
    assert g["word", "in", "utterance"].edge_index.tolist() == [[0, 1, 2, 3], [0, 0, 0, 1]]
    # The hash is stable (CRC-32), not Python's per-process salted hash().
    assert word_hashes("yes").tolist() == [1978086825]
    no_words = get_builder("co_interactive", words=False)(conv, np.zeros((2, 4), np.float32), {})
    assert "word" not in no_words.node_types


def test_default_is_cogat_full_graph():
    """window=None: every node linked to every node of its task and of the other task (self pairs included)."""
    g = build()
    for et in [("act", "context", "act"), ("sentiment", "context", "sentiment"), ("act", "cross", "sentiment"),
               ("sentiment", "cross", "act")]:
        assert pairs(g[et].edge_index) == ALL_PAIRS_3, et


def test_window_and_cross_window():
    g = build(window=1, cross_window=0)
    expected = {(0, 0), (1, 0), (0, 1), (1, 1), (2, 1), (1, 2), (2, 2)}
    assert pairs(g["act", "context", "act"].edge_index) == expected
    assert pairs(g["sentiment", "context", "sentiment"].edge_index) == expected
    assert pairs(g["act", "cross", "sentiment"].edge_index) == {(0, 0), (1, 1), (2, 2)}
    assert pairs(g["sentiment", "cross", "act"].edge_index) == {(0, 0), (1, 1), (2, 2)}
    assert pairs(build(window=0)["act", "context", "act"].edge_index) == {(0, 0), (1, 1), (2, 2)}


def test_without_cross_task_edges():
    g = build(cross_task=False)
    assert not [et for et in g.edge_types if et[1] == "cross"]
    assert pairs(g["act", "context", "act"].edge_index) == ALL_PAIRS_3


def test_mastodon_reply_links_are_undirected_with_the_files_self_loops():
    g = build(speaker_links="reply_to")
    assert pairs(g["utterance", "speaker_link", "utterance"].edge_index) == {(0, 0), (1, 1), (2, 2), (0, 2), (2, 0)}
    # Self-loops exactly as the file has them: none added when the file has none.
    no_loops = conversation(reply_to=[(0, 2)])
    assert pairs(speaker_links(no_loops, "reply_to")) == {(0, 2), (2, 0)}


def test_dailydialog_alternate_links():
    conv = conversation("ABABA", reply_to=None)
    expected = {(i, i) for i in range(5)} | {(0, 2), (2, 0), (1, 3), (3, 1), (2, 4), (4, 2)}
    assert pairs(speaker_links(conv, "alternate")) == expected
    # Two-party turn-taking: the previous utterance of the same speaker is i - 2.
    assert pairs(speaker_links(conv, "same_speaker")) == expected


def test_same_speaker_links_follow_the_speakers():
    conv = conversation("AAB", reply_to=None)
    assert pairs(speaker_links(conv, "same_speaker")) == {(0, 0), (1, 1), (2, 2), (0, 1), (1, 0)}
    assert pairs(speaker_links(conv, "alternate")) == {(0, 0), (1, 1), (2, 2), (0, 2), (2, 0)}
    # reply_to without links (user input to the annotator) falls back to the speakers.
    assert pairs(speaker_links(conv, "reply_to")) == pairs(speaker_links(conv, "same_speaker"))


def test_single_utterance():
    g = build(conversation("A", reply_to=[(0, 0)]))
    for et in g.edge_types:
        if et[0] not in ("speaker", "word"):
            assert pairs(g[et].edge_index) == {(0, 0)}, et


def test_window_pairs_sorted_by_target():
    ei = window_pairs(4, 1)
    assert ei.tolist() == [[0, 1, 0, 1, 2, 1, 2, 3, 2, 3], [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]]
    assert ei.dtype == torch.long
    assert window_pairs(4, 10).size(1) == 16


def test_bad_options():
    with pytest.raises(KgemoError, match="speaker_links"):
        CoInteractiveGraphBuilder(speaker_links="nearby")
    with pytest.raises(KgemoError, match="window"):
        CoInteractiveGraphBuilder(window=-1)


def test_params_enter_the_cache_key():
    keys = {str(CoInteractiveGraphBuilder(**p).cache_key()) for p in
            [{}, {"cross_task": False}, {"window": 2}, {"speaker_links": "alternate"}, {"words": False}]}
    assert len(keys) == 5
    assert CoInteractiveGraphBuilder().cache_key()["builder"] == "co_interactive"


def test_batching_keeps_task_nodes_aligned_with_utterances():
    g1, g2 = build(), build(conversation("AB", reply_to=[(0, 0), (1, 1)]))
    b = Batch.from_data_list([g1, g2])
    assert b["act"].num_nodes == b["sentiment"].num_nodes == b["utterance"].num_nodes == 5
    assert torch.equal(b["act"].batch, b["utterance"].batch)
    cross = pairs(b["act", "cross", "sentiment"].edge_index)
    assert cross == ALL_PAIRS_3 | {(3, 3), (3, 4), (4, 3), (4, 4)}   # never across conversations


def test_graph_cache_round_trip(tmp_path):
    graphs = [build(), build(conversation("AB", reply_to=[(0, 1)]), cross_task=True)]
    save_graphs(graphs, tmp_path / "g.safetensors")
    loaded = load_graphs(tmp_path / "g.safetensors")
    for a, b in zip(graphs, loaded):
        assert b["act"].num_nodes == a["act"].num_nodes and b["sentiment"].num_nodes == a["sentiment"].num_nodes
        for et in a.edge_types:
            assert torch.equal(a[et].edge_index, b[et].edge_index)


@pytest.mark.integration
def test_real_mastodon_reply_links_equal_speaker_links(data_root):
    """Co-GAT's Mastodon links are i ↔ i+2 (and self-loops), so they agree with kgemo's derived speakers."""
    for split in ("train", "dev", "test"):
        for conv in load_dataset("mastodon", split, root=data_root):
            reply = pairs(speaker_links(conv, "reply_to"))
            assert reply <= pairs(speaker_links(conv, "same_speaker")), conv.id
            assert {(i, i) for i in range(len(conv))} <= reply, conv.id


@pytest.mark.integration
def test_real_dailydialog_alternate_equals_same_speaker(data_root):
    for conv in load_dataset("dailydialog", "dev", root=data_root):
        assert pairs(speaker_links(conv, "alternate")) == pairs(speaker_links(conv, "same_speaker")), conv.id
