"""Rows of docs/results.json carry provenance and the chain that rebuilds them; ``--check`` finds rows whose inputs
changed; ``scripts/reproduce.py`` narrows and compares; docs/results.md is exactly the rendering of results.json."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from script_loader import ROOT, load_script


@pytest.fixture(scope="module")
def evaluate():
    return load_script("scripts/evaluate.py")


@pytest.fixture(scope="module")
def reproduce():
    return load_script("scripts/reproduce.py")


def provenance(config_file: str, overrides: list[str], seed: int, encoder: str = "default", init_from=None,
               tables=None, commit: str = "a" * 40, dirty=()):
    inputs = {"data": {"meld": {"meld/train_sent_emo.csv": "1" * 64}},
              "encoder": {"name": encoder, "id": f"id-{encoder}"},
              "knowledge": {}, "knowledge_tables": tables or {}}
    if init_from:
        inputs["init_from"] = {"path": "runs/x/seed{seed}/model", "config": init_from, "weights_sha256": "2" * 64}
    return {"commit": commit, "dirty": list(dirty), "kgemo": "0.1.0",
            "config": {"file": config_file, "sha256": "3" * 64, "overrides": [*overrides, f"seed={seed}"]},
            "resolved_config_sha256": "4" * 64, "inputs": inputs, "environment": {"machine": "x86_64"}}


def run(runs: Path, config: str, seed: int, model: str = "ket", test=50.0, prov=None, **extra):
    folder = runs / ("finetune" if model == "encoder_linear_head" else "") / config / f"seed{seed}"
    folder.mkdir(parents=True)
    result = {"complete": True, "config": config, "model": model, "datasets": ["meld"], "seed": seed,
              "metrics": {"emotion": "weighted_f1"}, "encoder": "default", "knowledge": None,
              "test": {"emotion": test + seed}, "dev": {"emotion": 40.0}, "best_epoch": 3, **extra}
    if prov is not None:
        result["provenance"] = prov
    (folder / "metrics.json").write_text(json.dumps(result))


@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        run(runs, "minilm-full-meld", seed, "encoder_linear_head", encoder="minilm-full-meld", mode="full",
            prov=provenance("configs/finetune_meld.yaml", ["name=minilm-full-meld", "encoder.mode=full",
                                                            "train.lr=4e-5"], seed))
        run(runs, "ket_meld_finetuned", seed,
            prov=provenance("configs/ket_meld_finetuned.yaml", [], seed, encoder="runs/encoders/minilm-full-meld"))
        run(runs, "adapt_dailydialog_to_meld_source_only", seed,
            prov=provenance("configs/adapt_dailydialog_to_meld_source_only.yaml", [], seed))
        run(runs, "adapt_dailydialog_to_meld", seed, model="cluster_graph", datasets=["dailydialog"],
            target_datasets=["meld"],
            prov=provenance("configs/adapt_dailydialog_to_meld.yaml", [], seed,
                            init_from="adapt_dailydialog_to_meld_source_only"))
        run(runs, "ket_ckbc_meld", seed, prov=provenance(
            "configs/ket_ckbc_meld.yaml", ["train.lr=1e-4"], seed,
            tables={"conceptnet": {"path": "conceptnet", "checksum": "5" * 64}}))
        run(runs, "ket_meld", seed)                            # no provenance: an old run
    return runs


def test_rows_carry_provenance_commands_and_chains(evaluate, runs):
    rows = evaluate.summarise(evaluate.collect(runs, None))
    evaluate.mark_stale(rows)
    ft = rows["minilm-full-meld"]
    # The command is the one the run recorded (the learning rate the old rebuild dropped), without the seed.
    assert ft["command"] == ("kgemo finetune configs/finetune_meld.yaml name=minilm-full-meld encoder.mode=full "
                             "train.lr=4e-5")
    assert ft["provenance"]["seeds"]["1"]["commit"] == "a" * 40
    assert ft["provenance"]["config"]["overrides"] == ["name=minilm-full-meld", "encoder.mode=full", "train.lr=4e-5"]
    # A graph model over a fine-tuned encoder: the encoder's fine-tuning first.
    assert rows["ket_meld_finetuned"]["chain"] == [ft["command"],
                                                   "kgemo train configs/ket_meld_finetuned.yaml --seeds 0 1"]
    # Adaptation: the source-only run its weights start from, first; scored on the target.
    adapt = rows["adapt_dailydialog_to_meld"]
    assert adapt["chain"] == ["kgemo train configs/adapt_dailydialog_to_meld_source_only.yaml --seeds 0 1",
                              "kgemo train configs/adapt_dailydialog_to_meld.yaml --seeds 0 1"]
    assert adapt["datasets"] == ["meld"]
    assert adapt["trained_on"] == {"labelled": ["dailydialog"], "unlabelled": ["meld"]}
    # A KB beyond the bundled default: its build first; overrides kept.
    assert rows["ket_ckbc_meld"]["chain"] == ["kgemo kb build conceptnet",
                                              "kgemo train configs/ket_ckbc_meld.yaml train.lr=1e-4 --seeds 0 1"]
    # An old run: no chain, marked stale with the reason.
    assert "chain" not in rows["ket_meld"] and "input checksums" in rows["ket_meld"]["stale"]


def test_an_encoder_tuned_on_several_datasets_keeps_each_ones_scores(evaluate, tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        run(runs, "minilm-lora-both", seed, "encoder_linear_head", encoder="minilm-lora-both", datasets=[
            "meld", "dailydialog"], per_dataset={"test": {"meld": {"emotion": 54.0 + seed},
                                                          "dailydialog": {"emotion": 52.0 - seed}}})
    row = evaluate.summarise(evaluate.collect(runs, None))["minilm-lora-both"]
    assert row["datasets"] == ["meld", "dailydialog"]
    assert row["per_dataset"] == {"test": {"meld": {"emotion": [54.0, 55.0]}, "dailydialog": {"emotion": [52.0, 51.0]}}}


def test_a_row_whose_upstream_has_no_provenance_is_stale(evaluate, runs):
    for seed in (0, 1):
        path = runs / "finetune" / "minilm-full-meld" / f"seed{seed}" / "metrics.json"
        data = json.loads(path.read_text())
        del data["provenance"]
        path.write_text(json.dumps(data))
    rows = evaluate.summarise(evaluate.collect(runs, None))
    evaluate.mark_stale(rows)
    assert "encoder" in rows["ket_meld_finetuned"]["stale"] and "chain" not in rows["ket_meld_finetuned"]
    assert "chain" in rows["adapt_dailydialog_to_meld"]


def test_seeds_run_on_other_inputs_are_flagged(evaluate, runs):
    path = runs / "ket_ckbc_meld" / "seed1" / "metrics.json"
    data = json.loads(path.read_text())
    data["provenance"]["inputs"]["data"]["meld"]["meld/train_sent_emo.csv"] = "9" * 64
    path.write_text(json.dumps(data))
    rows = evaluate.summarise(evaluate.collect(runs, None))
    assert rows["ket_ckbc_meld"]["provenance"]["inputs_differ_for_seeds"] == ["1"]
    problems, _ = evaluate.check_row("ket_ckbc_meld", rows["ket_ckbc_meld"], None)
    assert any("other inputs" in p for p in problems)


def test_seed_templated_init_from_weights_are_per_seed(evaluate, runs):
    # adapt_dailydialog_to_meld starts each seed from runs/x/seed{seed}: other weights per seed are by design ...
    path = runs / "adapt_dailydialog_to_meld" / "seed1" / "metrics.json"
    data = json.loads(path.read_text())
    data["provenance"]["inputs"]["init_from"]["weights_sha256"] = "8" * 64
    path.write_text(json.dumps(data))
    rows = evaluate.summarise(evaluate.collect(runs, None))
    prov = rows["adapt_dailydialog_to_meld"]["provenance"]
    assert "inputs_differ_for_seeds" not in prov and "weights_sha256" not in prov["inputs"]["init_from"]
    assert prov["seeds"]["1"]["init_from_weights_sha256"] == "8" * 64
    assert prov["seeds"]["0"]["init_from_weights_sha256"] == "2" * 64
    # ... but a fixed init_from folder must give every seed the same weights.
    for seed, sha in ((0, "2"), (1, "8")):
        path = runs / "adapt_dailydialog_to_meld" / f"seed{seed}" / "metrics.json"
        data = json.loads(path.read_text())
        data["provenance"]["inputs"]["init_from"].update(path="runs/x/seed0/model", weights_sha256=sha * 64)
        path.write_text(json.dumps(data))
    rows = evaluate.summarise(evaluate.collect(runs, None))
    assert rows["adapt_dailydialog_to_meld"]["provenance"]["inputs_differ_for_seeds"] == ["1"]


def test_stale_rows_are_marked_in_results_md(evaluate, runs, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    assert evaluate.write_all(runs, docs, configs=None) == 0
    md = (docs / "results.md").read_text()
    saved = json.loads((docs / "results.json").read_text())
    assert saved["ket_meld"]["stale"] and not saved["ket_meld_finetuned"].get("stale")
    frozen, fine = md.split("\n### Fine-tuned encoder")[0], md.split("\n### Fine-tuned encoder")[1].split("\n### ")[0]
    assert "| ket **(stale)** |" in frozen
    assert "| ket |" in fine and "(stale)" not in fine


def real_row(tmp_path, monkeypatch, evaluate, text="name: probe\nmodel: {name: no_knowledge, hidden: 16}\n"):
    """A row made by the real provenance code for a config under a fake checkout, and the data file it read."""
    from kgemo.training import load_config
    from kgemo.training.provenance import resolved_config_sha256

    checkout = tmp_path / "checkout"
    (checkout / "configs").mkdir(parents=True)
    config = checkout / "configs" / "probe.yaml"
    config.write_text(text)
    data = tmp_path / "data"
    (data / "meld").mkdir(parents=True)
    (data / "meld" / "train.csv").write_text("a,b\n")
    monkeypatch.setattr(evaluate, "ROOT", checkout)
    from kgemo.checksums import sha256_file

    loaded = load_config(config)
    prov = {"commit": None, "dirty": [], "config": {"file": "configs/probe.yaml", "sha256": sha256_file(config),
                                                    "overrides": []},
            "resolved_config_sha256": resolved_config_sha256(loaded.to_dict()),
            "inputs": {"data": {"meld": {"meld/train.csv": sha256_file(data / "meld" / "train.csv")}}}}
    row = {"model": "no_knowledge", "seeds": [0],
           "provenance": {"config": prov["config"], "resolved_config_sha256": prov["resolved_config_sha256"],
                          "inputs": prov["inputs"], "seeds": {"0": {"commit": "b" * 40, "dirty": []}}}}
    monkeypatch.setattr(evaluate, "_git_has_commit", lambda commit: True)
    return row, config, data


def test_check_finds_changed_config_data_and_uncommitted_runs(evaluate, tmp_path, monkeypatch):
    row, config, data = real_row(tmp_path, monkeypatch, evaluate)
    assert evaluate.check_row("probe", row, data) == ([], [])
    # A comment is not a change of the config; a new value is.
    config.write_text(config.read_text() + "# a comment\n")
    assert evaluate.check_row("probe", row, data)[0] == []
    config.write_text(config.read_text().replace("hidden: 16", "hidden: 32"))
    assert any("resolves to another config" in p for p in evaluate.check_row("probe", row, data)[0])
    config.write_text(config.read_text().replace("hidden: 32", "hidden: 16"))
    (data / "meld" / "train.csv").write_text("a,b\nc,d\n")
    assert evaluate.check_row("probe", row, data)[0] == ["meld: meld/train.csv changed"]
    # Data that is not on this machine cannot be checked: a note, not a problem.
    problems, notes = evaluate.check_row("probe", row, tmp_path / "nowhere")
    assert problems == [] and notes == ["meld: meld/train.csv not here"]
    row["provenance"]["seeds"]["0"]["dirty"] = ["kgemo/models/ket.py"]
    assert any("uncommitted" in p for p in evaluate.check_row("probe", row, tmp_path / "nowhere")[0])


def test_check_finds_rows_started_from_weights_that_changed(evaluate, tmp_path, monkeypatch):
    # A row started from the embedded default annotator is stale once another default ships: same path, new weights.
    from kgemo.annotate.annotator import resolve_model_path
    from kgemo.checksums import sha256_file

    row, _, data = real_row(tmp_path, monkeypatch, evaluate)
    now = sha256_file(resolve_model_path("default") / "model.safetensors")
    row["provenance"]["inputs"]["init_from"] = {"path": "default", "config": None, "weights_sha256": now}
    assert evaluate.check_row("probe", row, data) == ([], [])
    row["provenance"]["inputs"]["init_from"]["weights_sha256"] = "a" * 64
    problems, _ = evaluate.check_row("probe", row, data)
    assert problems == [f"seed 0: init_from default has other weights now (aaaaaaaaaaaa → {now[:12]})"]
    # A seed-templated run folder: each seed's own recorded weights against that seed's folder, here or a note.
    model = tmp_path / "runs" / "src" / "seed0" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights")
    row["provenance"]["inputs"]["init_from"] = {"path": str(tmp_path / "runs" / "src" / "seed{seed}"), "config": "src"}
    row["provenance"]["seeds"]["0"]["init_from_weights_sha256"] = sha256_file(model / "model.safetensors")
    assert evaluate.check_row("probe", row, data) == ([], [])
    (model / "model.safetensors").write_bytes(b"retrained")
    assert "has other weights now" in evaluate.check_row("probe", row, data)[0][0]
    row["seeds"], row["provenance"]["seeds"]["1"] = [0, 1], {"commit": "b" * 40, "dirty": []}
    assert any("seed 1: init_from" in n and "not here" in n for n in evaluate.check_row("probe", row, data)[1])


def test_check_exit_code_counts_unmarked_rows_only(evaluate, tmp_path, capsys):
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"old": {"model": "ket", "stale": "computed before provenance"},
                                   "bare": {"model": "ket"}}))
    assert evaluate.check(results, None) == 1
    out = capsys.readouterr().out
    assert "STALE  old" in out and "FAIL   bare" in out
    results.write_text(json.dumps({"old": {"model": "ket", "stale": "computed before provenance"}}))
    assert evaluate.check(results, None) == 0


def test_reproduce_narrows_seeds_and_compares_bit_for_bit(reproduce):
    row = {"model": "ket", "seeds": [0, 1, 2], "command": "kgemo train configs/ket_meld.yaml --seeds 0 1 2",
           "chain": ["kgemo kb build conceptnet", "kgemo train configs/ket_meld.yaml train.lr=1e-4 --seeds 0 1 2"],
           "test": {"emotion": [57.0, 58.0, 59.0]}, "dev": {"emotion": [55.0, 56.0, 57.0]}, "epochs": [8, 9, 10]}
    steps = reproduce.commands(row, [1])
    assert steps == [["kb", "build", "conceptnet"],
                     ["train", str(ROOT / "configs" / "ket_meld.yaml"), "train.lr=1e-4", "--seeds", "1"]]
    assert reproduce.compare(row, 1, {"test": {"emotion": 58.0}, "dev": {"emotion": 56.0}, "best_epoch": 9}) == []
    diffs = reproduce.compare(row, 1, {"test": {"emotion": 58.000000001}, "dev": {"emotion": 56.0}, "best_epoch": 8})
    assert len(diffs) == 2 and "recorded 58.0" in diffs[0] and "best epoch" in diffs[1]
    # The selection seed, reported apart, is compared with its own record.
    row["selection_seed"] = {"seed": 7, "test": {"emotion": 60.0}, "dev": {"emotion": 61.0}, "epoch": 4}
    assert reproduce.row_seeds(row) == [0, 1, 2, 7]
    assert reproduce.compare(row, 7, {"test": {"emotion": 60.0}, "dev": {"emotion": 61.0}, "best_epoch": 4}) == []
    assert reproduce.compare(row, 7, {"test": {"emotion": 58.0}, "dev": {"emotion": 61.0}, "best_epoch": 4})
    # A difference names where the seed was recorded and where the new run ran (its own metrics.json), since
    # torch's CPU kernels differ in the last bits between AVX2 and AVX512.
    result = {"provenance": {"environment": {"machine": "x86_64", "cpu_capability": "AVX2",
                                             "kernel_pins": {"ATEN_CPU_CAPABILITY": "avx2"}}}}
    assert "recorded on: machine not recorded, cpu_capability not recorded" in reproduce.machine_note(row, 1, result)
    row["provenance"] = {"seeds": {"1": {"environment": {"machine": "x86_64", "cpu_capability": "AVX512"}}}}
    then, now = reproduce.machine_note(row, 1, result).split("here:")
    assert "cpu_capability AVX512, kernel_pins none" in then
    assert "cpu_capability AVX2, kernel_pins {'ATEN_CPU_CAPABILITY': 'avx2'}" in now


def test_reproduce_runs_under_the_kernel_pins_the_seeds_recorded(reproduce):
    from kgemo.training.provenance import KERNEL_PINS

    pins = dict(KERNEL_PINS["avx2"])
    row = {"provenance": {"seeds": {"0": {"environment": {"kernel_pins": pins}},
                                    "1": {"environment": {"kernel_pins": pins}}, "2": {"environment": {}}}}}
    assert reproduce.kernel_pins(row, [0, 1]) == pins
    assert reproduce.kernel_pins(row, [2]) == {} and reproduce.kernel_pins({}, [0]) == {}
    assert reproduce.kernel_pins(row, [0], "native") == {} and reproduce.kernel_pins(row, [2], "avx2") == pins
    with pytest.raises(SystemExit, match="different CPU kernel pins.*one --seed at a time"):
        reproduce.kernel_pins(row, [0, 2])


def test_runs_record_the_kernel_pins_they_ran_under(monkeypatch):
    from kgemo.training.provenance import KERNEL_PINS, environment

    for name in KERNEL_PINS["avx2"]:
        monkeypatch.delenv(name, raising=False)
    assert "kernel_pins" not in environment()      # rows recorded without pins keep their checksums' shape
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")
    assert environment()["kernel_pins"] == {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def test_results_md_is_the_rendering_of_results_json(evaluate):
    docs = ROOT / "docs"
    summary = json.loads((docs / "results.json").read_text())
    assert (docs / "results.md").read_text() == "\n".join(evaluate.render(summary, docs)) + "\n", \
        "docs/results.md was edited by hand or not regenerated: run python scripts/evaluate.py --all"


def test_readme_headline_is_the_rendering_of_results_json(evaluate):
    summary = json.loads((ROOT / "docs" / "results.json").read_text())
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(evaluate.README_START):readme.index(evaluate.README_END) + len(evaluate.README_END)]
    assert block == "\n".join(evaluate.headline(summary)), \
        "README's headline table was edited by hand or not regenerated: run python scripts/evaluate.py --all"


def test_headline_marks_stale_rows_and_seed_counts(evaluate):
    row = {"test": {"emotion": [50.0, 52.0]}, "seeds": [1, 2]}
    lines = evaluate.headline({"ket_meld": {**row, "stale": "old"}, "no_knowledge_meld": row})
    assert "| frozen MiniLM, past-only context: no knowledge / KET / CKE-Net | 51.00 (2) / 51.00 (2)\\* / – |" \
        in "\n".join(lines)


def test_delta_pairs_seeds_and_never_compares_across_code_versions(evaluate):
    row = {"seeds": [1, 2, 3], "test": {"emotion": [60.0, 61.0, 62.0]}}
    base = {"seeds": [0, 1, 2, 3], "test": {"emotion": [10.0, 50.0, 50.0, 50.0]}}
    assert evaluate.paired_delta(row, base) == "+11.00 (seeds 1, 2, 3)"  # seed 0 of the base left out, said
    assert evaluate.paired_delta(row, {"seeds": [0, 1], "test": {"emotion": [0.0, 59.0]}}) == "+1.00 (seeds 1)"
    assert evaluate.paired_delta(row, {**base, "stale": "old code"}) == "– (one side stale)"
    assert evaluate.paired_delta(row, {"seeds": [7], "test": {"emotion": [1.0]}}) == "–"
