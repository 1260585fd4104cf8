"""Every ``kgemo`` sub-command meets a user's mistake with exit code 2 and one ``error:`` line, never a traceback.

``BAD`` holds, per sub-command, invocations with a wrong argument, a missing file or folder, and an unreadable
one (a folder where a file is expected, or bytes that are not UTF-8 / not the expected format). The sub-commands
are enumerated from ``build_parser()``, so a new sub-command without its rows here fails
``test_every_subcommand_has_bad_input_cases`` (rows of a sub-command this tree does not register are skipped).
Everything runs in-process through ``kgemo.cli.main``; no case loads a model or a dataset (each fails before that),
so the whole file takes seconds.
"""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest

from kgemo.cli import build_parser, main

#: Garbage that is neither UTF-8 nor any format kgemo reads.
GARBAGE = b"\xff\xfe\x00\x80 not text \xc3\x28\n"
#: The error line: ``kgemo: error: ...`` (KgemoError, input OSError) or argparse's ``kgemo <cmd>: error: ...``.
ERROR_LINE = re.compile(r"^kgemo(?: [a-z][\w-]*)*: error: (.+)$")
KINDS = ("wrong", "missing", "unreadable")


class Paths:
    """The files and folders the cases point at, all under ``tmp_path``; ``{name}`` in an argv is one of them."""

    def __init__(self, tmp: Path):
        self.missing = str(tmp / "missing.json")
        self.missing_dir = str(tmp / "missing_dir")
        self.folder = str(tmp / "folder")
        os.makedirs(self.folder)
        self.empty_root = str(tmp / "empty_root")
        os.makedirs(self.empty_root)
        for suffix in ("json", "yaml", "txt", "ttl", "csv"):
            (tmp / f"garbage.{suffix}").write_bytes(GARBAGE)
            setattr(self, f"garbage_{suffix}", str(tmp / f"garbage.{suffix}"))
        # A KB / model folder whose metadata files are garbage.
        bad = tmp / "bad_cache"
        bad.mkdir()
        for name in ("kb.json", "atomic.json", "config.json"):
            (bad / name).write_bytes(GARBAGE)
        self.bad_cache = str(bad)
        # A data root whose MELD files are garbage.
        root = tmp / "bad_root"
        (root / "meld").mkdir(parents=True)
        for split in ("train", "dev", "test"):
            (root / "meld" / f"{split}_sent_emo.csv").write_bytes(GARBAGE)
        self.bad_root = str(root)
        self.out = str(tmp / "out")
        (tmp / "conversation.csv").write_text("speaker,text\nA,I got the job\n")
        self.conversation = str(tmp / "conversation.csv")


#: sub-command → [(kind, argv, what the error line must contain)]. ``{x}`` is an attribute of :class:`Paths`.
BAD: dict[str, list[tuple[str, list[str], list[str]]]] = {
    "data list": [
        ("wrong", ["data", "list", "--bogus"], ["unrecognized arguments: --bogus"]),
        ("missing", ["data", "list", "--root", "{missing_dir}"], ["--root", "{missing_dir}", "no such folder"]),
        ("unreadable", ["data", "list", "--root", "{garbage_txt}"], ["--root", "{garbage_txt}", "not a folder"]),
    ],
    "data stats": [
        ("wrong", ["data", "stats", "nosuchdataset"], ["invalid choice: 'nosuchdataset'"]),
        ("wrong", ["data", "stats", "meld", "--root", "{bad_root}", "--layout", "original"],
         ["--layout applies to dailydialog only"]),
        ("missing", ["data", "stats", "meld", "--root", "{empty_root}"], ["train_sent_emo.csv not found"]),
        ("unreadable", ["data", "stats", "meld", "--root", "{bad_root}"],
         ["train_sent_emo.csv:1", "invalid UTF-8"]),
    ],
    "data download": [
        ("wrong", ["data", "download", "nosuchdataset"], ["invalid choice: 'nosuchdataset'"]),
        ("missing", ["data", "download", "mastodon", "--from", "{missing_dir}", "--to", "{out}"],
         ["{missing_dir}", "not found"]),
        ("unreadable", ["data", "download", "mastodon", "--from", "{garbage_txt}", "--to", "{out}"],
         ["{garbage_txt}", "is not mastodon/"]),
        ("unreadable", ["data", "download", "mastodon", "--to", "{garbage_txt}"], ["--to", "not a folder"]),
    ],
    "data validate": [
        ("wrong", ["data", "validate", "{garbage_json}", "--max-problems", "-1"], ["--max-problems", "negative"]),
        ("missing", ["data", "validate", "{missing}"], ["{missing}", "no such file"]),
        ("unreadable", ["data", "validate", "{folder}"], ["{folder}", "is a folder"]),
        # its header (garbage.yaml beside garbage.json) is not UTF-8: one line naming it
        ("unreadable", ["data", "validate", "{garbage_json}"], ["garbage.yaml:1", "invalid UTF-8"]),
    ],
    "data export": [
        ("wrong", ["data", "export", "nosuchdataset", "--out", "{out}"], ["invalid choice: 'nosuchdataset'"]),
        ("missing", ["data", "export", "meld", "--root", "{empty_root}", "--out", "{out}"],
         ["train_sent_emo.csv not found"]),
        ("unreadable", ["data", "export", "meld", "--root", "{bad_root}", "--out", "{out}"],
         ["train_sent_emo.csv:1", "invalid UTF-8"]),
        ("unreadable", ["data", "export", "meld", "--out", "{garbage_txt}"], ["--out", "not a folder"]),
    ],
    "encoders install": [
        ("wrong", ["encoders", "install", "nosuchencoder"], ["invalid choice: 'nosuchencoder'"]),
        ("missing", ["encoders", "install", "mpnet", "--from", "{missing_dir}", "--to", "{out}"],
         ["--from", "{missing_dir}", "no such folder"]),
        ("missing", ["encoders", "install", "mpnet", "--from", "{folder}", "--to", "{out}"],
         ["{folder}", "volume 1 of 5 is missing"]),
        ("unreadable", ["encoders", "install", "mpnet", "--from", "{garbage_txt}", "--to", "{out}"],
         ["--from", "{garbage_txt}", "not a folder"]),
        ("unreadable", ["encoders", "install", "mpnet", "--to", "{garbage_txt}"], ["--to", "not a folder"]),
    ],
    "kb build": [
        # --source is repeatable for atomic only; two for conceptnet used to end in a TypeError from pathlib.
        ("wrong", ["kb", "build", "conceptnet", "--source", "{folder}", "--source", "{empty_root}"],
         ["kb build conceptnet reads one --source", "got 2"]),
        ("wrong", ["kb", "build", "comet", "--texts", "{garbage_txt}", "--source", "{folder}"],
         ["does not read --source"]),
        ("wrong", ["kb", "build", "atomic", "--nlist", "0"], ["--nlist", "at least 1"]),
        ("missing", ["kb", "build", "conceptnet", "--source", "{missing}"], ["--source", "{missing}", "no such"]),
        ("missing", ["kb", "build", "comet", "--texts", "{missing}"], ["--texts", "{missing}", "no such file"]),
        ("unreadable", ["kb", "build", "comet", "--texts", "{folder}"], ["--texts", "{folder}", "not a file"]),
        ("unreadable", ["kb", "build", "comet", "--texts", "{garbage_txt}"], ["{garbage_txt}", "not valid UTF-8"]),
        ("unreadable", ["kb", "build", "conceptnet", "--source", "{garbage_txt}", "--out", "{out}"],
         ["{garbage_txt}", "does not match the manifest"]),
    ],
    "kb info": [
        ("wrong", ["kb", "info", "default", "extra"], ["unrecognized arguments: extra"]),
        ("missing", ["kb", "info", "{missing_dir}"], ["no knowledge cache named", "{missing_dir}"]),
        ("unreadable", ["kb", "info", "{bad_cache}"], ["kb.json", "not valid JSON"]),
    ],
    "kb neighbours": [
        ("wrong", ["kb", "neighbours", "some text", "-k", "0"], ["-k", "at least 1"]),
        ("missing", ["kb", "neighbours", "some text", "--kb", "{missing_dir}"], ["no ConceptNet KB", "{missing_dir}"]),
        ("unreadable", ["kb", "neighbours", "some text", "--kb", "{bad_cache}"], ["kb.json", "not valid JSON"]),
    ],
    "kb search": [
        ("wrong", ["kb", "search", "some text", "-k", "x"], ["-k", "'x' is not a whole number"]),
        ("missing", ["kb", "search", "some text", "--kb", "{missing_dir}"], ["no ATOMIC table", "{missing_dir}"]),
        ("unreadable", ["kb", "search", "some text", "--kb", "{bad_cache}"], ["atomic.json", "not valid JSON"]),
    ],
    "kb export-rdf": [
        ("wrong", ["kb", "export-rdf", "--text", "a", "--concepts", "b"], ["not allowed with argument"]),
        ("missing", ["kb", "export-rdf", "--kb", "{missing_dir}"], ["no ConceptNet KB", "{missing_dir}"]),
        ("unreadable", ["kb", "export-rdf", "--kb", "{bad_cache}"], ["kb.json", "not valid JSON"]),
        ("unreadable", ["kb", "export-rdf", "--out", "{folder}"], ["--out", "{folder}", "is a folder"]),
    ],
    "kb import-rdf": [
        ("wrong", ["kb", "import-rdf", "{garbage_ttl}"], ["the following arguments are required: --out"]),
        ("missing", ["kb", "import-rdf", "{missing}", "--out", "{out}"], ["{missing}", "no such file"]),
        ("unreadable", ["kb", "import-rdf", "{folder}", "--out", "{out}"], ["{folder}", "not a file"]),
        ("unreadable", ["kb", "import-rdf", "{garbage_ttl}", "--out", "{out}"], ["{garbage_ttl}", "cannot parse"]),
    ],
    "train": [
        ("wrong", ["train", "{garbage_yaml}", "--seeds", "x"], ["--seeds", "'x' is not a whole number"]),
        ("missing", ["train", "{missing}"], ["config", "{missing}", "no such file"]),
        ("unreadable", ["train", "{folder}"], ["config", "{folder}", "not a file"]),
        ("unreadable", ["train", "{garbage_yaml}"], ["{garbage_yaml}", "UTF-8"]),
    ],
    "finetune": [
        ("wrong", ["finetune", "{garbage_yaml}", "--seeds", "x"], ["--seeds", "invalid int value: 'x'"]),
        ("missing", ["finetune", "{missing}"], ["{missing}"]),
        ("unreadable", ["finetune", "{folder}"], ["{folder}", "is a folder"]),
        ("unreadable", ["finetune", "{garbage_yaml}"], ["{garbage_yaml}", "UTF-8"]),
    ],
    "evaluate": [
        ("wrong", ["evaluate", "{folder}", "--split", "nope"], ["--split", "invalid choice: 'nope'"]),
        ("wrong", ["evaluate", "{folder}", "--max-conversations", "0"], ["--max-conversations", "at least 1"]),
        ("missing", ["evaluate", "{missing_dir}"], ["model", "{missing_dir}", "no such folder"]),
        ("unreadable", ["evaluate", "{garbage_json}"], ["model", "{garbage_json}", "not a folder"]),
        ("unreadable", ["evaluate", "{bad_cache}"], ["config.json", "not valid JSON"]),
    ],
    "calibrate": [
        ("wrong", ["calibrate", "{folder}", "--split", "nope"], ["--split", "invalid choice: 'nope'"]),
        ("wrong", ["calibrate", "{folder}", "--dataset", "nope"], ["--dataset", "nope"]),
        ("missing", ["calibrate", "{missing_dir}"], ["{missing_dir}", "no such model folder"]),
        ("unreadable", ["calibrate", "{garbage_json}"], ["{garbage_json}", "not a kgemo model folder"]),
        ("unreadable", ["calibrate", "{bad_cache}"], ["config.json", "not valid JSON"]),
    ],
    "annotate": [
        ("wrong", ["annotate", "{garbage_json}", "--top-k", "-1"], ["--top-k", "-1 is negative"]),
        ("wrong", ["annotate", "{garbage_json}", "--format", "xml"], ["--format", "invalid choice: 'xml'"]),
        ("missing", ["annotate", "{missing}"], ["{missing}", "no such file"]),
        ("missing", ["annotate", "{conversation}", "--model", "{missing_dir}"], ["{missing_dir}", "no such model"]),
        ("unreadable", ["annotate", "{folder}"], ["{folder}", "is a directory"]),
        ("unreadable", ["annotate", "{garbage_json}"], ["{garbage_json}", "not valid UTF-8"]),
        ("unreadable", ["annotate", "{conversation}", "-o", "{folder}"], ["--output", "{folder}", "is a folder"]),
    ],
    "report": [
        ("wrong", ["report", "{folder}"], ["the following arguments are required: --html"]),
        ("missing", ["report", "{missing_dir}", "--html", "{out}"], ["{missing_dir}", "no such model folder"]),
        ("unreadable", ["report", "{bad_cache}", "--html", "{out}"], ["config.json", "not valid JSON"]),
    ],
}


def leaf_commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    """Every runnable sub-command of ``parser`` ("data stats", "train", ...), read from its sub-parsers."""
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not actions:
        return [prefix]
    return [leaf for a in actions for name, sub in a.choices.items()
            for leaf in leaf_commands(sub, f"{prefix} {name}".strip())]


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """``kgemo.cli.main(argv)`` → (exit code, stdout, stderr); argparse's usage errors exit through SystemExit."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def check_one_error(code, out: str, err: str, expected: list[str]) -> str:
    assert "Traceback" not in out + err, err
    assert code == 2, (code, err)
    lines = [line for line in err.splitlines() if ERROR_LINE.match(line)]
    assert len(lines) == 1, err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def test_every_subcommand_has_bad_input_cases():
    commands = leaf_commands(build_parser())
    assert {"annotate", "train", "evaluate", "data stats", "kb build"} <= set(commands)  # the walk finds them
    missing = sorted(set(commands) - set(BAD))
    assert not missing, f"sub-commands without bad-input cases in BAD: {missing}"
    for command, cases in BAD.items():
        assert {kind for kind, _, _ in cases} == set(KINDS), f"{command}: needs a case of each kind {KINDS}"


CASES = [pytest.param(command, argv, expected, id=f"{command}-{kind}-{i}")
         for command, cases in BAD.items() for i, (kind, argv, expected) in enumerate(cases)]


@pytest.fixture(scope="module")
def registered():
    return set(leaf_commands(build_parser()))


@pytest.mark.parametrize("command, argv, expected", CASES)
def test_bad_input_is_one_error_line(command, argv, expected, registered, tmp_path, monkeypatch, capsys):
    if command not in registered:
        pytest.skip(f"`kgemo {command}` is not registered in this tree")
    monkeypatch.chdir(tmp_path)
    paths = Paths(tmp_path)
    fill = lambda s: s.format(**vars(paths))  # noqa: E731
    code, out, err = run_cli([fill(a) for a in argv], capsys)
    check_one_error(code, out, err, [fill(e) for e in expected])


# -- files the user may not read (chmod 000) ---------------------------------------------------------------------
UNREADABLE = {
    "annotate": (["annotate", "{file}"], "conv.json"),
    "train": (["train", "{file}"], "config.yaml"),
    "finetune": (["finetune", "{file}"], "config.yaml"),
    "kb import-rdf": (["kb", "import-rdf", "{file}", "--out", "{out}"], "graph.ttl"),
    "kb build": (["kb", "build", "comet", "--texts", "{file}"], "texts.txt"),
}


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: chmod 000 does not stop root from reading the file (the folder and "
                           "invalid-bytes cases above cover unreadable input)")
@pytest.mark.parametrize("command", sorted(UNREADABLE))
def test_file_without_read_permission(command, registered, tmp_path, capsys):
    if command not in registered:
        pytest.skip(f"`kgemo {command}` is not registered in this tree")
    argv, name = UNREADABLE[command]
    path = tmp_path / name
    path.write_text("speaker,text\nA,hi\n")
    path.chmod(0)
    try:
        code, out, err = run_cli([a.format(file=path, out=tmp_path / "out") for a in argv], capsys)
    finally:
        path.chmod(0o600)
    check_one_error(code, out, err, [str(path), "permission denied"])


# -- the top-level guard: input errors become one line, bugs keep their traceback --------------------------------
@pytest.fixture
def evaluate_runs(monkeypatch):
    """Replace what ``kgemo evaluate`` runs (its model argument must still be an existing folder)."""
    import kgemo.cli.evaluate as command

    return lambda run: monkeypatch.setattr(command, "run", run)


def raising(exc: BaseException):
    def run(args):
        raise exc
    return run


@pytest.mark.parametrize("cls, errno, strerror", [
    (FileNotFoundError, 2, "No such file or directory"),
    (PermissionError, 13, "Permission denied"),    # what chmod 000 gives a user who is not root
    (NotADirectoryError, 20, "Not a directory"),
])
def test_oserror_on_a_user_path_is_one_line(cls, errno, strerror, evaluate_runs, tmp_path, capsys):
    inside = tmp_path / "model" / "weights.safetensors"
    (tmp_path / "model").mkdir()
    evaluate_runs(raising(cls(errno, strerror, str(inside))))
    code, out, err = run_cli(["evaluate", str(tmp_path / "model")], capsys)
    assert check_one_error(code, out, err, []) == f"kgemo: error: {inside}: {strerror.lower()}"


def test_atomic_write_over_a_folder_names_the_target_not_the_temporary(evaluate_runs, tmp_path, capsys):
    target = tmp_path / "model"
    target.mkdir()
    evaluate_runs(raising(IsADirectoryError(21, "Is a directory", "/var/tmp/.model.x1y2.tmp", None, str(target))))
    code, out, err = run_cli(["evaluate", str(target)], capsys)
    assert check_one_error(code, out, err, []) == f"kgemo: error: {target}: is a directory"


@pytest.mark.parametrize("exc", [
    TypeError("a bug"),
    KeyError("a bug"),
    FileNotFoundError(2, "No such file or directory", "/nonexistent-kgemo-package-resource/x.json"),
    PermissionError(13, "Permission denied"),                          # no path at all
    UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),  # no user file being read
], ids=["TypeError", "KeyError", "missing-package-file", "no-path", "decode-not-a-user-file"])
def test_bugs_keep_their_traceback(exc, evaluate_runs, tmp_path):
    evaluate_runs(raising(exc))
    with pytest.raises(type(exc)):
        main(["evaluate", str(tmp_path)])


def test_decode_error_names_the_user_file_being_read(evaluate_runs, tmp_path, capsys):
    bad = tmp_path / "model" / "notes.txt"
    bad.parent.mkdir()
    bad.write_bytes(GARBAGE)
    evaluate_runs(lambda args: bad.read_text(encoding="utf-8"))
    code, out, err = run_cli(["evaluate", str(bad.parent)], capsys)
    line = check_one_error(code, out, err, [])
    assert line == f"kgemo: error: {bad}: not valid UTF-8 (invalid start byte: byte 0xff at offset 0); save it as UTF-8"


def test_verbose_shows_the_traceback_of_an_input_error_too(evaluate_runs, tmp_path, capsys):
    evaluate_runs(raising(FileNotFoundError(2, "No such file or directory", str(tmp_path / "x"))))
    code, _, err = run_cli(["-v", "evaluate", str(tmp_path)], capsys)
    assert code == 2 and "Traceback" in err
    assert err.rstrip().endswith(f"kgemo: error: {tmp_path / 'x'}: no such file or directory")
