from __future__ import annotations

import logging

import pytest

from kgemo.data import LoadReport, label_space, load_dataset
from kgemo.data.meld import load_meld
from kgemo.errors import DataFormatError, DataNotFoundError

from .conftest import MELD_HEADER, csv_bytes, meld_row


# --- real data ----------------------------------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize("split,dialogues,utterances", [("train", 1038, 9989), ("dev", 114, 1109),
                                                         ("test", 280, 2610)])
def test_published_counts(data_root, split, dialogues, utterances):
    convs = load_dataset("meld", split, root=data_root)
    assert len(convs) == dialogues
    assert sum(len(c) for c in convs) == utterances
    assert all(c.dataset == "meld" and c.split == split for c in convs)
    emotions, sentiments = label_space("meld", "emotion"), label_space("meld", "sentiment")
    for c in convs:
        for u in c:
            assert u.labels["emotion"] in emotions.labels and u.labels["sentiment"] in sentiments.labels


@pytest.mark.integration
def test_order_ids_and_text_repair(data_root):
    convs = load_meld("train", root=data_root)
    ids = [int(c.id) for c in convs]
    assert ids == sorted(ids) and 60 not in ids  # ID 60 is absent in the official release
    for c in convs:
        uids = [int(u.id) for u in c]
        assert uids == sorted(uids)
    first = convs[0][0]
    assert first.speaker == "Chandler"
    assert first.text.startswith("also I was the point person on my company\u2019s transition")
    # C1 control characters (cp1252 punctuation decoded as Latin-1 upstream) are all mapped away.
    assert not any(0x80 <= ord(ch) < 0xA0 for c in convs for u in c for ch in u.text)


@pytest.mark.integration
def test_histogram_matches_pandas(data_root):
    import pandas as pd  # in the `test` extra (pip install -e '.[test]'): missing means a broken test install
    frame = pd.read_csv(data_root / "meld" / "test_sent_emo.csv")
    expected = frame.groupby("Emotion").size().to_dict()
    convs = load_meld("test", root=data_root)
    got: dict[str, int] = {}
    for c in convs:
        for u in c:
            got[u.labels["emotion"]] = got.get(u.labels["emotion"], 0) + 1
    assert got == expected
    assert got["neutral"] == 1256 and got["fear"] == 50
    assert len(convs) == frame["Dialogue_ID"].nunique()


# --- fixtures -----------------------------------------------------------------------------------------------------

def test_groups_and_orders_by_utterance_id(write_meld):
    rows = [meld_row(1, "Second.", dia=3, utt=1), meld_row(2, "First, \"quoted\", text.", "Ross", "neutral",
                                                             "neutral", dia=3, utt=0),
            meld_row(3, "Other dialogue.", dia=1, utt=0)]
    convs = load_meld("train", root=write_meld(rows))
    assert [c.id for c in convs] == ["1", "3"]
    assert convs[1].texts == ['First, "quoted", text.', "Second."]
    assert convs[1].speakers == ["Ross", "Joey"]
    assert convs[1][0].labels == {"emotion": "neutral", "sentiment": "neutral"}
    assert convs[1].meta == {"season": 1, "episode": 1}


def test_root_may_be_the_meld_folder_itself(write_meld):
    root = write_meld([meld_row(1, "Hi.")])
    assert len(load_meld("train", root=root / "meld")) == 1


def _raw(*rows, header=MELD_HEADER) -> bytes:
    return csv_bytes(header, list(rows))


def test_malformed_row_names_file_and_line(write_meld):
    good = meld_row(1, "Fine.")
    raw = _raw(good) + b"2,an, unquoted, comma,Joey,joy,positive,0,1,1,1,a,b\n"
    root = write_meld(raw=raw)
    with pytest.raises(DataFormatError) as info:
        load_meld("train", root=root)
    assert info.value.line == 3 and str(info.value).startswith(str(root / "meld" / "train_sent_emo.csv") + ":3:")
    assert "expected 11 fields" in str(info.value)


def test_unclosed_quote_is_reported_at_its_start(write_meld):
    raw = _raw(meld_row(1, "Fine.")) + b'2,"never closed,Joey,joy,positive,0,1,1,1,a,b\n3,x,Joey,joy,positive,0,2\n'
    with pytest.raises(DataFormatError, match=r":3: .*unclosed quote"):
        load_meld("train", root=write_meld(raw=raw))


def test_non_integer_ids(write_meld):
    with pytest.raises(DataFormatError, match=r":2: Dialogue_ID / Utterance_ID must be integers"):
        load_meld("train", root=write_meld([meld_row(1, "Hi.", dia="x")]))


def test_unknown_label(write_meld):
    rows = [meld_row(1, "Hi."), meld_row(2, "Ugh.", emotion="happy", utt=1)]
    with pytest.raises(DataFormatError) as info:
        load_meld("train", root=write_meld(rows))
    assert info.value.line == 3 and info.value.dialogue == 0
    assert "unknown meld/emotion label 'happy'" in str(info.value)


def test_empty_utterance_and_missing_speaker(write_meld):
    with pytest.raises(DataFormatError, match=r":2: dialogue 0: empty utterance"):
        load_meld("train", root=write_meld([meld_row(1, "   ")]))
    with pytest.raises(DataFormatError, match=r":2: dialogue 0: missing speaker"):
        load_meld("train", root=write_meld([meld_row(1, "Hi.", speaker="")]))


def test_duplicate_utterance_id(write_meld):
    with pytest.raises(DataFormatError, match=r":3: dialogue 0: Utterance_ID 0 appears twice"):
        load_meld("train", root=write_meld([meld_row(1, "Hi."), meld_row(2, "Again.")]))


def test_missing_column_is_always_an_error(write_meld):
    header = [h for h in MELD_HEADER if h != "Sentiment"]
    raw = csv_bytes(header, [[v for h, v in zip(MELD_HEADER, meld_row(1, "Hi.")) if h != "Sentiment"]])
    for strict in (True, False):
        with pytest.raises(DataFormatError, match=r":1: missing column\(s\) \['Sentiment'\]"):
            load_meld("train", root=write_meld(raw=raw), strict=strict)


def test_bad_utf8_names_line_and_strict_false_skips_it(write_meld):
    raw = _raw(meld_row(1, "Fine."), meld_row(2, "Bad PLACEHOLDER here.", utt=1), meld_row(3, "Also fine.", utt=2))
    raw = raw.replace(b"PLACEHOLDER", b"caf\xe9")  # Latin-1, not UTF-8
    root = write_meld(raw=raw)
    with pytest.raises(DataFormatError) as info:
        load_meld("train", root=root)
    assert info.value.line == 3 and "invalid UTF-8 byte 0xe9 at column 10" in str(info.value)
    report = LoadReport()
    convs = load_meld("train", root=root, strict=False, report=report)
    assert convs[0].texts == ["Fine.", "Also fine."]
    assert report.skipped == {"bad_utf8": 1} and report.skipped_rows == 1


def test_strict_false_counts_every_reason(write_meld, caplog):
    raw = _raw(meld_row(1, "Good one."),
               meld_row(2, "Unknown label.", emotion="happy", utt=1),
               meld_row(3, "", utt=2),
               meld_row(4, "No speaker.", speaker=" ", utt=3),
               meld_row(5, "Duplicate.", utt=0),
               meld_row(6, "Good two.", dia=1)) + b"7,too,few\n"
    report = LoadReport(max_examples=2)
    with caplog.at_level(logging.WARNING, logger="kgemo.data"):
        convs = load_meld("train", root=write_meld(raw=raw), strict=False, report=report)
    assert [c.texts for c in convs] == [["Good one."], ["Good two."]]
    assert report.skipped == {"unknown_label": 1, "empty_utterance": 1, "missing_speaker": 1, "duplicate_id": 1,
                              "malformed_row": 1}
    assert (report.conversations, report.utterances, report.skipped_rows) == (2, 2, 5)
    assert len(report.examples) == 2 and ":3:" in report.examples[0]
    assert report.dataset == "meld" and report.split == "train"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "skipped 5 rows" in warnings[0].getMessage()


def test_bom_and_crlf_are_accepted(write_meld):
    raw = b"\xef\xbb\xbf" + _raw(meld_row(1, "Hi."), meld_row(2, "Bye.", utt=1)).replace(b"\n", b"\r\n")
    convs = load_meld("train", root=write_meld(raw=raw))
    assert convs[0].texts == ["Hi.", "Bye."]


def test_missing_file_says_how_to_get_it(tmp_path):
    (tmp_path / "meld").mkdir()
    with pytest.raises(DataNotFoundError, match="kgemo data download meld"):
        load_meld("dev", root=tmp_path)
