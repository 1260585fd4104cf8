"""``kgemo train CONFIG [key=value ...]`` — train any model from a YAML config."""
from __future__ import annotations

import json

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    from .argtypes import count, input_file

    p = sub.add_parser("train", help="train a model from a YAML config (resumes an interrupted run)")
    p.add_argument("config", type=input_file, help="configs/<method>_<dataset>.yaml")
    p.add_argument("overrides", nargs="*", help="config overrides as key.sub=value (e.g. train.epochs=5 seed=1)")
    p.add_argument("--seeds", type=count, nargs="+", help="run once per seed (overrides `seed`)")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if a checkpoint exists")
    p.add_argument("--force", action="store_true", help="retrain a run that already finished")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..training import fit, load_config

    seeds = args.seeds or [None]
    for seed in seeds:
        overrides = list(args.overrides) + ([f"seed={seed}"] if seed is not None else [])
        config = load_config(args.config, overrides)
        result = fit(config, resume=not args.no_resume, force=args.force)
        summary = {k: result.get(k) for k in ("config", "seed", "best_epoch", "epochs_run", "dev", "test",
                                               "train_utterances_per_s")}
        print(json.dumps(summary, indent=None))
        print(f"model folder: {config.run_dir / 'model'}")
    return 0
