"""Reading conversation files: JSON / JSONL / CSV layouts, and errors that name the file and line."""
import io
import json

import pytest

from kgemo.annotate import parse_conversations, read_conversations
from kgemo.errors import DataFormatError

UTTS = [{"speaker": "A", "text": "I got the job"}, {"speaker": "B", "text": "Congratulations!"}]


def _texts(convs):
    return [[u.text for u in c] for c in convs]


def test_json_layouts(tmp_path):
    layouts = {
        "conversation": {"id": "c1", "utterances": UTTS},
        "utterances": UTTS,
        "pairs": [["A", "I got the job"], ["B", "Congratulations!"]],
        "many": [{"id": "x", "utterances": UTTS}, {"utterances": UTTS[:1]}],
    }
    for name, obj in layouts.items():
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps(obj))
        convs = read_conversations(p)
        if name == "many":
            assert [c.id for c in convs] == ["x", "2"] and _texts(convs)[1] == ["I got the job"]
        else:
            assert len(convs) == 1 and _texts(convs) == [["I got the job", "Congratulations!"]]
            assert convs[0].speakers == ["A", "B"]
    assert read_conversations(tmp_path / "conversation.json")[0].id == "c1"


def test_jsonl_utterance_lines_grouped_by_conversation_id():
    lines = [{"conversation_id": "a", "speaker": "A", "text": "hi"}, {"conversation_id": "a", "speaker": "B",
                                                                          "text": "hello"},
             {"conversation_id": "b", "speaker": "A", "text": "bye"}]
    convs = parse_conversations("\n".join(json.dumps(x) for x in lines) + "\n\n", "f.jsonl", "jsonl")
    assert [c.id for c in convs] == ["a", "b"] and _texts(convs) == [["hi", "hello"], ["bye"]]
    # Without ids every utterance line belongs to one conversation; conversation lines stand alone.
    plain = "\n".join(json.dumps(u) for u in UTTS) + "\n" + json.dumps({"id": "z", "utterances": UTTS})
    convs = parse_conversations(plain, "f.jsonl")  # guessed: several top-level objects
    assert [c.id for c in convs] == ["1", "z"] and [len(c) for c in convs] == [2, 2]


def test_csv_with_and_without_conversation_column():
    convs = parse_conversations('speaker,text\nA,"Hello, you"\nB,hi\n', "f.csv")
    assert _texts(convs) == [["Hello, you", "hi"]] and convs[0].speakers == ["A", "B"]
    convs = parse_conversations("dialogue_id,Speaker,Utterance\n1,A,x\n2,B,y\n1,C,z\n", "f.csv", "csv")
    assert [c.id for c in convs] == ["1", "2"] and _texts(convs) == [["x", "z"], ["y"]]


def test_stdin_is_read_as_bytes():
    convs = read_conversations("-", stdin=io.BytesIO(json.dumps(UTTS).encode()))
    assert len(convs[0]) == 2


def test_missing_speaker_warns_and_names_the_file():
    with pytest.warns(UserWarning, match=r"f.csv: conversation 1: 1 utterance\(s\) without a speaker"):
        convs = parse_conversations("speaker,text\nA,hi\n,hello\n", "f.csv")
    assert convs[0].speakers == ["A", "speaker"]
    with pytest.warns(UserWarning, match="without a speaker"):
        parse_conversations(json.dumps([{"text": "hi"}]), "f.json")


@pytest.mark.parametrize("data, fmt, match", [
    (b'[{"speaker": "A", "text": "ok"},\n {"speaker": "B", "text": "caf\xe9"}]', None,
     r"f:2: not valid UTF-8 \(byte 0xe9 at column 31\)"),
    (b'speaker,text\nA,fine\nB,\xff\xfe bad\n', "csv", r"f:3: not valid UTF-8"),
    (b'{"utterances": [\n  {"speaker": "A", "text": "x"},\n  {"speaker": "B" "text": "y"}\n]}', "json",
     r"f:3: invalid JSON: Expecting ',' delimiter \(column 19\)"),
    (b'{"speaker": "A", "text": "x"}\n{"speaker": "B", "text": }\n', "jsonl", r"f:2: invalid JSON"),
    (b"", None, "empty input"),
    (b"  \n\t\n", None, "empty input"),
    (b"[]", None, "empty list"),
    (b'{"utterances": []}', None, "no utterances"),
    (b'[{"speaker": "A", "text": "x"}, {"speaker": "B", "text": "  "}]', None, "utterance 2 is empty"),
    (b"speaker,text\nA,hello\nB,   \n", "csv", r"f:3: empty or whitespace-only utterance"),
    (b'{"speaker": "A", "text": "x"}\n{"speaker": "B"}\n', "jsonl", r"f:2: no 'text' field"),
    (b"speaker,words\nA,hello\n", "csv", r"f:1: CSV header .* has no 'text' column"),
    (b"speaker,text\nA,hello,extra\n", "csv", r"f:2: 3 fields, the header has 2"),
    (b'[{"utterances": []}, {"speaker": "A", "text": "x"}]', "json", "mixing conversations"),
    (b'"a string"', "json", "expected a conversation object or a list"),
    (b"[1, 2]", "json", "utterance 1: expected a dict"),
    (b"speaker,text\n", "csv", "no utterances found"),
])
def test_bad_input_errors_name_the_line(data, fmt, match):
    with pytest.raises(DataFormatError, match=match):
        parse_conversations(data, "f", fmt)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        read_conversations(tmp_path / "nope.json")
    with pytest.raises(DataFormatError, match="is a directory"):
        read_conversations(tmp_path)


def test_utf8_bom_is_accepted():
    convs = parse_conversations("\ufeffspeaker,text\nA,héllo\n".encode("utf-8"), "f.csv")
    assert convs[0].texts == ["héllo"]
