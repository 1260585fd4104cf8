"""``kgemo calibrate MODEL_DIR`` — fit one temperature per task on dev and save it in the model folder."""
from __future__ import annotations

import json

__all__ = ["add_parser", "run"]


def add_parser(sub) -> None:
    from .argtypes import dataset, input_dir

    p = sub.add_parser("calibrate", help="calibrate a model's probabilities (temperature scaling fitted on dev)",
                       description="Fit softmax(logits / T), one T per task, by minimum NLL on a labelled split, "
                                   "and write calibration.json (T, the split, ECE and NLL before / after on each "
                                   "dataset's dev and test split) into the model folder and its model card. "
                                   "`kgemo annotate` then shows calibrated probabilities; labels never change "
                                   "unless --class-bias is given.")
    p.add_argument("model", help="'default' (the embedded model), a model folder or a run folder")
    p.add_argument("--split", default="dev", choices=["train", "dev", "test"],
                   help="split to fit on (default: %(default)s)")
    p.add_argument("--dataset", nargs="+", type=dataset, help="datasets to fit on: names or files of your own "
                   "(default: those it was trained on)")
    p.add_argument("--weighting", choices=["dataset", "utterance"], default="dataset",
                   help="fit on the mean of each dataset's NLL (default) or on one NLL pooled over utterances")
    p.add_argument("--class-bias", action="store_true",
                   help="first choose one offset per class that maximises the mean of each dataset's own metric on "
                        "the split (changes labels: for a model trained with class weights or on several datasets "
                        "in one head), then fit T on the offset logits")
    p.add_argument("--root", type=input_dir, help="dataset root (default KGEMO_DATA or ../shared/data)")
    p.add_argument("--dry-run", action="store_true", help="print the result without writing it")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..annotate.calibrate import fit_calibration

    cal = fit_calibration(args.model, args.split, args.dataset, args.root, weighting=args.weighting,
                          write=not args.dry_run, class_bias=args.class_bias)
    print(json.dumps(cal.to_dict(), indent=2))
    return 0
