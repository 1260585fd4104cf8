from __future__ import annotations

import pytest

import kgemo
import kgemo.data as data
from kgemo.data import DATASETS, DatasetSpec, LoadReport, dataset_checksums, dataset_files, load_dataset
from kgemo.errors import DataNotFoundError
from kgemo.storage import sha256_file

from .conftest import meld_row


def test_public_names():
    for name in ("Utterance", "Conversation", "as_conversation", "LabelSpace", "label_space", "LABEL_SPACES",
                 "EKMAN7", "to_ekman", "DATASETS", "DatasetSpec", "load_dataset", "dataset_files", "LoadReport",
                 "download_dataset"):
        assert name in data.__all__ and hasattr(data, name)
    assert kgemo.load_dataset is load_dataset


def test_specs():
    assert sorted(DATASETS) == ["dailydialog", "emorynlp", "iemocap", "mastodon", "meld"]
    expected = {
        "meld": {"emotion": "weighted_f1", "sentiment": "weighted_f1"},
        "emorynlp": {"emotion": "weighted_f1"},
        "iemocap": {"emotion": "weighted_f1"},
        "dailydialog": {"emotion": "micro_f1_no_neutral", "act": "macro_f1"},
        "mastodon": {"sentiment": "mastodon_sentiment_f1", "act": "mastodon_act_f1"},
    }
    for name, metrics in expected.items():
        spec = DATASETS[name]
        assert isinstance(spec, DatasetSpec) and spec.name == name
        assert dict(spec.metrics) == metrics and list(spec.tasks) == list(metrics)
        assert spec.splits == ("train", "dev", "test")
        for task in metrics:
            assert spec.label_space(task).name == f"{name}/{task}" and spec.metric(task) == metrics[task]
    assert len(DATASETS["mastodon"].tasks["act"]) == 15
    assert DATASETS["dailydialog"].tasks["emotion"].neutral == "neutral"
    assert not DATASETS["iemocap"].downloadable and DATASETS["meld"].downloadable
    with pytest.raises(KeyError, match="meld has no task 'act'"):
        DATASETS["meld"].label_space("act")


def test_spec_rejects_mismatched_tasks():
    with pytest.raises(ValueError, match="tasks .* and metrics .* differ"):
        DatasetSpec("x", {"emotion": data.label_space("meld", "emotion")}, {"act": "macro_f1"}, lambda s: [],
                    lambda s: [])


def test_split_aliases_options_and_names(write_meld):
    root = write_meld([meld_row(1, "Hi.")], split="dev")
    for split in ("dev", "val", "validation", "DEV"):
        assert load_dataset("meld", split, root=root)[0].split == "dev"
    with pytest.raises(ValueError, match="unknown split 'holdout'"):
        load_dataset("meld", "holdout", root=root)
    with pytest.raises(ValueError, match="unknown dataset 'friends'"):
        load_dataset("friends", "dev", root=root)
    with pytest.raises(TypeError, match=r"meld: unknown option\(s\) \['layout'\]"):
        load_dataset("meld", "dev", root=root, layout="original")
    report = LoadReport()
    load_dataset("MELD", "dev", root=root, report=report)
    assert (report.dataset, report.split, report.conversations, report.utterances) == ("meld", "dev", 1, 1)
    assert report.total_skipped == 0 and report.summary() == "meld/dev: loaded 1 dialogues, 1 utterances"


def test_files_and_checksums(write_meld):
    root = write_meld([meld_row(1, "Hi.")], split="test")
    files = dataset_files("meld", "test", root=root)
    assert files == [root / "meld" / "test_sent_emo.csv"]
    assert dataset_checksums("meld", "test", root=root) == {"meld/test_sent_emo.csv": sha256_file(files[0])}


def test_data_root_lookup(write_meld, monkeypatch, kgemo_home, tmp_path):
    root = write_meld([meld_row(1, "From KGEMO_DATA.")])
    monkeypatch.setenv("KGEMO_DATA", str(root))
    assert load_dataset("meld", "train")[0].texts == ["From KGEMO_DATA."]
    monkeypatch.setenv("KGEMO_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match="KGEMO_DATA=.*nowhere is not a directory"):
        load_dataset("meld", "train")
    with pytest.raises(DataNotFoundError, match="data root .* is not a directory"):
        load_dataset("meld", "train", root=tmp_path / "nowhere")


def test_downloads_under_kgemo_home_are_found(monkeypatch, kgemo_home):
    """Without KGEMO_DATA and without ../shared/data, the loaders look where download_dataset writes."""
    import kgemo.data._io as io_mod

    monkeypatch.delenv("KGEMO_DATA", raising=False)
    monkeypatch.setattr(io_mod, "data_root", lambda required=True: _no_root(required))
    with pytest.raises(DataNotFoundError, match="kgemo data download"):
        io_mod.resolve_root()
    (kgemo_home / "data").mkdir()
    assert io_mod.resolve_root() == kgemo_home / "data"


def _no_root(required):
    if required:
        raise DataNotFoundError("No dataset root found. ... `kgemo data download NAME` ...")
    return None


def test_metric_names_exist_in_kgemo_metrics():
    import kgemo.metrics as metrics
    for name, spec in DATASETS.items():
        for task, metric in spec.metrics.items():
            assert metric in metrics.METRICS
            assert metrics.dataset_metric(f"{name}/{task}") == metric
