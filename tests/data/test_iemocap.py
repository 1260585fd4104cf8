from __future__ import annotations

import pytest

from kgemo.data import LoadReport, dataset_files, load_dataset
from kgemo.data.iemocap import load_iemocap
from kgemo.errors import DataFormatError, DataNotFoundError

from .conftest import FIXTURES


def test_fixture_loads():
    root = FIXTURES  # holds iemocap/
    train = load_dataset("iemocap", "train", root=root)
    assert [c.id for c in train] == ["Ses01F_impro01", "Ses01M_script01_1"]
    first = train[0]
    assert first.texts[0] == "Hi, is this the right line for the licence?"
    assert first.speakers == ["A", "B", "A", "B"]
    assert first.labels("emotion") == ["neutral", "neutral", "frustrated", "neutral"]
    assert train[1].labels("emotion") == ["excited", "happy", "excited"]
    assert train[1].speakers == ["B", "A", "B"]
    dev = load_dataset("iemocap", "dev", root=root)  # the "valid" files
    assert dev[0].split == "dev" and dev[0].labels("emotion") == ["angry", "sad", "angry"]
    assert [p.name for p in dataset_files("iemocap", "dev", root=root)] == [
        "iemocap_valid_utterances.tsv", "iemocap_valid_emotion.tsv", "iemocap_valid_speakers.tsv"]
    assert sum(len(c) for c in load_iemocap("test", root=root / "iemocap")) == 4


def _edit(root, name, old, new):
    path = root / "iemocap" / name
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new))
    return path


@pytest.mark.parametrize("name,old,new,reason,message", [
    ("iemocap_train_emotion.tsv", b"impro01\t2\t2\t5\t2", b"impro01\t2\t2\t5", "length_mismatch",
     r"iemocap_train_emotion.tsv:1: dialogue Ses01F_impro01: 3 values, but iemocap_train_utterances.tsv has 4"),
    ("iemocap_train_emotion.tsv", b"impro01\t2\t2\t5\t2", b"impro01\t2\t2\t9\t2", "unknown_label",
     r"iemocap_train_emotion.tsv:1: dialogue Ses01F_impro01: unknown iemocap/emotion label '9'"),
    ("iemocap_train_utterances.tsv", b"\tYes. Do you have your forms?", b"\t ", "empty_utterance",
     r"iemocap_train_utterances.tsv:1: dialogue Ses01F_impro01: utterance 2 is empty"),
    ("iemocap_train_speakers.tsv", b"impro01\t0\t1\t0\t1", b"impro01\t0\t \t0\t1", "missing_speaker",
     r"iemocap_train_speakers.tsv:1: dialogue Ses01F_impro01: speaker 2 is empty"),
    ("iemocap_train_speakers.tsv", b"Ses01F_impro01", b"Ses09F_impro01", "malformed_row",
     r"iemocap_train_speakers.tsv:1: dialogue id 'Ses09F_impro01', but line 1 of"),
    ("iemocap_train_utterances.tsv", b"licence", b"licen\xe7e", "bad_utf8",
     r"iemocap_train_utterances.tsv:1: invalid UTF-8 byte 0xe7"),
])
def test_bad_dialogues(iemocap_root, name, old, new, reason, message):
    _edit(iemocap_root, name, old, new)
    with pytest.raises(DataFormatError, match=message):
        load_iemocap("train", root=iemocap_root)
    report = LoadReport()
    convs = load_iemocap("train", root=iemocap_root, strict=False, report=report)
    assert [c.id for c in convs] == ["Ses01M_script01_1"] and report.skipped == {reason: 1}


def test_line_count_mismatch(iemocap_root):
    path = iemocap_root / "iemocap" / "iemocap_train_speakers.tsv"
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(DataFormatError, match=r"iemocap_train_speakers.tsv:2: 1 lines, but .* has 2"):
        load_iemocap("train", root=iemocap_root, strict=False)


def test_missing_copy_explains_the_licence(tmp_path):
    with pytest.raises(DataNotFoundError, match="licensed per user"):
        load_dataset("iemocap", "train", root=tmp_path)
