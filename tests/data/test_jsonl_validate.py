"""``kgemo data validate``: every bad line by file and line, histograms per split, what lenient mode skips."""
from __future__ import annotations

import json

import pytest

from kgemo.cli import main
from kgemo.data import check_file

from .test_jsonl import BAD_LINES, HEADER, ROOT, conv, turn, write


def test_check_file_lists_every_problem_and_histograms(tmp_path):
    path = write(tmp_path, [line for line, _, _ in BAD_LINES] + [conv("a", "dev"), conv("z", "test")])
    check = check_file(path)
    assert not check.ok and len(check.problems) == len(BAD_LINES) - 1
    assert check.skipped["unknown_label"] == 2 and check.skipped["empty_utterance"] == 3
    assert {s: st["dialogues"] for s, st in check.stats.items()} == {"train": 1, "dev": 1, "test": 1}
    assert check.stats["train"]["labels"]["emotion"] == {"neutral": 0, "joy": 1, "anger": 0}
    assert check.stats["train"]["unlabelled"] == {"emotion": 1}
    assert any("no train example of ['neutral', 'anger']" in w for w in check.warnings)
    text = check.format()
    lines = text.splitlines()
    assert f"{path}:2: id 'a' is used on line 1 too, in the same split (train)" in lines
    assert any(line.startswith(f"{path}:3: dialogue b: turn 1: emotion label 'sad'") for line in lines)
    assert lines[-1].startswith(f"{len(check.problems)} problem(s): a strict load (kgemo train) stops at the first")
    assert "joy" in text and "(unlabelled)" in text
    assert "would skip" not in check.format(lenient=True) and "lenient: 14 conversation(s) skipped" in \
        check.format(lenient=True)
    assert json.loads(json.dumps(check.to_dict()))["problems"][0]["line"] == 2


def test_cli_validate_exit_status_and_one_line_header_errors(tmp_path, capsys):
    good = write(tmp_path / "good", [conv("a"), conv("b", "dev"), conv("c", "test", [turn(emotion="anger"),
                                                                                      turn("ok", emotion="neutral")])])
    assert main(["data", "validate", str(good)]) == 0
    out = capsys.readouterr().out
    assert "3 conversations, 6 turns load" in out and out.rstrip().endswith("ok: no problems")
    bad = write(tmp_path / "bad", [conv("a"), conv("a"), conv("b", "dev"), conv("c", "test")])
    assert main(["data", "validate", str(bad)]) == 1                  # a strict load would fail
    assert f"{bad}:2: id 'a'" in capsys.readouterr().out
    assert main(["data", "validate", str(bad), "--lenient"]) == 0     # something loads
    capsys.readouterr()
    assert main(["data", "validate", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["skipped"] == {"duplicate_id": 1}
    (tmp_path / "bad" / "chats.yaml").write_text(HEADER.replace("[neutral, joy, anger]", "[neutral, joy, joy]"))
    assert main(["data", "validate", str(bad)]) == 2                  # the header: one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith(f"kgemo: error: {tmp_path / 'bad' / 'chats.yaml'}:3: emotion: label 'joy' is listed twice")
    assert len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exit_:                          # a missing file: argparse's usage error
        main(["data", "validate", str(tmp_path / "nothing.jsonl")])
    assert exit_.value.code == 2 and "nothing.jsonl: no such file" in capsys.readouterr().err


def test_cli_validate_the_example(capsys):
    assert main(["data", "validate", str(ROOT / "examples" / "my_chats.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "16 conversations" in out and "rule random (seed 0, dev 0.2, test 0.2)" in out
