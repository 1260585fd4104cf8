"""``scripts/export_default_model.py`` picks the run of the seed the default config names, and the results page says
which seed is shipped."""
from __future__ import annotations

import json

import yaml
from script_loader import ROOT, load_script


def test_default_run_is_the_seed_the_config_names():
    export = load_script("scripts/export_default_model.py")
    seed = yaml.safe_load((ROOT / "configs" / "default_annotator.yaml").read_text())["seed"]
    assert export.default_run() == ROOT / "runs" / "default_annotator" / f"seed{seed}"


def test_results_page_names_the_shipped_seed(tmp_path):
    evaluate = load_script("scripts/evaluate.py")
    record = {"config": "configs/default_annotator.yaml", "seed": 3, "datasets": ["meld", "dailydialog"],
              "parameters": 1000, "weights_bytes": 4096, "command": "kgemo train ...", "margin": 0.5,
              "metrics": {"emotion": "macro_f1"}, "test": {"emotion": 40.0}, "test_averages": {"weighted_f1": 70.0}}
    (tmp_path / "results_default.json").write_text(json.dumps(record))
    text = "\n".join(evaluate.default_section(tmp_path))
    assert "(one 7-emotion space), seed 3;" in text
    del record["seed"]  # written before the seed was recorded: the default was seed 0
    (tmp_path / "results_default.json").write_text(json.dumps(record))
    assert "seed 0;" in "\n".join(evaluate.default_section(tmp_path))


def test_model_card_names_the_adapters_datasets_and_says_the_split_scores_are_raw():
    export = load_script("scripts/export_default_model.py")
    results = {"adapter": "minilm-lora-meld-dailydialog", "adapter_datasets": ["meld", "dailydialog"],
               "config": "configs/x.yaml", "seed": 1, "command": "kgemo train configs/x.yaml --seeds 1",
               "parameters": 1000, "weights_bytes": 4000, "best_epoch": 3, "epochs_run": 5,
               "metrics": {"emotion": "macro_f1"}, "dev": {"emotion": 46.0}, "test": {"emotion": 45.0},
               "test_per_dataset": {"meld": {"utterances": 2610, "scores": {"weighted_f1": 55.5}}}}
    card = export._model_card(results, {}, {"selection": "score", "self_concept": True})
    assert "fine-tuned on the train split of MELD + DailyDialog" in card
    assert "the model's own argmax (before the calibration below" in card
    assert "  - MELD (2610 utterances): weighted_f1 55.50." in card
