"""The one text normaliser (kgemo.data.text): what it does, and that every reader of raw text goes through it."""
from __future__ import annotations

import json

import pytest
from .conftest import convlab_turn, csv_bytes, meld_row

from kgemo.data import Conversation, Utterance, as_conversation, load_dataset, normalise_text
from kgemo.data.dailydialog import load_dailydialog
from kgemo.data.mastodon import load_mastodon
from kgemo.data.meld import load_meld

RAW = " The company\x92s new\x85 "     # MELD's cp1252 punctuation as C1 characters, and stray spaces
CLEAN = "The company\u2019s new\u2026"


def test_c1_characters_become_their_cp1252_characters_then_the_text_is_stripped():
    assert normalise_text(RAW) == CLEAN
    assert normalise_text("\x96 a \x97 b \x93c\x94") == "\u2013 a \u2014 b \u201cc\u201d"
    # U+0085 is whitespace to str.strip(): repaired first, a final one stays an ellipsis.
    assert normalise_text("wait\x85") == "wait\u2026" and "wait\x85".strip() == "wait"
    # The five code points cp1252 leaves undefined stay; nothing else is touched (no NFC, no case, no inner spaces).
    assert normalise_text("a\x81b\x8dc\x8fd\x90e\x9d") == "a\x81b\x8dc\x8fd\x90e\x9d"
    assert normalise_text("Cafe\u0301  OK\t!") == "Cafe\u0301  OK\t!"


@pytest.mark.parametrize("text", [RAW, "plain", "  \x85\x85 ", "\u2019s", "\x81"])
def test_idempotent(text):
    assert normalise_text(normalise_text(text)) == normalise_text(text)


def test_meld_loader_gives_the_normalised_text(write_meld):
    root = write_meld([meld_row(1, RAW)], split="dev")
    assert load_meld("dev", root=root)[0][0].text == CLEAN


def test_dailydialog_and_mastodon_loaders_normalise_too(write_convlab, write_mastodon, tmp_path):
    root = write_convlab([("test", [convlab_turn(RAW), convlab_turn("ok", "system", idx=1)])])
    assert load_dailydialog("test", root=root)[0].texts == [CLEAN, "ok"]
    root = write_mastodon([[{"utterance": RAW, "sentiment": "+", "act": "I"}]], ["1 1-1"], split="dev")
    assert load_mastodon("dev", root=root)[0].texts == [CLEAN]


def test_own_jsonl_file_normalises_like_the_loaders(tmp_path):
    (tmp_path / "mine.jsonl").write_text(json.dumps(
        {"id": "a", "split": "train", "turns": [{"speaker": "A", "text": RAW, "emotion": "joy"}]}) + "\n",
        encoding="utf-8")
    (tmp_path / "mine.yaml").write_text("name: mine\ntasks:\n  emotion: {labels: [neutral, joy]}\nsplits: given\n",
                                        encoding="utf-8")
    assert load_dataset(str(tmp_path / "mine.jsonl"), "train")[0].texts == [CLEAN]


def test_annotation_input_normalises_every_shape():
    from kgemo.annotate.inputs import parse_conversations

    assert as_conversation([("A", RAW)]).texts == [CLEAN]
    assert as_conversation([{"speaker": "A", "text": RAW}]).texts == [CLEAN]
    assert as_conversation([Utterance(RAW, "A")]).texts == [CLEAN]
    given = Conversation("c", [Utterance(RAW, "A", {"emotion": "joy"}, "7"), Utterance("fine", "B")], "meld", "dev")
    conv = as_conversation(given)
    assert conv.texts == [CLEAN, "fine"] and (conv.id, conv.dataset, conv.split) == ("c", "meld", "dev")
    assert conv[0].labels == {"emotion": "joy"} and conv[0].id == "7" and given[0].text == RAW  # a copy
    clean = Conversation("d", [Utterance(CLEAN, "A")])
    assert as_conversation(clean) is clean
    for fmt, data in (("json", json.dumps([{"speaker": "A", "text": RAW}])),
                      ("jsonl", json.dumps({"speaker": "A", "text": RAW})),
                      ("csv", csv_bytes(["speaker", "text"], [["A", RAW]]).decode())):
        assert parse_conversations(data.encode(), format=fmt)[0].texts == [CLEAN], fmt


@pytest.mark.integration
def test_meld_dev_raw_csv_text_reaches_annotation_as_the_loader_gives_it(data_root):
    """308 of MELD dev's 1,109 rows hold C1 characters: from the raw CSV through annotation input they must give
    the loader's text, row for row."""
    import csv

    from kgemo.annotate.inputs import parse_conversations

    path = data_root / "meld" / "dev_sent_emo.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8-sig", newline="")))
    assert sum(normalise_text(r["Utterance"]) != r["Utterance"] for r in rows) == 308
    loaded = {(c.id, u.id): u.text for c in load_meld("dev", root=data_root) for u in c}
    data = json.dumps([{"id": r["Dialogue_ID"], "utterances": [{"speaker": r["Speaker"], "text": r["Utterance"],
                                                                 "id": r["Utterance_ID"]}]} for r in rows])
    got = {(c.id, c[0].id): c[0].text for c in parse_conversations(data.encode(), format="json")}
    assert got == loaded

