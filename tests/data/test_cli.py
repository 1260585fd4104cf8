from __future__ import annotations

import hashlib
import json
import re

import pytest

from kgemo.cli import main
from kgemo.data import download as dl

from .conftest import FIXTURES


def test_stats_table_on_a_fixture(capsys):
    assert main(["data", "stats", "iemocap", "--root", str(FIXTURES)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["iemocap", "train", "dev", "test"]
    cells = [re.split(r"\s{2,}", line.strip()) for line in out[1:]]
    rows = {c[0]: " ".join(c[1:]).split() for c in cells}
    assert rows["dialogues"] == ["2", "1", "2"]
    assert rows["utterances"] == ["7", "3", "4"]
    assert rows["speakers (distinct names)"] == ["2", "2", "2"]
    assert rows["dialogue length, max"] == ["4", "3", "2"]
    assert rows["dialogue length, mean"] == ["3.50", "3.00", "2.00"]
    assert "emotion (metric: weighted_f1)" in rows
    assert rows["neutral"] == ["3", "(42.9%)", "0", "(0.0%)", "0", "(0.0%)"]
    assert rows["excited"] == ["2", "(28.6%)", "0", "(0.0%)", "1", "(25.0%)"]


def test_stats_json_one_split(capsys):
    assert main(["data", "stats", "iemocap", "--split", "dev", "--root", str(FIXTURES), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert list(stats["splits"]) == ["dev"] and stats["metrics"] == {"emotion": "weighted_f1"}
    dev = stats["splits"]["dev"]
    assert (dev["dialogues"], dev["utterances"], dev["max_length"]) == (1, 3, 3)
    assert dev["labels"]["emotion"] == {"happy": 0, "sad": 1, "neutral": 0, "angry": 2, "excited": 0,
                                        "frustrated": 0}


def test_stats_lenient_reports_skips(iemocap_root, capsys):
    path = iemocap_root / "iemocap" / "iemocap_test_emotion.tsv"
    path.write_text(path.read_text().replace("\t0\t4", "\t0\t7"))
    assert main(["data", "stats", "iemocap", "--split", "test", "--root", str(iemocap_root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kgemo: error: ") and "iemocap_test_emotion.tsv:1" in err and len(err.splitlines()) == 1
    assert main(["data", "stats", "iemocap", "--split", "test", "--root", str(iemocap_root), "--lenient"]) == 0
    out = capsys.readouterr().out
    assert "test: skipped 0 rows, 1 dialogues {'unknown_label': 1}" in out


def test_stats_missing_data_is_one_line(tmp_path, capsys):
    assert main(["data", "stats", "meld", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "kgemo data download meld" in err


def test_layout_only_for_dailydialog(capsys):
    assert main(["data", "stats", "iemocap", "--root", str(FIXTURES), "--layout", "original"]) == 2
    assert "kgemo: error: --layout applies to dailydialog only" in capsys.readouterr().err


def test_list(capsys):
    assert main(["data", "list", "--root", str(FIXTURES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["dataset", "tasks"]
    by_name = {line.split()[0]: line for line in lines[1:]}
    assert set(by_name) == {"meld", "emorynlp", "dailydialog", "mastodon", "iemocap"}
    assert by_name["iemocap"].rstrip().endswith("local copy  train dev test")
    assert by_name["meld"].rstrip().endswith("-") and "emotion: weighted_f1" in by_name["meld"]


def test_data_without_action_prints_help(capsys):
    assert main(["data"]) == 1
    assert "stats" in capsys.readouterr().out


def test_download_from_a_folder(tmp_path, monkeypatch, capsys):
    data = b'[[{"utterance": "hi", "sentiment": "*", "act": "I"}]]'
    src = tmp_path / "src"
    src.mkdir()
    files = []
    for split in ("train", "dev", "test"):
        for name, content in ((f"{split}.json", data), (f"{split}_adj.txt", b"1 1-1\n")):
            (src / name).write_bytes(content)
            files.append(dl.RemoteFile(f"mastodon/{name}", "https://example.invalid/x",
                                       hashlib.sha256(content).hexdigest(), len(content)))
    monkeypatch.setitem(dl.MANIFEST, "mastodon", tuple(files))
    dest = tmp_path / "data"
    assert main(["data", "download", "mastodon", "--to", str(dest), "--from", str(src)]) == 0
    assert capsys.readouterr().out.strip() == f"mastodon: 6 files ready in {dest}"
    assert main(["data", "stats", "mastodon", "--root", str(dest), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["train"]["labels"]["sentiment"]["neutral"] == 1


def test_download_iemocap_without_source_explains(tmp_path, capsys):
    assert main(["data", "download", "iemocap", "--to", str(tmp_path)]) == 2
    assert "licensed to each user" in capsys.readouterr().err


@pytest.mark.integration
def test_stats_on_real_data(data_root, capsys):
    assert main(["data", "stats", "mastodon", "--root", str(data_root), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert [stats["splits"][s]["dialogues"] for s in ("train", "dev", "test")] == [243, 26, 267]
    assert [stats["splits"][s]["utterances"] for s in ("train", "dev", "test")] == [967, 108, 1142]
    assert stats["splits"]["train"]["labels"]["act"]["I"] == 477
    assert main(["data", "stats", "meld", "--split", "dev", "--root", str(data_root)]) == 0
    out = capsys.readouterr().out
    assert "  neutral" in out and "470 (42.4%)" in out
