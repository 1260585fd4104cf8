"""Exporting a dataset to the file format of one's own (kgemo.data.export): the file loads back as the very same
conversations, and (integration) a model trained from it scores exactly as one trained from the built-in loader."""
from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from kgemo.cli import main
from kgemo.data import (DATASETS, export_dataset, get_dataset, load_dataset, read_header, write_dataset_file)

from .conftest import FIXTURES, meld_row


def same_conversations(name: str, path, root=None) -> None:
    """Every split of ``path`` loads as the built-in loader's conversations, field by field (but ``dataset``)."""
    for split in ("train", "dev", "test"):
        ours, theirs = load_dataset(str(path), split), load_dataset(name, split, root=root)
        assert len(ours) == len(theirs), (name, split)
        for a, b in zip(ours, theirs):
            assert (a.id, a.split, a.utterances, a.reply_to, a.meta) == (b.id, b.split, b.utterances, b.reply_to,
                                                                         b.meta), (name, split, b.id)
            assert [dict(u.labels) for u in a] == [dict(u.labels) for u in b]
    spec, built_in = get_dataset(str(path)), DATASETS[name]
    assert dict(spec.tasks) == dict(built_in.tasks) and dict(spec.metrics) == dict(built_in.metrics)


def test_iemocap_fixture_round_trip(tmp_path):
    jsonl, header = export_dataset("iemocap", tmp_path / "out", root=FIXTURES)
    assert (jsonl.name, header.name) == ("iemocap.jsonl", "iemocap.yaml")
    assert header.read_text().startswith("# Header of iemocap.jsonl")
    assert read_header(jsonl).split_rule is None                     # every line names its split
    same_conversations("iemocap", jsonl, FIXTURES)


def test_meld_round_trip_keeps_repaired_text_speakers_ids_and_meta(write_meld, tmp_path):
    for split, dia in (("train", 0), ("dev", 0), ("test", 3)):     # dialogue ids repeat across splits, as in MELD
        root = write_meld([meld_row(1, "company\x92s   ", "Ross", "surprise", "positive", dia, 1),
                           meld_row(0, "Ünïcode — ok", "The Interviewer", "neutral", "neutral", dia, 0),
                           meld_row(2, "bye", "Ross", "anger", "negative", dia + 1, 0)], split)
    jsonl, _ = export_dataset("meld", tmp_path / "out", root=root)
    same_conversations("meld", jsonl, root)
    first = json.loads(jsonl.read_text(encoding="utf-8").splitlines()[0])
    assert first["turns"][0] == {"speaker": "The Interviewer", "text": "Ünïcode — ok", "emotion": "neutral",
                                 "sentiment": "neutral", "id": "0"}
    assert first["turns"][1]["text"] == "company’s" and first["meta"] == {"season": 1, "episode": 1}


def test_mastodon_round_trip_keeps_reply_links(write_mastodon, tmp_path):
    for split in ("train", "dev", "test"):
        root = write_mastodon([[{"utterance": "hi <url>", "sentiment": "+", "act": "I"},
                                {"utterance": "who?", "sentiment": "*", "act": "Q"},
                                {"utterance": "me", "sentiment": "-", "act": "A"}]], ["3 1-1 2-2 3-3 1-3"], split)
    jsonl, _ = export_dataset("mastodon", tmp_path / "out", root=root)
    same_conversations("mastodon", jsonl, root)
    assert load_dataset(str(jsonl), "dev")[0].reply_to == [(0, 0), (1, 1), (2, 2), (0, 2)]


def test_write_dataset_file_of_conversations(tmp_path):
    convs = [dataclasses.replace(c, split=None) for c in load_dataset("iemocap", "train", root=FIXTURES)]
    header = {"name": "mine", "tasks": {"emotion": {"labels": list(DATASETS["iemocap"].tasks["emotion"].labels)}},
              "splits": {"rule": "random", "seed": 0, "dev": 0.0, "test": 0.5}}
    jsonl, _ = write_dataset_file(tmp_path / "mine.jsonl", header, {None: convs})
    assert "split" not in json.loads(jsonl.read_text().splitlines()[0])
    placed = load_dataset(str(jsonl), "train") + load_dataset(str(jsonl), "test")
    assert sorted(c.id for c in placed) == sorted(c.id for c in convs)
    with pytest.raises(ValueError, match="ends in .jsonl"):
        write_dataset_file(tmp_path / "mine.json", header, {})


def test_cli_export(tmp_path, capsys):
    assert main(["data", "export", "iemocap", "--root", str(FIXTURES), "--out", str(tmp_path / "x")]) == 0
    assert "iemocap: wrote" in capsys.readouterr().out and (tmp_path / "x" / "iemocap.yaml").is_file()
    assert main(["data", "validate", str(tmp_path / "x" / "iemocap.jsonl")]) == 0


# -- with the real datasets ---------------------------------------------------------------------------------------
REAL = ("meld", "emorynlp", "dailydialog", "mastodon")


@pytest.fixture(scope="module")
def exported(data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported")
    return {name: export_dataset(name, out, root=data_root)[0] for name in REAL}


@pytest.mark.integration
@pytest.mark.parametrize("name", REAL)
def test_real_datasets_round_trip(exported, data_root, name):
    same_conversations(name, exported[name], data_root)


def _experiment(name: str, dataset: str, tmp_path, data_root):
    from kgemo.training import ExperimentConfig

    joint = name == "mastodon"
    return ExperimentConfig.from_dict({
        "name": name, "seed": 0,
        "data": {"datasets": [dataset], "tasks": list(DATASETS[name].tasks), "max_conversations": 6,
                 "root": str(data_root), "encoder": "default"},
        # Co-GAT reads Mastodon's reply links: the file must carry them for its scores to agree
        "model": {"name": "cogat", "hidden": 32, "heads": 2} if joint else
                 {"name": "no_knowledge", "hidden": 32, "heads": 2},
        "graph": {"speaker_links": "reply_to", "window": None, "cross_window": None} if joint else {"window": 4},
        "train": {"epochs": 2, "batch_size": 2, "lr": 1e-3, "threads": 1, "progress": False,
                  "accelerator": "cpu"},
        "output_dir": str(tmp_path / dataset.replace("/", "_") / "run"),
    }, source="test")


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("name", REAL)
def test_training_from_the_exported_file_scores_exactly_as_the_built_in_loader(exported, data_root, tmp_path, name):
    """The goal of issue 24: a slice (6 conversations per split) trained for 2 epochs with the packaged MiniLM,
    once from the built-in loader and once from the exported file: the same dev and test scores, bit for bit, and
    the same best weights."""
    from kgemo.models import load_model
    from kgemo.training import fit

    runs = {}
    for dataset in (name, str(exported[name])):
        config = _experiment(name, dataset, tmp_path, data_root)
        runs[dataset] = (fit(config), config.run_dir / "model")
    (built_in, a), (from_file, b) = runs.values()
    assert built_in["dev"] == from_file["dev"] and built_in["test"] == from_file["test"]
    assert built_in["best_epoch"] == from_file["best_epoch"]
    assert built_in["train_utterances"] == from_file["train_utterances"] > 0
    wa, wb = load_model(a)[0].state_dict(), load_model(b)[0].state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # provenance records the file and its header by sha256, like any dataset's files
    recorded = from_file["provenance"]["inputs"]["data"][str(exported[name])]
    assert sorted(recorded) == sorted([exported[name].as_posix(), exported[name].with_suffix(".yaml").as_posix()])
