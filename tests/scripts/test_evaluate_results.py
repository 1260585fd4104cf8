"""``scripts/evaluate.py --all``: docs/results.md from fake runs, with every reference row read from the JSON files
that ``scripts/lr_floor.py`` and ``scripts/benchmark.py joint`` write (no number typed into the script)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from script_loader import ROOT, load_script


@pytest.fixture(scope="module")
def evaluate():
    return load_script("scripts/evaluate.py")


def write_run(runs: Path, config: str, seed: int, model: str, dataset: str, test: dict, dev: dict, metrics: dict):
    path = runs / config / f"seed{seed}" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "complete": True, "config": config, "model": model, "datasets": [dataset], "metrics": metrics,
        "seed": seed, "encoder": "default", "knowledge": None, "test": test, "dev": dev, "best_epoch": 3,
        "train_utterances_per_s": 1000.0}))


@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "runs"
    # Seeds 1 and 2: configs/ket_meld.yaml reports its selection seed 0 apart (tests/scripts/test_results_provenance.py).
    for seed, score in ((1, 50.0), (2, 52.0)):
        write_run(runs, "no_knowledge_meld", seed, "no_knowledge", "meld", {"emotion": score}, {"emotion": 40.0},
                  {"emotion": "weighted_f1"})
        write_run(runs, "ket_meld", seed, "ket", "meld", {"emotion": score + 1}, {"emotion": 41.0},
                  {"emotion": "weighted_f1"})
    write_run(runs, "cogat_mastodon", 0, "cogat", "mastodon", {"act": 58.0, "sentiment": 55.0},
              {"act": 60.0, "sentiment": 61.0}, {"act": "mastodon_act_f1", "sentiment": "mastodon_sentiment_f1"})
    return runs


FLOORS = {"description": "LR on frozen features.", "command": "python scripts/lr_floor.py", "date": "2030-01-02",
          "floors": {"meld": {"emotion": {"metric": "weighted_f1", "test": 12.34}},
                     "mastodon": {"act": {"metric": "mastodon_act_f1", "test": 11.11},
                                  "sentiment": {"metric": "mastodon_sentiment_f1", "test": 22.22}}}}
OFFICIAL = {"command": "python scripts/benchmark.py joint --official /x/Co-GAT", "log_date": "2030-01-03",
            "official_command": "python -u main.py -rs 0",
            "rows": [{"case": "official run (best-dev-sentiment epoch)", "act": 33.33, "sentiment": 44.44},
                     {"case": "official run (best-dev-act epoch)", "act": 66.66, "sentiment": 77.77}]}


def table_row(md: str, first_cell: str, after: str = "") -> list[str]:
    # These fake runs record no provenance, so their rows carry the stale mark (tests/scripts/
    # test_results_provenance.py checks the mark); here it is read past.
    text = (md[md.index(after):] if after else md).replace(" **(stale)** |", " |")
    line = next(line for line in text.splitlines() if line.startswith(f"| {first_cell} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_reference_rows_come_from_the_json_files(evaluate, runs, tmp_path):
    docs = tmp_path / "docs"
    (docs / "benchmarks").mkdir(parents=True)
    (docs / "floors.json").write_text(json.dumps(FLOORS))
    (docs / "benchmarks" / "joint_official.json").write_text(json.dumps(OFFICIAL))
    assert evaluate.write_all(runs, docs) == 0
    md = (docs / "results.md").read_text()

    # ERC: the floor column of every MELD row is floors.json's number; the mean ± std comes from the runs.
    assert table_row(md, "no_knowledge", "#### meld") == ["no_knowledge", "MiniLM (frozen)", "51.00 ± 1.41",
                                                          "40.00 ± 0.00", "–", "2", "–", "12.34"]
    assert table_row(md, "ket", "#### meld")[-1] == "12.34"
    assert table_row(md, "ket", "#### meld")[4] == "+1.00"
    # Joint: the official run's two rows, then the Mastodon LR floor, all from the JSONs.
    assert table_row(md, "official run (best-dev-sentiment epoch)")[1:3] == ["33.33", "44.44"]
    assert table_row(md, "official run (best-dev-act epoch)")[1:3] == ["66.66", "77.77"]
    assert table_row(md, "logistic regression on frozen MiniLM, no context")[1:3] == ["11.11", "22.22"]
    # The producing commands are named.
    assert "`python scripts/lr_floor.py` (2030-01-02), docs/floors.json" in md
    assert "`python -u main.py -rs 0`): `python scripts/benchmark.py joint --official /x/Co-GAT` (2030-01-03)" in md
    # No number of the old hard-coded tables survives.
    for old in ("55.82", "48.36", "53.68", "57.56", "45.13"):
        assert old not in md
    assert json.loads((docs / "results.json").read_text())["ket_meld"]["seeds"] == [1, 2]


def test_missing_reference_files_leave_their_rows_out(evaluate, runs, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    assert evaluate.write_all(runs, docs) == 0
    md = (docs / "results.md").read_text()
    assert table_row(md, "ket", "#### meld")[-1] == "–"
    assert "official" not in md.split("## Joint")[1] and "logistic regression" not in md
    assert "not measured (docs/floors.json missing; run `python scripts/lr_floor.py`)" in md


def test_the_committed_reference_files_have_every_row_evaluate_reads(evaluate):
    refs = evaluate.read_references(ROOT / "docs")
    for ds in evaluate.ERC_DATASETS:
        assert isinstance(evaluate.floor(refs, ds, "emotion"), float), ds
    rows = evaluate.joint_references(refs, "mastodon")
    assert len(rows) == 3 and all(set(scores) == {"act", "sentiment"} for _, scores in rows)
    assert refs["floors"]["command"].startswith("python scripts/lr_floor.py")
    assert refs["official"]["command"].startswith("python scripts/benchmark.py joint --official")


# -- scripts/bench/joint.py: the official main.py output → the numbers in joint_official.json ---------------------
def official_log(updates: list[tuple[int, str, float, float]], epochs: int = 4) -> str:
    """Lines in the format of RaleLee/Co-GAT main.py's prints."""
    lines = ["{", ' "data_dir": "dataset/mastodon"', "}", ""]
    for e in range(epochs):
        lines += ["[Epoch{:4d}], train loss is {:.4f}, cost {:.4f} s.".format(e, 1.0 / (e + 1), 10.0 + e),
                  "On dev, sentiment f1: 0.5000, act f1: 0.5000", "On test, sentiment f1: 0.4000, act f1 0.4000",
                  "Dev and test cost {:.4f} s.\n".format(3.0)]
        for epoch, base, sent, act in updates:
            if epoch == e:
                lines.append("<Epoch {:4d}>, Update (base on {}) test score: sentiment f1: {:.4f} (r: "
                             "{:.4f}, p: {:.4f}), act f1: {:.4f} (r: {:.4f}, p: {:.4f})"
                             ";".format(epoch, base, sent, 0.5, 0.5, act, 0.5, 0.5))
    return "\n".join(lines) + "\n"


def test_parse_official_log_keeps_the_last_update_of_each_task():
    joint = load_script("scripts/bench/joint.py")
    log = official_log([(0, "sent", 0.30, 0.50), (0, "act", 0.30, 0.50), (1, "sent", 0.4513, 0.5756),
                        (2, "act", 0.3959, 0.5985)])
    parsed = joint.parse_official_log(log)
    assert parsed == {"epochs": 4, "s_per_epoch": 11.5,
                      "best_dev_sentiment": {"epoch": 1, "sentiment": 45.13, "act": 57.56},
                      "best_dev_act": {"epoch": 2, "sentiment": 39.59, "act": 59.85}}
    doc = joint.official_json({**parsed, "seed": 0, "official_command": "x", "log": "l", "log_date": "d"}, "cmd")
    assert [(r["act"], r["sentiment"]) for r in doc["rows"]] == [(57.56, 45.13), (59.85, 39.59)]


def test_parse_official_log_refuses_other_output():
    joint = load_script("scripts/bench/joint.py")
    with pytest.raises(ValueError, match="not the output of the official"):
        joint.parse_official_log(official_log([(0, "sent", 0.3, 0.5)]))  # no act update: a truncated log


def test_blocks_rows_from_earlier_machines_and_the_linear_head(evaluate, runs, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    # A row recorded earlier (no run folder here) is kept; a config run again replaces its row.
    earlier = {"model": "ket", "datasets": ["meld"], "metrics": {"emotion": "weighted_f1"}, "seeds": [0, 1, 2],
               "encoder": "default", "knowledge": None, "tags": {"context": "bidirectional"}, "command": "c",
               "test": {"emotion": [57.0, 57.2, 57.3]}, "dev": {"emotion": [54.0, 55.0, 54.0]}, "epochs": [8, 7, 9],
               "train_utterances_per_s": [1.0, 1.0, 1.0]}
    (docs / "results.json").write_text(json.dumps({"ket_bidirectional_meld": earlier,
                                                   "ket_meld": {**earlier, "test": {"emotion": [1.0]}}}))
    ft = runs / "finetune" / "minilm-full-meld" / "seed0" / "metrics.json"
    ft.parent.mkdir(parents=True)
    ft.write_text(json.dumps({"complete": True, "config": "minilm-full-meld", "model": "encoder_linear_head",
                              "datasets": ["meld"], "metrics": {"emotion": "weighted_f1"}, "seed": 0, "mode": "full",
                              "encoder": "minilm-full-meld", "context": "past2", "test": {"emotion": 61.06},
                              "dev": {"emotion": 57.32}, "best_epoch": 2}))
    write_run(runs, "ket_meld_finetuned", 0, "ket", "meld", {"emotion": 62.5}, {"emotion": 58.0},
              {"emotion": "weighted_f1"})
    write_run(runs, "sw_probe", 0, "ket", "meld", {"emotion": 99.0}, {"emotion": 99.0}, {"emotion": "weighted_f1"})
    assert evaluate.write_all(runs, docs) == 0
    md = (docs / "results.md").read_text()
    saved = json.loads((docs / "results.json").read_text())
    assert saved["ket_bidirectional_meld"]["test"]["emotion"] == [57.0, 57.2, 57.3]   # kept
    assert saved["ket_meld"]["test"]["emotion"] == [51.0, 53.0]                        # replaced by the runs
    assert "sw_probe" not in saved and "99.00" not in md                               # not a config: left out
    fine = md.split("### Fine-tuned encoder")[1]
    assert table_row(fine, "encoder + linear head, no graph")[1:4] == ["minilm-full-meld", "61.06", "57.32"]
    assert saved["minilm-full-meld"]["command"] == \
        "kgemo finetune configs/finetune_meld.yaml name=minilm-full-meld encoder.mode=full"
    assert table_row(md.split("### Frozen encoder, bidirectional")[1], "ket")[2] == "57.17 ± 0.15"


def test_rows_carry_their_configs_tags(evaluate, runs, tmp_path):
    # The trainer copies a config's tags into metrics.json as top-level keys; the row takes them from the config.
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "ket_meld.yaml").write_text("name: ket_meld\ntags: {context: past, selection: score}\n")
    (configs / "no_knowledge_meld.yaml").write_text("name: no_knowledge_meld\n")
    rows = evaluate.summarise(evaluate.collect(runs, configs))
    assert rows["ket_meld"]["tags"] == {"context": "past", "selection": "score"}
    assert rows["no_knowledge_meld"]["tags"] == {}
    assert "cogat_mastodon" not in rows                       # no config of that name: left out


def test_row_commands_keep_an_override_with_a_space_as_one_argument(evaluate):
    """A recorded override such as ``lora.target_modules=[q, v]`` is quoted in the row's command, so
    scripts/reproduce.py (shlex.split) passes it on as the one argument the run was given."""
    import shlex

    base = {"complete": True, "model": "encoder_linear_head", "datasets": ["meld"], "seed": 0, "mode": "lora",
            "metrics": {"emotion": "weighted_f1"}, "encoder": "mpnet-lora-meld", "context": "past2",
            "test": {"emotion": 61.0}, "dev": {"emotion": 57.0}, "best_epoch": 0}
    overrides = ["name=mpnet-lora-meld", "encoder.base=mpnet", "lora.target_modules=[q, v]"]
    base["provenance"] = {"commit": "a" * 40, "dirty": [], "inputs": {},
                          "config": {"file": "configs/finetune_meld.yaml", "overrides": overrides}}
    rows = evaluate.summarise({"mpnet-lora-meld": [base]})
    argv = shlex.split(rows["mpnet-lora-meld"]["command"])
    assert argv == ["kgemo", "finetune", "configs/finetune_meld.yaml", *overrides]


def test_rows_name_their_encoder_never_an_alias_or_a_path(evaluate, runs, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    feature_id = {"inputs": {"encoder": {"name": "default-annotator",
                                         "id": "sentence:minilm-lora-qkvd-meld@1ce344a40322:max128:past2"}}}
    earlier = {"model": "ket", "datasets": ["meld"], "metrics": {"emotion": "weighted_f1"}, "seeds": [0],
               "knowledge": None, "tags": {}, "command": "c", "test": {"emotion": [57.0]},
               "dev": {"emotion": [54.0]}, "epochs": [8], "train_utterances_per_s": [1.0]}
    (docs / "results.json").write_text(json.dumps({
        "old_path": {**earlier, "encoder": "runs/encoders/minilm-full-meld"},
        "old_annotator": {**earlier, "encoder": "default-annotator", "provenance": feature_id},
        "old_hub": {**earlier, "encoder": "FacebookAI/roberta-large"}}))
    assert evaluate.write_all(runs, docs) == 0
    saved = json.loads((docs / "results.json").read_text())
    assert saved["ket_meld"]["encoder"] == "all-MiniLM-L6-v2"          # a fresh run recorded "default"
    assert saved["old_path"]["encoder"] == "minilm-full-meld"
    assert saved["old_annotator"]["encoder"] == "minilm-lora-qkvd-meld"
    assert saved["old_hub"]["encoder"] == "FacebookAI/roberta-large"  # a hub name is already a name
    assert not [k for k, r in saved.items() if r["encoder"] in ("default", "default-annotator")]


def test_a_configs_tags_may_come_from_the_config_it_extends(evaluate, tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\ntags: {context: past}\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nname: child\n")
    (tmp_path / "own.yaml").write_text("extends: base.yaml\ntags: {selection: score}\n")
    assert evaluate.config_tags(tmp_path / "child.yaml") == {"context": "past"}
    assert evaluate.config_tags(tmp_path / "own.yaml") == {"context": "past", "selection": "score"}
    assert evaluate.config_tags(tmp_path / "missing.yaml") == {}
