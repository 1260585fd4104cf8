from __future__ import annotations

from collections import Counter

import pytest

from kgemo.data import LoadReport, dataset_files, label_space, load_dataset
from kgemo.data.dailydialog import choose_layout, load_dailydialog
from kgemo.errors import DataFormatError, DataNotFoundError

from .conftest import convlab_turn


# --- real data ----------------------------------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize("split,dialogues,utterances", [("train", 11118, 87170), ("dev", 1000, 8069),
                                                         ("test", 1000, 7740)])
def test_published_counts_from_the_zip(data_root, split, dialogues, utterances):
    convs = load_dataset("dailydialog", split, root=data_root)
    assert choose_layout(split, data_root) == "convlab"
    assert len(convs) == dialogues
    assert sum(len(c) for c in convs) == utterances
    emotions, acts = label_space("dailydialog", "emotion"), label_space("dailydialog", "act")
    assert all(u.labels["emotion"] in emotions.labels and u.labels["act"] in acts.labels for c in convs for u in c)
    assert all(c.speakers == ["A", "B"] * (len(c) // 2) + ["A"] * (len(c) % 2) for c in convs)
    assert [c.id for c in convs] == [str(k) for k in range(dialogues)]


@pytest.mark.integration
@pytest.mark.parametrize("split", ["dev", "test"])
def test_layouts_agree(data_root, split):
    convlab = load_dailydialog(split, root=data_root, layout="convlab")
    original = load_dailydialog(split, root=data_root, layout="original")
    assert [c.id for c in convlab] == [c.id for c in original]
    for a, b in zip(convlab, original):
        assert a.labels("emotion") == b.labels("emotion") and a.labels("act") == b.labels("act")
        assert a.speakers == b.speakers
    # Same words, different tokenization ("let's go" vs "let ’ s go"); ConvLab's detokenizer rewrote a few quotes.
    norm = lambda t: t.replace(" ", "").replace("\u2019", "'")  # noqa: E731
    pairs = [(u.text, v.text) for a, b in zip(convlab, original) for u, v in zip(a, b)]
    differ = [p for p in pairs if norm(p[0]) != norm(p[1])]
    assert len(differ) <= 10 and all("``" in p[0] for p in differ[:4])
    assert "__eou__" not in "".join(v for _, v in pairs)


@pytest.mark.integration
def test_histogram_matches_the_label_files(data_root):
    # An independent count straight from the original label file (codes 0-6).
    codes = (data_root / "dailydialog" / "original" / "dialogues_emotion_test.txt").read_text().split()
    names = label_space("dailydialog", "emotion").labels
    expected = Counter(names[int(c)] for c in codes)
    convs = load_dailydialog("test", root=data_root)
    assert Counter(u.labels["emotion"] for c in convs for u in c) == expected
    assert expected["happiness"] == 1019 and expected["neutral"] == 6321
    # Train labels only exist as label files in the original layout: compare against the zip's train split.
    acts = (data_root / "dailydialog" / "original" / "dialogues_act_train.txt").read_text().split()
    train = load_dailydialog("train", root=data_root)
    assert [u.labels["act"] for c in train for u in c] == [label_space("dailydialog", "act").labels[int(a) - 1]
                                                          for a in acts]


@pytest.mark.integration
def test_original_layout_has_no_train_text_here(data_root):
    with pytest.raises(DataNotFoundError, match="dialogues_train.txt"):
        dataset_files("dailydialog", "train", root=data_root, layout="original")


# --- ConvLab zip fixtures -----------------------------------------------------------------------------------------

def _dialogue(*texts, **kw):
    speakers = ["user", "system"]
    return [convlab_turn(t, speakers[i % 2], idx=i, **kw) for i, t in enumerate(texts)]


def test_convlab_zip_fixture(write_convlab):
    root = write_convlab([("train", _dialogue("Hi there.", "Hello.", emotion="happiness")),
                          ("test", _dialogue("Only test.", intent="question")),
                          ("validation", _dialogue("Dev one.", "Dev two."))])
    train, dev = load_dailydialog("train", root=root), load_dailydialog("dev", root=root)
    assert train[0].texts == ["Hi there.", "Hello."] and train[0].speakers == ["A", "B"]
    assert train[0][0].labels == {"emotion": "happiness", "act": "inform"}
    assert dev[0].split == "dev" and len(dev[0]) == 2
    assert load_dailydialog("test", root=root)[0][0].labels["act"] == "question"


def test_convlab_bad_dialogues(write_convlab):
    root = write_convlab([("test", _dialogue("Fine.", "Also fine.")),
                          ("test", _dialogue("Odd label.", emotion="joyous")),
                          ("test", _dialogue("", "Empty first.")),
                          ("test", [convlab_turn("No speaker.", speaker="")]),
                          ("test", _dialogue("Fine again."))])
    with pytest.raises(DataFormatError) as info:
        load_dailydialog("test", root=root)
    assert "data.zip/data/dialogues.json: dialogue test-1 turn 0: unknown dailydialog/emotion label 'joyous'" in \
        str(info.value)
    report = LoadReport()
    convs = load_dailydialog("test", root=root, strict=False, report=report)
    assert [c.id for c in convs] == ["0", "4"]
    assert report.skipped == {"unknown_label": 1, "empty_utterance": 1, "missing_speaker": 1}
    assert report.skipped_dialogues == 3


def test_convlab_invalid_json_and_zip(write_convlab, tmp_path):
    root = write_convlab([], raw=b'[{"data_split": "test",\n "turns": [}]')
    with pytest.raises(DataFormatError, match=r"dialogues.json:2: invalid JSON"):
        load_dailydialog("test", root=root, strict=False)
    (tmp_path / "dailydialog" / "convlab" / "data.zip").write_bytes(b"not a zip")
    with pytest.raises(DataFormatError, match="not a readable zip"):
        load_dailydialog("test", root=root)


# --- original layout fixtures -------------------------------------------------------------------------------------

def test_original_layout(write_dd_original):
    root = write_dd_original([["Hello , Tom .", "Hi !", "Bye ."]], [[2, 1, 4]], [[0, 4, 5]])
    assert choose_layout("test", root) == "original"
    convs = load_dailydialog("test", root=root)
    assert convs[0].texts == ["Hello , Tom .", "Hi !", "Bye ."]
    assert convs[0].speakers == ["A", "B", "A"]
    assert convs[0].labels("act") == ["question", "inform", "commissive"]
    assert convs[0].labels("emotion") == ["neutral", "happiness", "sadness"]
    with pytest.raises(DataNotFoundError):
        load_dailydialog("test", root=root, layout="convlab")


def test_auto_prefers_the_zip_and_layout_can_be_forced(write_dd_original, write_convlab):
    root = write_dd_original([["Tokenized , text ."]], [[1]], [[0]])
    write_convlab([("test", _dialogue("Detokenized, text."))])
    assert load_dailydialog("test", root=root)[0].texts == ["Detokenized, text."]
    assert load_dataset("dailydialog", "test", root=root, layout="original")[0].texts == ["Tokenized , text ."]
    assert [p.name for p in dataset_files("dailydialog", "test", root=root)] == ["data.zip"]
    assert [p.name for p in dataset_files("dailydialog", "test", root=root, layout="original")] == [
        "dialogues_test.txt", "dialogues_act_test.txt", "dialogues_emotion_test.txt"]
    with pytest.raises(ValueError, match="unknown DailyDialog layout"):
        load_dailydialog("test", root=root, layout="json")


def test_split_subfolders_of_the_official_archive(tmp_path):
    folder = tmp_path / "dailydialog" / "original" / "validation"
    folder.mkdir(parents=True)
    (folder / "dialogues_validation.txt").write_text("Hi . __eou__ Hello . __eou__\n")
    (folder / "dialogues_act_validation.txt").write_text("1 1 \n")
    (folder / "dialogues_emotion_validation.txt").write_text("0 0 \n")
    assert load_dailydialog("dev", root=tmp_path)[0].texts == ["Hi .", "Hello ."]


def test_length_mismatch_names_label_file_and_line(write_dd_original, tmp_path):
    root = write_dd_original([["One .", "Two ."], ["A .", "B .", "C ."], ["X .", "Y ."]],
                             [[1, 2], [1, 2, 3, 4], [1, 1]], [[0, 0], [0, 0, 0], [0, 0]])
    act_file = tmp_path / "dailydialog" / "original" / "dialogues_act_test.txt"
    with pytest.raises(DataFormatError) as info:
        load_dailydialog("test", root=root)
    assert str(info.value) == f"{act_file}:2: 4 labels, but line 2 of dialogues_test.txt has 3 utterances"
    report = LoadReport()
    convs = load_dailydialog("test", root=root, strict=False, report=report)
    assert [c.id for c in convs] == ["0", "2"] and report.skipped == {"length_mismatch": 1}


def test_line_count_mismatch_is_always_an_error(write_dd_original):
    root = write_dd_original([["One ."], ["Two ."]], [[1]], [[0], [0]])
    with pytest.raises(DataFormatError, match=r"dialogues_act_test.txt:2: 1 lines, but dialogues_test.txt has 2"):
        load_dailydialog("test", root=root, strict=False)


@pytest.mark.parametrize("texts,acts,emotions,reason,message", [
    ([["One .", "Two ."]], [[1, 7]], [[0, 0]], "unknown_label",
     r"dialogues_act_test.txt:1: unknown dailydialog/act label '7'"),
    ([["One .", "Two ."]], [[1, 1]], [[0, 9]], "unknown_label",
     r"dialogues_emotion_test.txt:1: unknown dailydialog/emotion label '9'"),
    (["One . __eou__  __eou__ Three . __eou__"], [[1, 1, 1]], [[0, 0, 0]], "empty_utterance",
     r"dialogues_test.txt:1: utterance 2 is empty"),
    ([""], [""], [""], "empty_utterance", r"dialogues_test.txt:1: empty line"),
])
def test_bad_dialogues(write_dd_original, texts, acts, emotions, reason, message):
    root = write_dd_original(texts + [["Good ."]], acts + [[1]], emotions + [[0]])
    with pytest.raises(DataFormatError, match=message):
        load_dailydialog("test", root=root)
    report = LoadReport()
    convs = load_dailydialog("test", root=root, strict=False, report=report)
    assert [c.texts for c in convs] == [["Good ."]] and report.skipped == {reason: 1}


def test_bad_utf8_in_text_file(write_dd_original, tmp_path):
    root = write_dd_original([["Caf PLACEHOLDER ."], ["Fine ."]], [[1], [1]], [[0], [0]])
    text = tmp_path / "dailydialog" / "original" / "dialogues_test.txt"
    text.write_bytes(text.read_bytes().replace(b"PLACEHOLDER", b"\xff"))
    with pytest.raises(DataFormatError, match=r"dialogues_test.txt:1: invalid UTF-8 byte 0xff"):
        load_dailydialog("test", root=root)
    report = LoadReport()
    assert [c.texts for c in load_dailydialog("test", root=root, strict=False, report=report)] == [["Fine ."]]
    assert report.skipped == {"bad_utf8": 1}


def test_nothing_there(tmp_path):
    with pytest.raises(DataNotFoundError, match="kgemo data download dailydialog"):
        load_dailydialog("test", root=tmp_path)
