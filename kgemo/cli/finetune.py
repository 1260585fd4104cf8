"""``kgemo finetune CONFIG [key=value ...]`` — fine-tune the utterance encoder into an encoder folder."""
from __future__ import annotations

import json

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("finetune", help="fine-tune the utterance encoder (LoRA or full) into an encoder folder "
                                        "usable as data.encoder (resumes an interrupted run)")
    p.add_argument("config", help="configs/finetune_<dataset>.yaml")
    p.add_argument("overrides", nargs="*",
                   help="config overrides as key.sub=value (e.g. encoder.mode=full train.lr=4e-5 seed=1)")
    p.add_argument("--seeds", type=int, nargs="+",
                   help="run once per seed (overrides `seed`; with several, each folder name gets -seed<N>)")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if a checkpoint exists")
    p.add_argument("--force", action="store_true", help="train again when the run already finished")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..training.finetune import finetune, load_finetune_config

    seeds = args.seeds or [None]
    for seed in seeds:
        overrides = list(args.overrides) + ([f"seed={seed}"] if seed is not None else [])
        config = load_finetune_config(args.config, overrides)
        if len(seeds) > 1 and "{seed}" not in config.output_dir:
            config.output_dir += "-seed{seed}"  # several seeds must not overwrite one folder
        result = finetune(config, resume=not args.no_resume, force=args.force, source=args.config).metrics
        summary = {k: result.get(k) for k in ("encoder", "mode", "seed", "dev", "test", "epochs_run",
                                               "train_utterances_per_s", "wall_time_s")}
        print(json.dumps(summary))
        print(f"encoder folder: {config.encoder_dir}  (use it as data.encoder)")
    return 0
