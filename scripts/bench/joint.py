"""Joint dialog act + sentiment: kgemo Co-GAT / DCR-Net vs the official Co-GAT code, time per epoch and test F1.

Rows, all measured in this run on this machine:

* ``kgemo <model> (mastodon)`` — a full ``kgemo train configs/<model>_mastodon.yaml`` run (early stopping):
  seconds per epoch (training + the dev evaluation the trainer runs each epoch), CPU seconds per epoch, test
  sentiment / act F1 of the best-dev model with Co-GAT's metrics, training throughput.
* ``official Co-GAT (mastodon)`` — with ``--official PATH``: its README's Mastodon command run for a few epochs
  in a subprocess; seconds per training epoch as it prints them ("cost"), plus its per-epoch dev + test
  evaluation time. Its scores after so few epochs mean nothing and are not reported here.
* the official code's *full* README run (300 epochs, about an hour on 2 CPU cores), also with ``--official``:
  its test F1 at its best-dev-sentiment and best-dev-act epochs, parsed from its output (kept in
  ``--official-full-log``, so a second benchmark run parses the log instead of training again) and written to
  ``docs/benchmarks/joint_official.json``, which ``scripts/evaluate.py`` reads for docs/results.md.
* ``frozen-MiniLM logistic regression`` — no context, the same features and metric code: the floor a joint model
  must beat (``scripts/lr_floor.py``'s Mastodon row, which writes it to ``docs/floors.json``).
* ``dailydialog graphs`` — building the ``co_interactive`` graphs of all of DailyDialog (13,118 dialogues) cold,
  and loading them back from the graph cache.
* ``kgemo cogat (dailydialog, 1 epoch)`` — training throughput on the first ``--dd-conversations`` training
  dialogues.

Both programs run with the same number of CPU threads (``--threads``, default 1): on a small, loaded machine
OpenMP threads that wait for each other make small-matrix training many times slower, for both programs alike.
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Where the official full run's parsed scores go (read by scripts/evaluate.py).
OFFICIAL_JSON = ROOT / "docs" / "benchmarks" / "joint_official.json"
# The lines the official main.py prints (RaleLee/Co-GAT, main.py): one per epoch, and one each time a dev score
# improves, with the test scores of that epoch as fractions.
_EPOCH = re.compile(r"^\[Epoch\s*(\d+)\], train loss is ([\d.]+), cost ([\d.]+) s\.$")
_EVAL = re.compile(r"^Dev and test cost ([\d.]+) s\.$")
_UPDATE = re.compile(r"^<Epoch\s*(\d+)>, Update \(base on (sent|act)\) test score: sentiment f1: ([\d.]+) "
                     r"\(r: [\d.]+, p: [\d.]+\), act f1: ([\d.]+) \(r: [\d.]+, p: [\d.]+\);$")


def add_arguments(parser) -> None:
    parser.add_argument("--official", default=None,
                        help="checkout of RaleLee/Co-GAT, runnable offline (see docs/joint.md); timed beside kgemo")
    parser.add_argument("--official-epochs", type=int, default=3,
                        help="official training epochs to time (>= 2; a 1-epoch run is subtracted for CPU time)")
    parser.add_argument("--official-default-threads", action="store_true",
                        help="also time the official code with torch's default thread count")
    parser.add_argument("--official-full-log", metavar="LOG", default=None,
                        help="output of the official full README run (default: <official>/kgemo-full-seed<seed>.log); "
                             "parsed into docs/benchmarks/joint_official.json; when it does not exist the run is "
                             "made first (about an hour on 2 CPU cores) and its output kept there")
    parser.add_argument("--no-official-full", action="store_true",
                        help="with --official: time it only, leave docs/benchmarks/joint_official.json alone")
    parser.add_argument("--models", nargs="+", default=["cogat", "dcrnet"], help="kgemo models to train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for both programs (0 = their default)")
    parser.add_argument("--no-dailydialog", action="store_true", help="skip the DailyDialog graph/throughput rows")
    parser.add_argument("--dd-conversations", type=int, default=2000,
                        help="training dialogues for the DailyDialog throughput epoch")


def _official_run(path: Path, epochs: int, seed: int, threads: int) -> dict:
    """Run the official code for ``epochs`` epochs: its printed per-epoch times and the process's CPU seconds."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as save:
        # main.py runs num_epoch + 1 epochs; -dd must be exactly dataset/mastodon for its Mastodon metric.
        cmd = [sys.executable, "-u", "main.py", "-ed", "800", "-sd", save, "-dd", "dataset/mastodon",
               "-ne", str(epochs - 1), "-rs", str(seed)]
        before = os.times()
        proc = subprocess.run(cmd, cwd=path, env=env, capture_output=True, text=True)
        after = os.times()
    if proc.returncode != 0:
        raise RuntimeError(f"official Co-GAT failed ({proc.returncode}): {proc.stderr[-2000:]}")
    lines = proc.stdout.splitlines()
    train = [float(m.group(3)) for m in map(_EPOCH.match, lines) if m]
    evals = [float(m.group(1)) for m in map(_EVAL.match, lines) if m]
    if len(train) != epochs:
        raise RuntimeError(f"expected {epochs} epoch lines in the official output:\n{proc.stdout[-2000:]}")
    cpu = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    return {"train": train, "eval": evals, "cpu_s": cpu, "command": " ".join(cmd[1:])}


def _official(path: Path, epochs: int, seed: int, threads: int) -> dict:
    """Seconds per training epoch as the official code prints them, and CPU seconds per epoch (training and its
    per-epoch dev + test evaluation) as the difference between an ``epochs``-epoch run and a 1-epoch run, so that
    start-up (vocabulary building, model construction) cancels out."""
    one = _official_run(path, 1, seed, threads)
    many = _official_run(path, epochs, seed, threads)
    command = many["command"].replace(many["command"].split(" -sd ")[1].split()[0], "<tmp>")
    return {"epochs": epochs, "train_s": statistics.median(many["train"]),
            "eval_s": statistics.median(many["eval"]),
            "cpu_s_per_epoch": (many["cpu_s"] - one["cpu_s"]) / (epochs - 1), "command": command}


def official_command(seed: int, epochs: int | None = None, save: str = "<tmp>") -> list[str]:
    """The README's Mastodon command (``-ne`` = its default 300 unless given; main.py runs ``-ne + 1`` epochs)."""
    cmd = ["python", "-u", "main.py", "-ed", "800", "-sd", save, "-dd", "dataset/mastodon", "-rs", str(seed)]
    return cmd + (["-ne", str(epochs)] if epochs is not None else [])


def parse_official_log(text: str) -> dict:
    """The official main.py output → epochs run, seconds per epoch, and the test F1 (percent) it reports at its
    last best-dev-sentiment and best-dev-act epochs (the two numbers its README run ends with)."""
    lines = text.splitlines()
    costs = [float(m.group(3)) for m in map(_EPOCH.match, lines) if m]
    best = {}
    for m in map(_UPDATE.match, lines):
        if m:  # later updates replace earlier ones: the last is the best dev epoch
            best[m.group(2)] = {"epoch": int(m.group(1)), "sentiment": round(100 * float(m.group(3)), 2),
                                "act": round(100 * float(m.group(4)), 2)}
    if not costs or set(best) != {"sent", "act"}:
        raise ValueError(f"not the output of the official Co-GAT main.py: {len(costs)} epoch lines, best-dev "
                         f"updates for {sorted(best) or 'no task'}")
    return {"epochs": len(costs), "s_per_epoch": round(statistics.median(costs), 2),
            "best_dev_sentiment": best["sent"], "best_dev_act": best["act"]}


def _official_full(path: Path, log: Path, seed: int, threads: int) -> dict:
    """Parse ``log``; when it does not exist, make the official full run first and keep its output there."""
    if not log.exists():
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        with tempfile.TemporaryDirectory() as save:
            cmd = official_command(seed, save=save)
            proc = subprocess.run([sys.executable, *cmd[1:]], cwd=path, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"official Co-GAT failed ({proc.returncode}): {proc.stderr[-2000:]}")
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(proc.stdout)
    parsed = parse_official_log(log.read_text())
    commit = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True)
    return {**parsed, "log": str(log), "log_date": datetime.date.fromtimestamp(log.stat().st_mtime).isoformat(),
            "official_command": " ".join(official_command(seed)), "official_commit": commit.stdout.strip() or None,
            "seed": seed, "threads": threads or "default"}


def official_json(full: dict, command: str) -> dict:
    """The content of docs/benchmarks/joint_official.json (what scripts/evaluate.py reads)."""
    return {
        "description": "The official Co-GAT code (github.com/RaleLee/Co-GAT), its README Mastodon run on this "
                       "machine's CPU: test F1 (percent, Co-GAT's own Mastodon metrics) at the epoch with its best "
                       "dev sentiment F1 and at the one with its best dev act F1, as its main.py reports them.",
        "command": command,
        **full,
        "rows": [
            {"case": f"official Co-GAT code, seed {full['seed']}, CPU, README run (best-dev-sentiment epoch)",
             "epoch": full["best_dev_sentiment"]["epoch"],
             "act": full["best_dev_sentiment"]["act"], "sentiment": full["best_dev_sentiment"]["sentiment"]},
            {"case": "official Co-GAT code, same run (best-dev-act epoch)", "epoch": full["best_dev_act"]["epoch"],
             "act": full["best_dev_act"]["act"], "sentiment": full["best_dev_act"]["sentiment"]},
        ],
    }


def _kgemo(model: str, seed: int, out: Path) -> dict:
    from kgemo.training import fit, load_config

    config = load_config(ROOT / "configs" / f"{model}_mastodon.yaml",
                         [f"seed={seed}", f"output_dir={out / model}", "train.progress=false"])
    cpu = time.process_time()
    result = fit(config, resume=False, force=True)
    cpu = time.process_time() - cpu
    epochs = max(1, result["epochs_run"])
    return {"epochs": epochs, "s_per_epoch": result["train_time_s"] / epochs, "cpu_s_per_epoch": cpu / epochs,
            "best_epoch": result["best_epoch"], "test": result["test"],
            "utterances_per_s": result["train_utterances_per_s"]}


def _logistic_floor() -> dict:
    """Frozen sentence features, no context, one logistic regression per task: scripts/lr_floor.py's Mastodon row."""
    spec = importlib.util.spec_from_file_location("lr_floor", ROOT / "scripts" / "lr_floor.py")
    lr_floor = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lr_floor)
    from kgemo.encoders import SentenceEncoder

    rows = lr_floor.floor("mastodon", lr_floor.FLOORS["mastodon"], SentenceEncoder("default"))
    return {task: r["test"] for task, r in rows.items()}


def _dailydialog(conversations: int, seed: int, out: Path) -> list[dict]:
    from kgemo.data import dataset_files, load_dataset
    from kgemo.encoders import FeatureCache, file_sha256
    from kgemo.graphs import load_graphs, save_graphs
    from kgemo.training import PreparedData, build_pipeline, fit, load_config, task_setup

    config = load_config(ROOT / "configs" / "cogat_dailydialog.yaml",
                         [f"seed={seed}", f"output_dir={out / 'dd'}", "train.epochs=1", "train.progress=false"])
    spaces, metrics = task_setup(config)
    pipeline = build_pipeline(config)
    convs, feats = {}, {}
    for split in ("train", "dev", "test"):
        convs[split] = load_dataset("dailydialog", split)
        sources = {Path(p).name: file_sha256(p) for p in dataset_files("dailydialog", split)}
        feats[split] = FeatureCache().conversation_features(pipeline.encoder, convs[split],
                                                            key=f"dailydialog/{split}", sources=sources)
    n_conv = sum(len(c) for c in convs.values())
    n_utt = sum(len(x) for c in convs.values() for x in c)
    start = time.perf_counter()
    graphs = {s: pipeline.builder.build_many(convs[s], feats[s], spaces, progress=False) for s in convs}
    build = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        for s in graphs:
            save_graphs(graphs[s], Path(tmp) / f"{s}.safetensors")
        start = time.perf_counter()
        loaded = {s: load_graphs(Path(tmp) / f"{s}.safetensors") for s in graphs}
        load = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(tmp).glob("*.safetensors"))
    edges = sum(int(ei.size(1)) for g in graphs["train"] for ei in g.edge_index_dict.values())
    rows = [{"case": "dailydialog graphs: build all (cold)", "seconds": round(build, 2), "dialogues": n_conv,
             "utterances": n_utt, "dialogues_per_s": round(n_conv / build)},
            {"case": "dailydialog graphs: load from graph cache", "seconds": round(load, 2),
             "ratio_vs_cold": round(build / load, 1), "cache_mb": round(size / 2**20, 1),
             "train_edges": edges}]
    # One training epoch on a prefix of the training dialogues: throughput of the whole fit loop.
    subset = {"train": loaded["train"][:conversations], "dev": loaded["dev"][:200], "test": loaded["test"][:200]}
    data = PreparedData(pipeline, spaces, metrics, subset, {s: convs[s][:len(subset[s])] for s in subset})
    cpu = time.process_time()
    result = fit(config, resume=False, force=True, data=data)
    cpu = time.process_time() - cpu
    utts = result["train_utterances"]
    rows.append({"case": f"kgemo cogat (dailydialog, 1 epoch, {conversations} dialogues)",
                 "s_per_epoch": round(result["train_time_s"], 2), "cpu_s_per_epoch": round(cpu, 2),
                 "utterances": utts, "utterances_per_s": result["train_utterances_per_s"],
                 "full_epoch_s_estimate": round(result["train_time_s"] * 87170 / max(1, utts), 1)})
    return rows


def _full_note(full: dict | None) -> str:
    if full is None and OFFICIAL_JSON.exists():
        full = json.loads(OFFICIAL_JSON.read_text())
    if full is None:
        return "The official code's full README run: not made (give --official PATH)."
    s, a = full["best_dev_sentiment"], full["best_dev_act"]
    return (f"The official code's full Mastodon run (`{full['official_command']}`, {full['epochs']} epochs, this "
            f"machine, CPU; docs/benchmarks/joint_official.json) reached test sentiment {s['sentiment']:.2f} / act "
            f"{s['act']:.2f} at its best-dev-sentiment epoch ({a['sentiment']:.2f} / {a['act']:.2f} at its "
            f"best-dev-act epoch).")


def run(args) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows, notes = [], []
    out = Path(tempfile.mkdtemp(prefix="kgemo-bench-joint-"))

    official = None
    if args.official:
        official = _official(Path(args.official), args.official_epochs, args.seed, args.threads)
        rows.append({"case": "official Co-GAT (mastodon)", "epochs": official["epochs"],
                     "s_per_epoch": round(official["train_s"], 2),
                     "eval_s_per_epoch": round(official["eval_s"], 2),
                     "cpu_s_per_epoch": round(official["cpu_s_per_epoch"], 2)})
        notes.append(f"official: `python {official['command']}` in {args.official}; s_per_epoch = median of the "
                     "training 'cost' it prints; cpu_s_per_epoch = (CPU of this run − CPU of a 1-epoch run) / "
                     f"{official['epochs'] - 1}: training plus its per-epoch dev + test evaluation, start-up excluded")
        if args.official_default_threads and args.threads:
            default = _official(Path(args.official), args.official_epochs, args.seed, 0)
            rows.append({"case": "official Co-GAT (mastodon, default threads)", "epochs": default["epochs"],
                         "s_per_epoch": round(default["train_s"], 2), "eval_s_per_epoch": round(default["eval_s"], 2),
                         "cpu_s_per_epoch": round(default["cpu_s_per_epoch"], 2)})
            # Compare kgemo with the official code's faster setting.
            official = min(official, default, key=lambda o: o["train_s"])
    full = None
    if args.official and not args.no_official_full:
        log = Path(args.official_full_log or Path(args.official) / f"kgemo-full-seed{args.seed}.log")
        full = _official_full(Path(args.official), log, args.seed, args.threads)
        if not getattr(args, "no_write", False):
            from kgemo.storage import write_json

            command = "python scripts/benchmark.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
            write_json(OFFICIAL_JSON, official_json(full, command))
    for model in args.models:
        r = _kgemo(model, args.seed, out)
        row = {"case": f"kgemo {model} (mastodon)", "epochs": r["epochs"], "s_per_epoch": round(r["s_per_epoch"], 2),
               "cpu_s_per_epoch": round(r["cpu_s_per_epoch"], 2), "best_epoch": r["best_epoch"],
               "test_sentiment_f1": round(r["test"]["sentiment"], 2), "test_act_f1": round(r["test"]["act"], 2),
               "utterances_per_s": r["utterances_per_s"]}
        if official:
            row["speedup_vs_official"] = round(official["train_s"] / r["s_per_epoch"], 1)
            row["cpu_speedup_vs_official"] = round(official["cpu_s_per_epoch"] / r["cpu_s_per_epoch"], 1)
        rows.append(row)
    floor = _logistic_floor()
    rows.append({"case": "frozen-MiniLM logistic regression (no context)",
                 "test_sentiment_f1": round(floor["sentiment"], 2), "test_act_f1": round(floor["act"], 2)})
    if not args.no_dailydialog:
        rows += _dailydialog(args.dd_conversations, args.seed, out)
    shutil.rmtree(out, ignore_errors=True)        # the benchmark's own run folders
    notes += [
        "kgemo s_per_epoch = the trainer's wall time / epochs run, so it includes the dev evaluation after every "
        "epoch; the official 'cost' is its training loop only. kgemo cpu_s_per_epoch = the process's CPU time over "
        "the whole fit (data from cache, model build, final test scoring included) / epochs. speedup = official / "
        "kgemo. On a loaded machine wall time mostly measures waiting for a CPU; CPU seconds compare the work.",
        "Test F1 with Co-GAT's Mastodon metrics (sentiment: mean F1 of + and -, neutral ignored; act: "
        "prevalence-weighted P and R, F1 = 2PR/(P+R)), at the epoch with the best mean dev F1; one seed.",
        _full_note(full),
        f"threads: {args.threads or 'default'}; machine load at the end: {os.getloadavg()[0]:.1f}.",
    ]
    return {"description": __doc__.strip().splitlines()[0], "rows": rows, "notes": notes}
