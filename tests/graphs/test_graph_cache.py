import logging

import torch
from fake_kb import FakeKB

from kgemo.data import Conversation, Utterance, label_space
from kgemo.graphs import GraphCache, get_builder, load_graphs, save_graphs
from kgemo.errors import CacheError

SPACES = {"emotion": label_space("meld", "emotion")}


def graphs(encoder):
    convs = [Conversation("a", [Utterance("happy dog", "A", {"emotion": "joy"}), Utterance("ok", "B")]),
             Conversation("b", [Utterance("I cry", "A", {"emotion": "sadness"})])]
    b = get_builder("concept", concepts_per_token=2)
    return [b(c, encoder.encode(c.texts), SPACES, {"conceptnet": FakeKB()}) for c in convs]


def assert_same(g1, g2):
    assert g1.node_types == g2.node_types and g1.edge_types == g2.edge_types
    for key in g1.node_types + g1.edge_types:
        assert g1[key].num_nodes == g2[key].num_nodes if key in g1.node_types else True
        for attr, value in g1[key].items():
            if torch.is_tensor(value):
                assert torch.equal(value, g2[key][attr]), (key, attr)


def test_round_trip_is_exact(tmp_path, tiny_encoder):
    gs = graphs(tiny_encoder)
    save_graphs(gs, tmp_path / "g.safetensors")
    for a, b in zip(gs, load_graphs(tmp_path / "g.safetensors")):
        assert_same(a, b)


def test_cache_builds_once_then_reads(tmp_path, tiny_encoder):
    cache, calls = GraphCache(tmp_path), []

    def build():
        calls.append(1)
        return graphs(tiny_encoder)

    first = cache.get_or_build({"k": 1}, build)
    second = cache.get_or_build({"k": 1}, build)
    assert len(calls) == 1
    for a, b in zip(first, second):
        assert_same(a, b)
    cache.get_or_build({"k": 2}, build)  # another key, another build
    assert len(calls) == 2


def test_corrupt_cache_is_detected_and_rebuilt(tmp_path, tiny_encoder, caplog):
    cache = GraphCache(tmp_path)
    cache.get_or_build({"k": 1}, lambda: graphs(tiny_encoder))
    path = cache.path({"k": 1})
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    try:
        load_graphs(path)
        raise AssertionError("corruption not detected")
    except CacheError as exc:
        assert "checksum mismatch" in str(exc)
    calls = []
    with caplog.at_level(logging.WARNING):
        cache.get_or_build({"k": 1}, lambda: calls.append(1) or graphs(tiny_encoder))
    assert calls == [1] and "rebuilding" in caplog.text
    load_graphs(path)  # valid again
