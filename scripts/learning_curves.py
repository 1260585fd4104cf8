"""Learning curves: test score against the share of training conversations, one line per way of starting.

Every point is an ordinary ``kgemo train`` run of a config in ``configs/`` with ``data.train_share`` (nested subsets
fixed per seed, dev capped at the same share: docs/learning-curves.md) and a run name of its own,
``curve_<dataset>_<variant>_<share>``; ``python scripts/evaluate.py --all`` turns the runs into rows of
docs/results.json (tags ``curve`` and ``share``) and the table of docs/results.md; ``plot`` draws them.

    python scripts/learning_curves.py run --datasets meld --variants no_knowledge ket --shares 0.01 0.05 --seeds 0 1 2
    python scripts/learning_curves.py run --dry-run          # print the commands only
    python scripts/learning_curves.py plot                   # docs/learning_curves.png from docs/results.json

Runs already finished are skipped (the trainer's resume), so an interrupted sweep is resumed by running it again.
The 100% point of a variant trained from scratch is its config's own row (the same run: a share of 1 keeps the
split as it is); a variant that starts from another model gets runs of its own at 100% too.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ("meld", "emorynlp", "dailydialog")
SHARES = (0.01, 0.05, 0.1, 0.25, 1.0)
TRAIN_CONVERSATIONS = {"meld": 1038, "emorynlp": 659, "dailydialog": 11118}  # a count as a share, in the plot

# Label maps for starting from another dataset's model: a new class starts from the old class's output row
# (kgemo.training.trainer.class_rows); EmoryNLP's Peaceful and Powerful have no MELD counterpart and start fresh.
FROM_DAILYDIALOG = "{joy: happiness}"
FROM_MELD = "{happiness: joy}"
EMORYNLP_FROM_EKMAN = "{Neutral: neutral, Joyful: joy, Scared: fear, Mad: anger, Sad: sadness}"

# The default annotator's config on EmoryNLP: its encoder (default-annotator: the MiniLM + the MELD LoRA adapter
# shipped with it), EmoryNLP's own label set and metric.
DEFAULT_ON_EMORYNLP = ["data.encoder=default-annotator", "data.datasets=[emorynlp]",
                       "data.label_space=null", "data.metrics={}"]

#: variant → (what it is, {dataset: (config, overrides)}); "{seed}" in init_from is the run's seed (the trainer
#: formats it), so each seed starts from the source model of the same seed.
VARIANTS: dict[str, tuple[str, dict[str, tuple[str, list[str]]]]] = {
    **{m: (f"from scratch: {label} (frozen MiniLM, past turns)",
           {ds: (f"configs/{m}_{ds}.yaml", []) for ds in DATASETS})
       for m, label in (("no_knowledge", "no knowledge"), ("ket", "KET"), ("ckenet", "CKE-Net"),
                        ("cosmic", "COSMIC"), ("affect_prior", "the words' NRC-VAD affect as a prior"))},
    "cosmic_budget": ("from scratch: COSMIC with KET's training budget (30 epochs, patience 6, batches of 16): its "
                      "own config (15 epochs, patience 4, batches of 32) leaves a few dozen steps at small shares",
                      {ds: (f"configs/cosmic_{ds}.yaml", ["train.epochs=30", "train.patience=6",
                                                         "train.batch_size=16"]) for ds in DATASETS}),
    "other_domain": ("from another domain: the no-knowledge model trained on the other dataset (DailyDialog ↔ MELD; "
                     "MELD → EmoryNLP through a label map), then trained on the share",
                     {"meld": ("configs/no_knowledge_meld.yaml",
                               ["train.init_from=runs/no_knowledge_dailydialog/seed{seed}",
                                f"train.label_map={FROM_DAILYDIALOG}"]),
                      "dailydialog": ("configs/no_knowledge_dailydialog.yaml",
                                      ["train.init_from=runs/no_knowledge_meld/seed{seed}",
                                       f"train.label_map={FROM_MELD}"]),
                      "emorynlp": ("configs/no_knowledge_emorynlp.yaml",
                                   ["train.init_from=runs/no_knowledge_meld/seed{seed}",
                                    f"train.label_map={EMORYNLP_FROM_EKMAN}"])}),
    "with_other_domain": ("from another domain, trained together: the other dataset's labels and the share of this "
                          "one's, the no-knowledge model in the shared Ekman-7 space (the adaptation configs with "
                          "data.target_labels)",
                          {ds: (f"configs/adapt_{other}_to_{ds}_source_only.yaml",
                                ["data.target_train=true", "data.target_labels=true",
                                 "tags.adaptation=few_target_labels"])
                           for ds, other in (("meld", "dailydialog"), ("dailydialog", "meld"))}),
    "with_act": ("from a related task: the no-knowledge model on DailyDialog emotion (the share) and dialog act "
                 "(every train conversation's act labels)",
                 {"dailydialog": ("configs/no_knowledge_dailydialog.yaml",
                                  ["data.tasks=[emotion, act]", "data.share_tasks=[emotion]"])}),
    "default": ("from the embedded default annotator (KET, bidirectional, trained on MELD + DailyDialog in Ekman-7 "
                "over its MELD-tuned MiniLM): a new EmoryNLP head, rows of shared classes from the old head",
                {"emorynlp": ("configs/default_annotator_finetuned.yaml",
                              [*DEFAULT_ON_EMORYNLP, "train.init_from=default",
                               f"train.label_map={EMORYNLP_FROM_EKMAN}"])}),
    "default_scratch": ("the default annotator's architecture, settings and encoder, from scratch (the ablation of "
                        "'default': the same features, no weights of the annotator)",
                        {"emorynlp": ("configs/default_annotator_finetuned.yaml", list(DEFAULT_ON_EMORYNLP))}),
}
#: variants whose 100% point needs runs of its own (it does not equal the config's row).
STARTS_ELSEWHERE = ("cosmic_budget", "other_domain", "with_other_domain", "with_act", "default",
                    "default_scratch")
#: variants that transfer from another model, dataset or task (dashed in the plot).
TRANSFER = ("other_domain", "with_other_domain", "with_act", "default")


def share_label(share: float | int) -> str:
    """``0.05`` → ``p005``, ``1.0`` → ``p100``, ``50`` (conversations) → ``n50``: part of a run name."""
    return f"n{share}" if isinstance(share, int) else f"p{round(share * 100):03d}" if share >= 0.01 else f"p{share}"


def as_share(share: float | int, dataset: str) -> float:
    """A point's share of the train conversations (a number of conversations divided by the split's)."""
    return share if share <= 1 else share / TRAIN_CONVERSATIONS[dataset]


def run_name(dataset: str, variant: str, share: float | int) -> str:
    return f"curve_{dataset}_{variant}_{share_label(share)}"


def command(dataset: str, variant: str, share: float | int, seed: int) -> list[str] | None:
    """The ``kgemo train`` command of one point and seed; None when the point is the config's own row."""
    config, overrides = VARIANTS[variant][1][dataset]
    if share == 1.0 and variant not in STARTS_ELSEWHERE:
        return None
    size = f"data.train_conversations={share}" if isinstance(share, int) else f"data.train_share={share}"
    return [sys.executable, "-m", "kgemo.cli", "train", config, f"name={run_name(dataset, variant, share)}",
            *([] if share == 1.0 else [size]), *overrides, f"tags.curve={variant}", f"tags.share={share}",
            "--seeds", str(seed)]


def parse_share(text: str) -> float | int:
    """``0.05`` (a share) or ``50`` (a number of conversations)."""
    value = float(text)
    return int(value) if value > 1 and value.is_integer() else value


def run(args) -> int:
    jobs = []
    for dataset in args.datasets:
        for variant in args.variants:
            if dataset not in VARIANTS[variant][1]:
                continue
            for share in args.shares:
                for seed in args.seeds:
                    cmd = command(dataset, variant, share, seed)
                    if cmd is None:
                        continue
                    done = ROOT / "runs" / run_name(dataset, variant, share) / f"seed{seed}" / "metrics.json"
                    if done.is_file() and json.loads(done.read_text()).get("complete"):
                        continue
                    jobs.append(cmd)
    print(f"{len(jobs)} runs to do", file=sys.stderr)
    if args.dry_run:
        print("\n".join(" ".join(c[2:]) for c in jobs))
        return 0
    log_dir = ROOT / "runs" / "curve_logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    def one(cmd: list[str]) -> int:
        name, seed = cmd[5].split("=", 1)[1], cmd[-1]
        start = time.time()
        with open(log_dir / f"{name}_seed{seed}.log", "w") as log:
            rc = subprocess.call(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, "HF_HUB_OFFLINE": "1"})
        print(f"{'ok  ' if rc == 0 else 'FAIL'} {name} seed {seed} ({time.time() - start:.0f} s)", flush=True)
        return rc

    with ThreadPoolExecutor(args.jobs) as pool:
        failed = sum(rc != 0 for rc in pool.map(one, jobs))
    print(f"{len(jobs) - failed} of {len(jobs)} runs finished; logs in {log_dir}", file=sys.stderr)
    return 1 if failed else 0


#: the 0% point: rows trained without a single target label (unsupervised adaptation from the other dataset, scored
#: on this one; their epoch is chosen on the whole target dev split).
ZERO_LABELS = {ds: [("source only", f"adapt_{other}_to_{ds}_source_only"), ("DANN", f"adapt_{other}_to_{ds}_dann"),
                    ("cluster graph", f"adapt_{other}_to_{ds}")]
               for ds, other in (("meld", "dailydialog"), ("dailydialog", "meld"))}


def curves(summary: dict[str, dict], dataset: str) -> dict[str, dict[float, dict]]:
    """``{variant: {share: row}}`` for one dataset: the curve rows, and each scratch variant's 100% point (the row
    of its config)."""
    out: dict[str, dict[float, dict]] = {}
    for name, row in summary.items():
        tags = row.get("tags") or {}
        if name.startswith("curve_") and row["datasets"] == [dataset]:
            share = tags["share"]  # a share, or a number of conversations (an int above 1)
            out.setdefault(tags["curve"], {})[share if share <= 1 else int(share)] = row
    for variant, (_, configs) in VARIANTS.items():
        if variant in out and variant not in STARTS_ELSEWHERE and dataset in configs:
            full = summary.get(Path(configs[dataset][0]).stem)
            if full:
                out[variant][1.0] = full
    return out


def plot(results: Path, out: Path) -> Path:
    """One panel per dataset: test score (mean over seeds, band = min..max) against the share, log scale."""
    import statistics

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    summary = json.loads(results.read_text())
    datasets = [d for d in DATASETS if curves(summary, d)]
    if not datasets:
        raise SystemExit(f"{results}: no learning-curve rows (curve_*); run the points, then scripts/evaluate.py --all")
    fig = Figure(figsize=(5 * len(datasets), 4.2))
    FigureCanvasAgg(fig)
    for k, dataset in enumerate(datasets):
        ax = fig.add_subplot(1, len(datasets), k + 1)
        found = curves(summary, dataset)
        for k_variant, variant in enumerate(VARIANTS):
            if variant not in found:
                continue
            points = found[variant]
            shares = sorted(points, key=lambda s: as_share(s, dataset))
            scores = [points[s]["test"]["emotion"] for s in shares]  # already in points (0-100)
            xs = [as_share(s, dataset) for s in shares]
            style = "--" if variant in TRANSFER else "-"
            # matplotlib's cycle has ten colours; an eleventh variant gets black rather than repeating C0
            colour = f"C{k_variant}" if k_variant < 10 else "black"
            ax.plot(xs, [statistics.mean(v) for v in scores], style, marker="o", color=colour, label=variant)
            ax.fill_between(xs, [min(v) for v in scores], [max(v) for v in scores], color=colour, alpha=0.12)
        source_only = summary.get(dict((label, name) for label, name in ZERO_LABELS.get(dataset, [])).get(
            "source only", ""))
        if source_only:
            ax.axhline(statistics.mean(source_only["test"]["emotion"]), color="grey", linestyle=":",
                       label="0 target labels (source only)")
        metric = next(iter(curves(summary, dataset).values()))
        metric = next(iter(metric.values()))["metrics"]["emotion"]
        ax.set_xscale("log")
        ax.set_xlabel("share of train conversations (dev capped at the same share)")
        ax.set_ylabel(f"test {metric} (mean of seeds; band: min–max)")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    tmp.replace(out)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the missing points")
    r.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    r.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    r.add_argument("--shares", nargs="+", type=parse_share, default=list(SHARES),
                   help="shares of the train conversations (0.05), or numbers of them (50)")
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    r.add_argument("--jobs", type=int, default=1, help="runs at once (each config sets its own torch threads)")
    r.add_argument("--dry-run", action="store_true")
    g = sub.add_parser("plot", help="draw the curves of docs/results.json")
    g.add_argument("--results", default=str(ROOT / "docs" / "results.json"))
    g.add_argument("--out", default=str(ROOT / "docs" / "learning_curves.png"))
    args = p.parse_args(argv)
    if args.cmd == "run":
        return run(args)
    print(plot(Path(args.results), Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
