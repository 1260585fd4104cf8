"""Dataset files of one's own (kgemo.data.jsonl): the header, the lines, splits, strict / lenient, the registry."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from kgemo.data import (DATASETS, LoadReport, SplitRule, dataset_checksums, dataset_files, file_dataset,
                        get_dataset, label_space, load_dataset, read_header)
from kgemo.data.jsonl import parse_file
from kgemo.errors import DataFormatError, DataNotFoundError
from kgemo.storage import sha256_file

ROOT = Path(__file__).resolve().parents[2]
HEADER = """\
name: chats
tasks:
  emotion: {labels: [neutral, joy, anger], neutral: neutral, aliases: {happy: joy}}
splits: given
"""


def turn(text="hi", speaker="A", **labels):
    return {"speaker": speaker, "text": text, **labels}


def conv(cid, split="train", turns=None, **extra):
    line = {"id": cid, "turns": [turn(emotion="joy"), turn("and you?", "B")] if turns is None else turns, **extra}
    if split is not None:
        line["split"] = split
    return line


def write(folder: Path, lines, header: str = HEADER, name: str = "chats") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.jsonl"
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    (folder / f"{name}.yaml").write_text(textwrap.dedent(header), encoding="utf-8")
    return path


def test_loads_conversations_with_unlabelled_turns_as_context(tmp_path):
    path = write(tmp_path, [conv("a", turns=[turn("I won!", "Ann", emotion="happy"), turn("Won what?", "Bob"),
                                             turn("The lottery", "Ann", emotion=None)],
                                 reply_to=[[0, 1]], meta={"source": "me"}),
                            conv("b", "dev"), conv("c", "test")])
    convs = load_dataset(str(path), "train")
    assert [c.id for c in convs] == ["a"]
    c = convs[0]
    assert (c.dataset, c.split, c.speakers, c.texts) == (str(path), "train", ["Ann", "Bob", "Ann"],
                                                         ["I won!", "Won what?", "The lottery"])
    assert c.labels("emotion") == ["joy", None, None]          # alias happy → joy; missing and null: unlabelled
    space = get_dataset(str(path)).label_space("emotion")
    assert space.name == "chats/emotion" and space.encode(c.labels("emotion")) == [1, -1, -1]
    assert c.reply_to == [(0, 1)] and c.meta == {"source": "me"}
    assert [x.id for x in load_dataset(str(path), "val")] == ["b"]


def test_the_spec_comes_from_the_header(tmp_path):
    path = write(tmp_path, [conv("a")], header="""\
        tasks:
          emotion: meld/emotion
          act: {labels: [inform, question], metric: macro_f1}
        """)
    spec = get_dataset(str(path))
    assert spec is not DATASETS.get(str(path)) and spec.name == str(path) and list(spec.tasks) == ["emotion", "act"]
    assert spec.label_space("emotion") is label_space("meld", "emotion")  # a known space, named: that very space
    assert dict(spec.metrics) == {"emotion": "weighted_f1", "act": "macro_f1"}
    assert spec.label_space("act").name == "chats/act"                 # name: defaults to the file's stem
    assert read_header(path).split_rule is None and not spec.downloadable


@pytest.mark.parametrize("header, line, match", [
    ("tasks: {emotion: [a, a]}", 1, "label 'a' is listed twice"),
    ("tasks:\n  emotion:\n    labels: [a, b]\n    metric: f1\n", 4, "unknown metric 'f1'; known: .*weighted_f1"),
    ("tasks:\n  emotion:\n    labels: [a, b]\n    metric: micro_f1_no_neutral\n", 4, "has no neutral class"),
    ("tasks:\n  emotion: {labels: [a, b], neutral: c}\n", 2, "neutral 'c' is not one of the labels"),
    ("tasks:\n  feeling: [a, b]\n", 2, "unknown task 'feeling'"),
    ("tasks:\n  emotion: [a, b]\nsplits: {rule: random, dev: 0.5, test: 0.5}\n", 3, "leaves nothing to train"),
    ("tasks:\n  emotion: [a, b]\nsplits: {rule: shuffle}\n", 3, "the only rule is 'random'"),
    ("tasks:\n  emotion: [a, b]\nlabel: x\n", 3, "unknown key 'label'"),
    ("tasks:\n  emotion: [a, b\n", 3, "invalid YAML"),
    ("tasks:\n  emotion: ekman9/emotion\n", 2, "unknown label space 'ekman9/emotion'"),
])
def test_header_errors_name_the_header_file_and_line(tmp_path, header, line, match):
    path = write(tmp_path, [conv("a")], header=header)
    with pytest.raises(DataFormatError, match=match) as info:
        read_header(path)
    assert str(info.value).startswith(f"{tmp_path / 'chats.yaml'}:{line}: ")


def test_missing_header_or_file(tmp_path):
    path = write(tmp_path, [conv("a")])
    (tmp_path / "chats.yaml").rename(tmp_path / "chats.yml")
    assert read_header(path).path.name == "chats.yml"                 # .yml is found too
    (tmp_path / "chats.yml").unlink()
    with pytest.raises(DataNotFoundError, match="expected chats.yaml"):
        load_dataset(str(path), "train")
    with pytest.raises(DataNotFoundError, match="no such dataset file"):
        get_dataset(str(tmp_path / "nothing.jsonl"))


BAD_LINES = [
    (conv("a"), None, None),
    (conv("a"), "duplicate_id", "id 'a' is used on line 1 too"),
    (conv("b", turns=[turn(emotion="sad")]), "unknown_label", "turn 1: emotion label 'sad' is not declared"),
    (conv("c", turns=[]), "empty_utterance", "no turns"),
    (conv("d", turns=[turn(" ")]), "empty_utterance", "turn 1: empty text"),
    (conv("e", turns=[{"speaker": "A"}]), "empty_utterance", "turn 1: missing 'text'"),
    (conv("f", turns=[turn(speaker="")]), "missing_speaker", "turn 1: missing speaker"),
    ('{"id": "g", "turns": [}', "malformed_row", "invalid JSON"),
    (conv("h", turns=[turn(emotoin="joy")]), "malformed_row", "unknown key 'emotoin'"),
    (conv("i", turns=[turn(act="inform")]), "unknown_label", "declares no act task"),
    (conv("j", split=None), "missing_split", "no 'split'"),
    (conv("k", split="holdout"), "malformed_row", "split 'holdout' is not one of"),
    (conv("l", reply_to=[[0, 5]]), "bad_adjacency", "reply_to"),
    (conv("m", turns=[turn(emotion=["joy"])]), "malformed_row", "emotion must be a label name"),
    ({"turns": [turn()], "split": "train"}, "malformed_row", "'id' must be"),
]


def test_strict_raises_the_first_bad_line_and_lenient_skips_every_bad_line(tmp_path):
    path = write(tmp_path, [line for line, _, _ in BAD_LINES] + [conv("a", "dev"), conv("z", "test")])
    with pytest.raises(DataFormatError) as info:
        load_dataset(str(path), "test")                               # strict: the file as a whole must be valid
    assert str(info.value).startswith(f"{path}:2: ") and "used on line 1 too" in str(info.value)
    problems = parse_file(path).problems
    assert [(p.line, p.reason) for p in problems] == [(n, reason) for n, (_, reason, _) in
                                                      enumerate(BAD_LINES, start=1) if reason]
    for p, (_, _, match) in zip(problems, [b for b in BAD_LINES if b[1]]):
        assert str(p.error).startswith(f"{path}:{p.line}: ") and match in str(p.error), str(p.error)
    report = LoadReport()
    train = load_dataset(str(path), "train", strict=False, report=report)
    assert [c.id for c in train] == ["a"]                              # the first "a" is kept
    assert report.skipped_dialogues == len(problems) and report.skipped["unknown_label"] == 2
    dev = load_dataset(str(path), "dev", strict=False)
    assert [c.id for c in dev] == ["a"]                                # the same id in another split is fine


def test_split_rule_is_seeded_by_id_not_by_line_order(tmp_path):
    header = HEADER.replace("splits: given", "splits: {rule: random, seed: 3, dev: 0.2, test: 0.2}")
    lines = [conv(f"c{k}", split=None) for k in range(20)] + [conv("fixed", split="test")]
    path = write(tmp_path / "a", lines, header)
    other = write(tmp_path / "b", lines[::-1], header)
    splits = {s: sorted(c.id for c in load_dataset(str(path), s)) for s in ("train", "dev", "test")}
    assert [len(v) for v in splits.values()] == [12, 4, 5]             # 20 placed: 12 / 4 / 4, and the given one
    assert "fixed" in splits["test"]
    assert splits == {s: sorted(c.id for c in load_dataset(str(other), s)) for s in splits}
    assert [c.id for c in load_dataset(str(path), "train")] == sorted(splits["train"], key=lambda i: int(i[1:]))
    reseeded = write(tmp_path / "c", lines, header.replace("seed: 3", "seed: 4"))
    assert sorted(c.id for c in load_dataset(str(reseeded), "dev")) != splits["dev"]
    dup = write(tmp_path / "d", [conv("x", split=None), conv("x", split=None), conv("y", split=None)], header)
    with pytest.raises(DataFormatError, match=":2: id 'x' is used on line 1 too; ids placed by the split rule"):
        load_dataset(str(dup), "train")


def test_split_rule_shares():
    rule = SplitRule(seed=0, dev=0.1, test=0.1)
    assert rule.assign([]) == []
    assert rule.assign(["a"]) == ["train"]                             # never every conversation to dev / test
    assert sorted(rule.assign(list("abc"))) == ["dev", "test", "train"]  # a share above 0 gets at least one
    got = rule.assign([str(k) for k in range(1000)])
    assert (got.count("dev"), got.count("test")) == (100, 100)
    assert SplitRule(dev=0.0, test=0.25).assign(list("abcd")).count("dev") == 0


def test_files_and_checksums_cover_the_file_and_its_header(tmp_path, monkeypatch):
    path = write(tmp_path, [conv("a"), conv("b", "dev")])
    assert dataset_files(str(path), "dev") == [path, tmp_path / "chats.yaml"]
    sums = dataset_checksums(str(path), "train")
    assert sums == {path.as_posix(): sha256_file(path), (tmp_path / "chats.yaml").as_posix():
                    sha256_file(tmp_path / "chats.yaml")}
    monkeypatch.chdir(tmp_path)                                        # relative paths stay relative in the record
    assert list(dataset_checksums("chats.jsonl", "train")) == ["chats.jsonl", "chats.yaml"]
    # an edited file is read again (the parse is cached by size and mtime), and its checksum changes
    before = sums[path.as_posix()]
    path.write_text(path.read_text() + json.dumps(conv("c")) + "\n")
    assert [c.id for c in load_dataset(str(path), "train")] == ["a", "c"]
    assert dataset_checksums(str(path), "train")[path.as_posix()] != before


def test_the_example_dataset_loads_and_is_valid():
    from kgemo.data import check_file

    path = ROOT / "examples" / "my_chats.jsonl"
    check = check_file(path)
    assert check.ok and not check.warnings, check.format()
    sizes = {s: st["dialogues"] for s, st in check.stats.items()}
    assert sizes == {"train": 10, "dev": 3, "test": 3}
    assert all(st["labels"]["emotion"]["neutral"] for st in check.stats.values())
    assert 10 <= sum(sizes.values()) <= 20
