from __future__ import annotations

import json
from collections import Counter

import pytest

from kgemo.data import LoadReport, label_space, load_dataset
from kgemo.data.mastodon import load_mastodon, parse_adjacency
from kgemo.errors import DataFormatError


@pytest.mark.integration
@pytest.mark.parametrize("split,dialogues,utterances", [("train", 243, 967), ("dev", 26, 108), ("test", 267, 1142)])
def test_published_counts(data_root, split, dialogues, utterances):
    convs = load_dataset("mastodon", split, root=data_root)
    assert len(convs) == dialogues
    assert sum(len(c) for c in convs) == utterances
    sentiments, acts = label_space("mastodon", "sentiment"), label_space("mastodon", "act")
    for c in convs:
        assert c.reply_to is not None and all((i, i) in c.reply_to for i in range(len(c)))
        assert all(u.labels["sentiment"] in sentiments.labels and u.labels["act"] in acts.labels for u in c)


@pytest.mark.integration
def test_links_speakers_and_histogram(data_root):
    convs = load_mastodon("test", root=data_root)
    first = convs[0]
    assert len(first) == 5
    assert first.reply_to == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (0, 2), (1, 3), (2, 4)]
    assert first.speakers == ["A", "B", "A", "B", "A"]
    # Independent count from the JSON file itself.
    raw = json.loads((data_root / "mastodon" / "test.json").read_text())
    expected = Counter({"+": "positive", "-": "negative", "*": "neutral"}[u["sentiment"]] for d in raw for u in d)
    assert Counter(u.labels["sentiment"] for c in convs for u in c) == expected
    assert expected == {"neutral": 479, "negative": 372, "positive": 291}
    assert Counter(u.labels["act"] for c in convs for u in c)["I"] == 591


def test_parse_adjacency():
    assert parse_adjacency("3 1-1 2-2 3-3 1-3", 3) == [(0, 0), (1, 1), (2, 2), (0, 2)]
    assert parse_adjacency("1", 1) == []
    with pytest.raises(DataFormatError, match=r"adj.txt:4: N = 3, but the dialogue has 2 utterances"):
        parse_adjacency("3 1-1", 2, path="adj.txt", line_no=4)
    with pytest.raises(DataFormatError, match=r"link 1-4 is outside 1..3"):
        parse_adjacency("3 1-4", 3)
    with pytest.raises(DataFormatError, match=r"link 0-1 is outside 1..3"):
        parse_adjacency("3 0-1", 3)
    with pytest.raises(DataFormatError, match=r"link '1_2' is not 'i-j'"):
        parse_adjacency("3 1_2", 3)
    with pytest.raises(DataFormatError, match="expected 'N i-j"):
        parse_adjacency("", 3)


def _u(text, sentiment="+", act="I"):
    return {"utterance": text, "sentiment": sentiment, "act": act}


def test_fixture_speakers_follow_the_link_graph(write_mastodon):
    dialogues = [[_u("first post"), _u("a reply", "-", "Q"), _u("reply to the reply", "*", "A")],
                 [_u("lonely post")],
                 [_u("a"), _u("b"), _u("c"), _u("d")]]
    adjacency = ["3 1-1 2-2 3-3 1-3", "1 1-1", "4 1-1 2-2 3-3 4-4 1-2 3-4"]
    convs = load_mastodon("train", root=write_mastodon(dialogues, adjacency))
    assert convs[0].speakers == ["A", "B", "A"]
    assert convs[0].labels("sentiment") == ["positive", "negative", "neutral"]
    assert convs[0].labels("act") == ["I", "Q", "A"]
    assert convs[1].speakers == ["A"] and convs[1].reply_to == [(0, 0)]
    assert convs[2].speakers == ["A", "A", "B", "B"]


@pytest.mark.parametrize("dialogue,adj,reason,message", [
    ([_u("x"), _u("y")], "3 1-1 2-2", "bad_adjacency", r"train_adj.txt:1: N = 3, but the dialogue has 2"),
    ([_u("x"), _u("y")], "2 1-1 2-3", "bad_adjacency", r"train_adj.txt:1: link 2-3 is outside 1..2"),
    ([_u("x"), _u("y", sentiment="?")], "2", "unknown_label",
     r"train.json: dialogue 0 utterance 2: unknown mastodon/sentiment label '\?'"),
    ([_u("x", act="Z")], "1", "unknown_label", r"unknown mastodon/act label 'Z'"),
    ([_u("  ")], "1", "empty_utterance", r"train.json: dialogue 0 utterance 1: empty utterance"),
    ([{"utterance": "x", "act": "I"}], "1", "malformed_row", r"dialogue 0: utterance 1 lacks \['sentiment'\]"),
    ([], "0", "malformed_row", r"dialogue 0: a dialogue must be a non-empty list"),
])
def test_bad_dialogues(write_mastodon, dialogue, adj, reason, message):
    root = write_mastodon([dialogue, [_u("good")]], [adj, "1 1-1"])
    with pytest.raises(DataFormatError, match=message):
        load_mastodon("train", root=root)
    report = LoadReport()
    convs = load_mastodon("train", root=root, strict=False, report=report)
    assert [c.id for c in convs] == ["1"] and report.skipped == {reason: 1} and report.skipped_dialogues == 1


def test_file_level_problems(write_mastodon, tmp_path):
    root = write_mastodon([[_u("a")], [_u("b")]], ["1 1-1"])
    with pytest.raises(DataFormatError, match=r"train_adj.txt:2: 1 lines, but train.json has 2 dialogues"):
        load_mastodon("train", root=root, strict=False)
    root = write_mastodon(None, ["1"], raw_json=b'[[{"utterance": "a",\n "act": }]]')
    with pytest.raises(DataFormatError, match=r"train.json:2: invalid JSON"):
        load_mastodon("train", root=root, strict=False)


def test_bad_utf8(write_mastodon, tmp_path):
    raw = json.dumps([[_u("caf PLACEHOLDER")], [_u("fine")]]).encode().replace(b"PLACEHOLDER", b"\xe9")
    root = write_mastodon(None, ["1 1-1", "1 1-1"], raw_json=raw)
    with pytest.raises(DataFormatError, match=r"train.json:1: invalid UTF-8 byte 0xe9"):
        load_mastodon("train", root=root)
    report = LoadReport()
    assert [c.texts for c in load_mastodon("train", root=root, strict=False, report=report)] == [["fine"]]
    assert report.skipped == {"bad_utf8": 1}
