#!/usr/bin/env python
"""Rebuild a row of docs/results.json from its recorded chain of commands, and compare.

    python scripts/reproduce.py ket_meld --dry-run            # print the chain
    python scripts/reproduce.py ket_meld --seed 0             # run it for seed 0 and compare with the row
    python scripts/reproduce.py ket_meld --seed 0 --cold      # ... from an empty cache (a fresh KGEMO_HOME)

The chain (``chain`` in the row, written by ``scripts/evaluate.py --all`` from what the runs recorded) lists, in
order, the knowledge caches to build beyond the bundled default, the fine-tuning run of the encoder the row reads,
the run its weights start from (``train.init_from``), and the row's own command. Each command runs in a work folder
(default ``runs/reproduce/<row>``; relative paths such as ``runs/encoders/...`` resolve there, so nothing under
``runs/`` is reused or overwritten) with ``--seeds`` narrowed to the seeds asked for. The row's dev and test scores
and best epoch of each seed must come out equal, to the last bit; the script prints each and exits 1 on any
difference. A row marked stale has no recorded chain: its command is run as recorded, and the comparison says
whether the current code still gives its numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_row(results: Path, name: str) -> dict:
    rows = json.loads(results.read_text())
    if name not in rows:
        close = [k for k in rows if name in k or k in name][:8]
        raise SystemExit(f"{results}: no row {name!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    return rows[name]


def commands(row: dict, seeds: list[int]) -> list[list[str]]:
    """The row's chain as argument lists, each ``kgemo train`` narrowed to ``seeds`` and every config path made
    absolute (the commands run in the work folder, the configs stay in the checkout)."""
    out = []
    for line in row.get("chain") or [row["command"]]:
        argv = shlex.split(line)
        if argv[:1] != ["kgemo"]:
            raise SystemExit(f"chain step {line!r} is not a kgemo command")
        argv = argv[1:]
        if argv[:1] in (["train"], ["finetune"]) and len(argv) > 1 and not Path(argv[1]).is_absolute():
            argv[1] = str(ROOT / argv[1])
        if argv[:1] == ["train"] and "--seeds" in argv:
            argv = argv[:argv.index("--seeds")] + ["--seeds", *map(str, seeds)]
        out.append(argv)
    return out


def metrics_path(workdir: Path, name: str, row: dict, seed: int) -> Path:
    if row["model"] == "encoder_linear_head":
        return workdir / "runs" / "finetune" / name / f"seed{seed}" / "metrics.json"
    return workdir / "runs" / name / f"seed{seed}" / "metrics.json"


def recorded(row: dict, seed: int) -> dict:
    """``{"dev": {task: v}, "test": {task: v}, "epoch": e}`` the row recorded for ``seed`` (one of its seeds, or
    the selection seed it reports apart)."""
    sel = row.get("selection_seed") or {}
    if sel and sel.get("seed") == seed:
        return {"dev": sel["dev"], "test": sel["test"], "epoch": sel.get("epoch")}
    i = row["seeds"].index(seed)
    return {split: {t: v[i] for t, v in row[split].items()} for split in ("dev", "test")} | {
        "epoch": row["epochs"][i] if row.get("epochs") else None}


def row_seeds(row: dict) -> list[int]:
    sel = row.get("selection_seed") or {}
    return list(row["seeds"]) + ([sel["seed"]] if sel else [])


def compare(row: dict, seed: int, result: dict) -> list[str]:
    """Differences between the row's recorded seed and a fresh run's metrics.json (empty: bit for bit)."""
    want = recorded(row, seed)
    diffs = []
    for split in ("dev", "test"):
        for task, value in want[split].items():
            got = (result.get(split) or {}).get(task)
            if got != value:
                diffs.append(f"{split} {task}: recorded {value!r}, got {got!r}")
    if want["epoch"] is not None and result.get("best_epoch") != want["epoch"]:
        diffs.append(f"best epoch: recorded {want['epoch']}, got {result.get('best_epoch')}")
    return diffs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("row", help="a key of docs/results.json (e.g. ket_meld, minilm-full-meld)")
    p.add_argument("--seed", type=int, action="append", help="seed(s) to rebuild (default: every seed of the row; "
                   "its selection seed, reported apart, may be asked for too)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    p.add_argument("--results", default=str(ROOT / "docs" / "results.json"))
    p.add_argument("--workdir", help="where the commands run (default: runs/reproduce/<row>, emptied first)")
    p.add_argument("--cold", action="store_true", help="run with an empty KGEMO_HOME (no cached features, KB "
                   "builds or graphs), as a fresh clone would")
    p.add_argument("--kernels", choices=["recorded", "native", "avx2"], default="recorded",
                   help="CPU kernel pins for the commands: those the row's seeds were run under (default), none, or "
                   "avx2 (torch, MKL and oneDNN limited to AVX2, as on an AVX2 machine)")
    args = p.parse_args(argv)

    row = load_row(Path(args.results), args.row)
    seeds = args.seed or list(row["seeds"])
    unknown = [s for s in seeds if s not in row_seeds(row)]
    if unknown:
        raise SystemExit(f"row {args.row} has seeds {row_seeds(row)}, not {unknown}")
    steps = commands(row, seeds)
    if row.get("stale"):
        print(f"# {args.row} is marked stale: {row['stale']}\n# running its recorded command as it stands")
    for argv_ in steps:
        print("kgemo " + shlex.join(argv_))
    if args.dry_run:
        return 0

    workdir = Path(args.workdir or ROOT / "runs" / "reproduce" / args.row).resolve()
    if workdir.exists() and not args.workdir:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE=os.environ.get("HF_HUB_OFFLINE", "1"))
    pins = kernel_pins(row, seeds, args.kernels)
    if args.kernels == "native":  # also drop pins this shell may carry
        from kgemo.training.provenance import KERNEL_PIN_NAMES

        for name in KERNEL_PIN_NAMES:
            env.pop(name, None)
    if pins:
        print("CPU kernels pinned: " + " ".join(f"{k}={v}" for k, v in pins.items()))
    env.update(pins)
    home = None
    if args.cold:
        home = tempfile.mkdtemp(prefix="kgemo-home-")
        env["KGEMO_HOME"] = home
    try:
        for argv_ in steps:
            print(f"\n$ kgemo {shlex.join(argv_)}   (in {workdir})", flush=True)
            done = subprocess.run([sys.executable, "-m", "kgemo.cli", *argv_], cwd=workdir, env=env)
            if done.returncode != 0:
                print(f"step failed with exit code {done.returncode}", file=sys.stderr)
                return done.returncode
    finally:
        if home:
            shutil.rmtree(home, ignore_errors=True)

    failed = False
    for seed in seeds:
        path = metrics_path(workdir, args.row, row, seed)
        if not path.is_file():
            print(f"seed {seed}: no {path}", file=sys.stderr)
            failed = True
            continue
        result = json.loads(path.read_text())
        diffs = compare(row, seed, result)
        failed |= bool(diffs)
        print(f"seed {seed}: " + ("equal to the row, bit for bit" if not diffs else "DIFFERS\n  " + "\n  ".join(diffs)))
        if diffs:
            print("  " + machine_note(row, seed, result))
    return 1 if failed else 0


def seed_environment(row: dict, seed: int) -> dict:
    return ((row.get("provenance") or {}).get("seeds", {}).get(str(seed)) or {}).get("environment") or {}


def kernel_pins(row: dict, seeds: list[int], choice: str = "recorded") -> dict[str, str]:
    """The environment variables that pin the CPU kernels for the rebuild: ``recorded`` takes those the row's seeds
    ran under (seeds recorded under different pins are refused: run them apart), ``avx2`` / ``native`` force."""
    from kgemo.training.provenance import KERNEL_PINS

    if choice != "recorded":
        return dict(KERNEL_PINS.get(choice, {}))
    found = {json.dumps(seed_environment(row, s).get("kernel_pins") or {}, sort_keys=True) for s in seeds}
    if len(found) > 1:
        raise SystemExit(f"seeds {seeds} were run under different CPU kernel pins ({' / '.join(sorted(found))}): "
                         "rebuild them one --seed at a time")
    return json.loads(found.pop()) if found else {}


def machine_note(row: dict, seed: int, result: dict) -> str:
    """Where the row's seed was run against where this run ran (its metrics.json): torch's CPU kernels differ in the
    last bits between instruction sets (AVX2 / AVX512), so bit equality is a promise only between machines of one
    kind, or under the same kernel pins (``--kernels avx2``)."""
    recorded = seed_environment(row, seed)
    here = (result.get("provenance") or {}).get("environment") or {}
    keys = ("machine", "cpu_capability", "kernel_pins", "torch", "python")

    def show(env: dict) -> str:
        return ", ".join(f"{k} {env.get(k, 'none' if k == 'kernel_pins' and env else 'not recorded')}" for k in keys)

    return f"recorded on: {show(recorded)}; here: {show(here)}"


if __name__ == "__main__":
    sys.exit(main())
