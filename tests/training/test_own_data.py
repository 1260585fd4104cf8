"""Training on a dataset file of one's own (``data.datasets: [path/to/chats.jsonl]``): unlabelled turns, caches keyed
on the file's checksum, mixing with built-in data, config errors; with the packaged MiniLM: train, evaluate, report
and fine-tune from the example file (docs/your-data.md)."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from tiny_encoder import TinyEncoder

from kgemo.errors import KgemoError
from kgemo.graphs import get_builder
from kgemo.pipeline import InputPipeline
from kgemo.storage import sha256_file
from kgemo.training import ExperimentConfig, prepare_data, task_setup

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "data"
EXAMPLE = ROOT / "examples" / "my_chats.jsonl"


def write(folder: Path, lines: list[dict], tasks: str = "emotion: {labels: [neutral, joy, sadness], neutral: neutral}"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "chats.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    (folder / "chats.yaml").write_text(textwrap.dedent(f"""\
        tasks:
          {tasks}
        splits: given
        """))
    return path


def lines(joy="joy") -> list[dict]:
    return [{"id": f"{split}{k}", "split": split, "turns": [
        {"speaker": "A", "text": f"what a day {k}", "emotion": joy},
        {"speaker": "B", "text": "tell me", "emotion": None},
        {"speaker": "A", "text": f"my cat is gone {k}", "emotion": "sadness"},
        {"speaker": "B", "text": "oh no"}]}
        for split in ("train", "dev", "test") for k in range(3)]


def experiment(tmp_path, datasets, **data) -> ExperimentConfig:
    return ExperimentConfig.from_dict({
        "name": "own", "data": {"datasets": [str(d) for d in datasets], "tasks": ["emotion"], "root": str(FIXTURES),
                                "encoder": "tiny", **data},
        "model": {"name": "no_knowledge", "hidden": 16, "heads": 2},
        "train": {"epochs": 1, "batch_size": 2, "progress": False, "accelerator": "cpu"},
        "output_dir": str(tmp_path / "run")}, source="test.yaml")


def tiny_pipeline() -> InputPipeline:
    return InputPipeline(get_builder("conversation"), TinyEncoder(), encoder_name="tiny")


def test_unlabelled_turns_are_ignored_and_caches_key_on_the_file(tmp_path):
    path = write(tmp_path / "d", lines())
    config, pipe = experiment(tmp_path, [path]), tiny_pipeline()
    data = prepare_data(config, pipeline=pipe)
    assert data.label_spaces["emotion"].name == "chats/emotion" and data.metrics == {"emotion": "weighted_f1"}
    assert data.graphs["train"][0]["utterance"].y_emotion.tolist() == [1, -1, 2, -1]   # null and missing: -1
    calls = pipe.encoder.calls
    prepare_data(config, pipeline=pipe)
    assert pipe.encoder.calls == calls                                # the same file: features from the cache
    path.write_text(path.read_text().replace('"joy"', '"neutral"'))  # only labels change, not one text
    again = prepare_data(config, pipeline=pipe)
    assert pipe.encoder.calls > calls                                 # the file's checksum keys the features too
    assert again.graphs["train"][0]["utterance"].y_emotion.tolist() == [0, -1, 2, -1]


def test_mixing_with_built_in_data_when_label_spaces_agree(tmp_path):
    named = write(tmp_path / "named", [{**x, "turns": [{**t, "emotion": t.get("emotion") and "sad"}
                                                       for t in x["turns"]]} for x in lines()],
                  tasks="emotion: iemocap/emotion")
    spaces, metrics = task_setup(experiment(tmp_path, [named, "iemocap"]))
    assert spaces["emotion"].name == "iemocap/emotion" and metrics == {"emotion": "weighted_f1"}
    data = prepare_data(experiment(tmp_path, ["iemocap", named]), pipeline=tiny_pipeline())
    assert len(data.conversations["train"]) == 2 + 3                  # the fixture's 2 and the file's 3
    assert {c.dataset for c in data.conversations["test"]} == {"iemocap", str(named)}
    # the same labels listed by hand (not by name) agree too; other labels do not, unless data.label_space says
    listed = write(tmp_path / "listed", [], tasks="emotion: {labels: [happy, sad, neutral, angry, excited, "
                   "frustrated], neutral: neutral}")
    assert task_setup(experiment(tmp_path, ["iemocap", listed]))[0]["emotion"].name == "iemocap/emotion"
    no_neutral = write(tmp_path / "no_neutral", [], tasks="emotion: [happy, sad, neutral, angry, excited, frustrated]")
    with pytest.raises(KgemoError, match="different emotion label spaces"):  # neutral decides some metrics
        task_setup(experiment(tmp_path, ["iemocap", no_neutral]))
    other = write(tmp_path / "other", lines())
    with pytest.raises(KgemoError, match="different emotion label spaces .*chats/emotion.*iemocap/emotion"):
        task_setup(experiment(tmp_path, ["iemocap", other]))
    ekman = task_setup(experiment(tmp_path, [other], label_space="ekman7"))[0]["emotion"]
    assert ekman.name == "ekman7/emotion"


def test_config_errors_name_the_file(tmp_path):
    with pytest.raises(KgemoError, match="test.yaml: data.datasets: .*nothing.jsonl: no such dataset file"):
        experiment(tmp_path, [tmp_path / "nothing.jsonl"])
    path = write(tmp_path / "d", lines())
    with pytest.raises(KgemoError, match=r"has no \['sentiment'\] labels"):
        ExperimentConfig.from_dict({"data": {"datasets": [str(path)], "tasks": ["sentiment"]},
                                    "model": {"name": "no_knowledge"}}, source="test.yaml")
    (tmp_path / "d" / "chats.yaml").write_text("tasks: {emotion: [a, a]}\n")
    with pytest.raises(KgemoError, match="test.yaml: data.datasets: .*chats.yaml:1: emotion: label 'a' is listed"):
        experiment(tmp_path, [path])


# -- with the packaged MiniLM: train, evaluate, report, fine-tune -------------------------------------------------
@pytest.mark.slow
def test_train_evaluate_and_report_on_the_example_file(tmp_path, monkeypatch):
    from kgemo.annotate.split_report import SplitReport
    from kgemo.training import evaluate, fit, load_config

    monkeypatch.chdir(ROOT)                                           # data.datasets is relative to the checkout
    config = load_config(ROOT / "configs" / "example_own_data.yaml",
                         ["model={name: no_knowledge, hidden: 32, heads: 2}", "graph={window: 4}", "knowledge={}",
                          "train.init_from=null", "train.label_map={}", "train.epochs=2",
                          f"output_dir={tmp_path}/run"])
    result = fit(config)
    assert result["train_utterances"] == 57 and result["datasets"] == ["examples/my_chats.jsonl"]
    data = result["provenance"]["inputs"]["data"]["examples/my_chats.jsonl"]
    assert data == {"examples/my_chats.jsonl": sha256_file(EXAMPLE),
                    "examples/my_chats.yaml": sha256_file(EXAMPLE.with_suffix(".yaml"))}
    scored = evaluate(tmp_path / "run" / "model", "test")
    assert scored["scores"] == result["test"] and scored["utterances"] == 18
    report = SplitReport.from_model(tmp_path / "run", "test", device="cpu", events=None)
    assert report.summary()["scores"]["all"]["emotion"]["score"] == round(result["test"]["emotion"], 2)


@pytest.mark.slow
def test_finetune_reads_the_example_file(tmp_path):
    from kgemo.training.finetune import FinetuneConfig, finetune

    config = FinetuneConfig.from_dict({
        "name": "mine", "data": {"dataset": str(EXAMPLE), "tasks": ["emotion"]},
        "encoder": {"base": "default", "max_length": 32},
        "train": {"epochs": 1, "max_steps": 2, "batch_size": 8, "progress": False, "accelerator": "cpu"},
        "output_dir": str(tmp_path / "enc" / "{name}"), "run_dir": str(tmp_path / "runs" / "{name}")},
        source="test.yaml")
    metrics = finetune(config).metrics
    assert set(metrics["dev"]) == {"emotion"} and set(metrics["test"]) == {"emotion"}
    assert sha256_file(EXAMPLE) in json.dumps(metrics["provenance"]["inputs"]["data"])
