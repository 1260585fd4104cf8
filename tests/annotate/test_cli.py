"""``kgemo annotate``: formats, options, and one-line errors (exit 2) for bad input files."""
import io
import json
import sys

import pytest
from annotate_data import CONVERSATION

from kgemo.annotate import Annotator
from kgemo.cli import main


@pytest.fixture
def tiny_from_pretrained(monkeypatch, tiny_encoder, tiny_atomic):
    """Make the CLI's Annotator.from_pretrained use the tiny encoder and ATOMIC table (the saved spec names an
    encoder that cannot be loaded by name); records the options the CLI passed."""
    original = Annotator.from_pretrained.__func__
    calls = []

    def fake(cls, name_or_path="default", device=None, **kwargs):
        calls.append({"model": str(name_or_path), "device": device, **kwargs})
        events = tiny_atomic if kwargs.pop("events") == "default" else None
        return original(cls, name_or_path, device or "cpu", encoder=tiny_encoder, events=events, **kwargs)

    monkeypatch.setattr(Annotator, "from_pretrained", classmethod(fake))
    return calls


@pytest.fixture
def conv_file(tmp_path):
    p = tmp_path / "conv.json"
    p.write_text(json.dumps({"id": "c1", "utterances": [{"speaker": s, "text": t} for s, t in CONVERSATION]}))
    return p


def test_table_is_the_default(conv_file, ket_model_dir, tiny_from_pretrained, capsys):
    assert main(["annotate", str(conv_file), "--model", str(ket_model_dir), "--width", "100",
                 "--min-event-similarity", "0.9"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["#", "speaker", "utterance", "emotion"]
    assert "I got the job" in out and "xReact: proud" in out        # exact ATOMIC heads: similarity 1
    assert max(len(x) for x in lines) <= 100
    assert tiny_from_pretrained[0]["model"] == str(ket_model_dir)


def test_json_and_jsonl_formats(conv_file, ket_model_dir, tiny_from_pretrained, capsys, tmp_path):
    assert main(["annotate", str(conv_file), "--model", str(ket_model_dir), "--format", "json", "--top-k", "2"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["conversation_id"] == "c1" and len(d["utterances"]) == 4
    assert all(len(u["concepts"]) <= 2 for u in d["utterances"])
    two = tmp_path / "two.jsonl"
    two.write_text("\n".join(json.dumps({"conversation_id": c, "speaker": "A", "text": t})
                             for c, t in [("a", "I am happy"), ("a", "my dog"), ("b", "I am sad")]))
    assert main(["annotate", str(two), "--model", str(ket_model_dir), "--format", "jsonl", "--events", "0"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["conversation_id"], r["index"]) for r in rows] == [("a", 0), ("a", 1), ("b", 0)]
    assert all(r["events"] == [] for r in rows)
    assert main(["annotate", str(two), "--model", str(ket_model_dir), "--format", "json"]) == 0
    assert [r["conversation_id"] for r in json.loads(capsys.readouterr().out)] == ["a", "b"]


def test_stdin_csv_and_output_file(ket_model_dir, tiny_from_pretrained, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"speaker,text\nA,I got the job\nB,so sad\n")))
    out = tmp_path / "out.json"
    assert main(["annotate", "-", "--model", str(ket_model_dir), "--format", "json", "-o", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert [u["text"] for u in json.loads(out.read_text())["utterances"]] == ["I got the job", "so sad"]


def test_missing_speaker_warning_is_one_line(tmp_path, ket_model_dir, tiny_from_pretrained, capsys):
    p = tmp_path / "c.csv"
    p.write_text("speaker,text\n,I got the job\n")
    assert main(["annotate", str(p), "--model", str(ket_model_dir)]) == 0
    err = capsys.readouterr().err
    assert "kgemo: warning: " in err and "without a speaker" in err and "Traceback" not in err


@pytest.mark.parametrize("content, match", [
    (b'[{"speaker": "A", "text": "ok"},\n{"speaker": "B", "text": "caf\xe9"}]', ":2: not valid UTF-8"),
    (b'{"utterances": [\n{"speaker": "A" "text": "x"}]}', ":2: invalid JSON: Expecting ',' delimiter"),
    (b"", "empty input"),
    (b'[{"speaker": "A", "text": "  "}]', "utterance 1 is empty"),
])
def test_bad_files_exit_2_with_one_line(tmp_path, capsys, content, match, tiny_from_pretrained):
    p = tmp_path / "bad.json"
    p.write_bytes(content)
    assert main(["annotate", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kgemo: error: ") and match in err and len(err.splitlines()) == 1
    assert str(p) in err or match == "utterance 1 is empty"
    assert tiny_from_pretrained == []  # the input is checked before any model is loaded


def test_missing_file_and_bad_model(tmp_path, conv_file, capsys):
    assert main(["annotate", str(tmp_path / "nope.json")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["annotate", str(conv_file), "--model", str(tmp_path / "nomodel")]) == 2
    assert "no such model folder" in capsys.readouterr().err


def test_bad_options_are_rejected(conv_file, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["annotate", str(conv_file), "--top-k", "-1"])
    assert exc.value.code == 2 and "is negative" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["annotate", str(conv_file), "--format", "xml"])


def test_atomic_column_only_for_close_matches(conv_file, ket_model_dir, tiny_from_pretrained, capsys):
    """KET does not read ATOMIC: by default no nearest-event inference is shown (none was close enough on dev
    data); --min-event-similarity asks for those at least that similar."""
    assert main(["annotate", str(conv_file), "--model", str(ket_model_dir), "--width", "100"]) == 0
    assert "ATOMIC" not in capsys.readouterr().out
    assert tiny_from_pretrained[-1]["min_event_similarity"] is None
    assert main(["annotate", str(conv_file), "--model", str(ket_model_dir), "--format", "json",
                 "--min-event-similarity", "0.9"]) == 0
    d = json.loads(capsys.readouterr().out)
    events = [e for u in d["utterances"] for e in u["events"]]
    assert events and all(e["score"] >= 0.9 and e["head"] for e in events)
    assert d["model"]["min_event_similarity"] == 0.9
    with pytest.raises(SystemExit):
        main(["annotate", str(conv_file), "--min-event-similarity", "2"])
