from __future__ import annotations

import csv
from collections import Counter

import pytest

from kgemo.data import LoadReport, label_space, load_dataset
from kgemo.data.emorynlp import load_emorynlp, parse_speakers
from kgemo.errors import DataFormatError

from .conftest import EMORY_HEADER, csv_bytes, emory_row


@pytest.mark.integration
@pytest.mark.parametrize("split,scenes,utterances", [("train", 659, 7551), ("dev", 89, 954), ("test", 79, 984)])
def test_published_counts(data_root, split, scenes, utterances):
    convs = load_dataset("emorynlp", split, root=data_root)
    assert len(convs) == scenes
    assert sum(len(c) for c in convs) == utterances
    space = label_space("emorynlp", "emotion")
    assert all(u.labels["emotion"] in space.labels for c in convs for u in c)
    assert len({c.id for c in convs}) == scenes


@pytest.mark.integration
def test_scene_order_speakers_and_histogram(data_root):
    convs = load_emorynlp("train", root=data_root)
    first = convs[0]
    assert first.id == "s01e02c01" and first.meta == {"season": 1, "episode": 2, "scene": 1}
    assert first.speakers[:2] == ["Monica Geller", "Joey Tribbiani"]
    assert [int(u.id) for u in first] == sorted(int(u.id) for u in first)
    joined = [u.speaker for c in convs for u in c if " & " in u.speaker]
    assert len(joined) == 50  # 43 + 6 + 1 multi-speaker lines in the train file
    assert "Monica Geller & Phoebe Buffay" in joined
    # Independent count with the csv module alone.
    with open(data_root / "emorynlp" / "emory_train.csv", newline="", encoding="utf-8") as fh:
        expected = Counter(row["Emotion"] for row in csv.DictReader(fh))
    got = Counter(u.labels["emotion"] for c in convs for u in c)
    assert got == expected and got["Neutral"] == 2485 and got["Sad"] == 474


def test_parse_speakers():
    assert parse_speakers("['Monica Geller']") == "Monica Geller"
    assert parse_speakers("['Ross Geller', 'Monica Geller', 'Ross Geller']") == "Monica Geller & Ross Geller"
    assert parse_speakers("Plain Name") == "Plain Name"
    assert parse_speakers("[]") == ""
    with pytest.raises(ValueError, match="not a valid list literal"):
        parse_speakers("[__import__('os').getcwd()]")  # never evaluated
    with pytest.raises(ValueError, match="not a list of names"):
        parse_speakers("[1, 2]")


def test_groups_scenes_and_orders(write_emory):
    rows = [emory_row("Second.", utt=2, scene=2), emory_row("First.", utt=1, scene=2, emotion="Mad"),
            emory_row("Earlier scene.", scene=1, speaker="['Rachel Green', 'Monica Geller']")]
    convs = load_emorynlp("train", root=write_emory(rows))
    assert [c.id for c in convs] == ["s01e01c01", "s01e01c02"]
    assert convs[0].speakers == ["Monica Geller & Rachel Green"]
    assert convs[1].texts == ["First.", "Second."]
    assert convs[1].labels("emotion") == ["Mad", "Joyful"]


def test_val_file_is_dev(write_emory):
    convs = load_dataset("emorynlp", "val", root=write_emory([emory_row("Hi.")], split="dev"))
    assert convs[0].split == "dev"


@pytest.mark.parametrize("row,message", [
    (emory_row("Hi.", emotion="Angry"), r":2: dialogue s01e01c01: unknown emorynlp/emotion label 'Angry'"),
    (emory_row(" "), r":2: dialogue s01e01c01: empty utterance"),
    (emory_row("Hi.", speaker="[]"), r":2: dialogue s01e01c01: missing speaker"),
    (emory_row("Hi.", speaker="['unclosed"), r":2: dialogue s01e01c01: speaker list .* not a valid list literal"),
    (emory_row("Hi.", scene="one"), r":2: Season, Episode, Scene_ID and Utterance_ID must be integers"),
])
def test_bad_rows(write_emory, row, message):
    root = write_emory([row, emory_row("Fine.", utt=2)])
    with pytest.raises(DataFormatError, match=message):
        load_emorynlp("train", root=root)
    report = LoadReport()
    convs = load_emorynlp("train", root=root, strict=False, report=report)
    assert [c.texts for c in convs] == [["Fine."]] and report.total_skipped == 1


def test_wrong_field_count_and_bad_utf8(write_emory):
    raw = csv_bytes(EMORY_HEADER, [emory_row("Fine.")]) + b"short,row\n" + \
        csv_bytes(EMORY_HEADER, [emory_row("Caf\xe9.", utt=3)]).split(b"\n", 1)[1].replace("é".encode(), b"\xe9")
    root = write_emory(raw=raw)
    # Strict: undecodable bytes are found while decoding the file, before any row is parsed.
    with pytest.raises(DataFormatError, match=r"emory_train.csv:4: invalid UTF-8 byte 0xe9 at column 4"):
        load_emorynlp("train", root=root)
    report = LoadReport()
    convs = load_emorynlp("train", root=root, strict=False, report=report)
    assert convs[0].texts == ["Fine."]
    assert report.skipped == {"malformed_row": 1, "bad_utf8": 1}
    assert report.examples[0].endswith("emory_train.csv:3: expected 9 fields (Utterance, Speaker, Emotion, "
                                       "Scene_ID, Utterance_ID, Season, Episode, Start_Time, End_Time), found 2")
