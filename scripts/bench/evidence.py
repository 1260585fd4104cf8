"""evidence: how faithful the concept evidence is — comprehensiveness, sufficiency and affective agreement of the
top-3 concepts, each against random concepts of the same utterance, on MELD and DailyDialog test.

    python scripts/benchmark.py evidence --models default runs/ket_meld/seed0 ...

Definitions: kgemo/annotate/faithfulness.py. Each model is scored on the test split of every dataset it names
(default: MELD and DailyDialog), in its own label space.
"""
from __future__ import annotations

import math
import time
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--models", nargs="+", default=["default"],
                   help="'default' (the shipped annotator), model folders or run folders")
    p.add_argument("--datasets", nargs="+", default=["meld", "dailydialog"])
    p.add_argument("--top", type=int, default=3, help="evidence concepts per utterance")
    p.add_argument("--draws", type=int, default=3, help="random draws per utterance for the baselines")
    p.add_argument("--max-conversations", type=int, default=None, help="first N test conversations (smoke runs)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rank", nargs="+", default=["attention", "occlusion"],
                   help="how evidence is ranked: the model's attention weights, or each concept's occlusion effect")


def run(args) -> dict:
    import torch

    from kgemo.annotate.annotator import resolve_model_path
    from kgemo.annotate.faithfulness import evidence_faithfulness
    from kgemo.data import load_dataset
    from kgemo.pipeline import load_model_and_pipeline

    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models:
        path = resolve_model_path(name)
        model, pipeline, spec = load_model_and_pipeline(path)
        graph = spec.graph.to_dict()
        variant = {"selection": graph.get("selection", "confidence"), "self_concept": graph.get("self_concept", False),
                   "min_score": graph.get("min_score"), "past_only": graph.get("past_only"),
                   "relatedness": getattr(model.config, "relatedness", None)}
        for ds, rank in [(d, r) for d in args.datasets for r in args.rank]:
            convs = load_dataset(ds, "test")[: args.max_conversations]
            t = time.perf_counter()
            s = evidence_faithfulness(model, pipeline, convs, top=args.top, draws=args.draws, rank=rank)
            d = s.to_dict()
            rows.append({"model": name if name == "default" else Path(name).as_posix(), "model_type": model.name,
                         "encoder": spec.encoder if spec.encoder == "default" else Path(spec.encoder).name,
                         "kb": spec.knowledge["conceptnet"].path, **variant, "dataset": ds, "evidence rank": rank,
                         "utterances": d["utterances"],
                         "comprehensiveness": d["comprehensiveness"],
                         "random comprehensiveness": d["comprehensiveness_random"],
                         "ratio": None if math.isnan(d["comprehensiveness_ratio"]) else d["comprehensiveness_ratio"],
                         "sufficiency": d["sufficiency"], "random sufficiency": d["sufficiency_random"],
                         "affective utterances": d["affective_utterances"],
                         "affective agreement %": round(d["affective_agreement"], 2),
                         "random agreement %": round(d["affective_agreement_random"], 2),
                         "agreement gain": d["affective_agreement_gain"], "seconds": round(time.perf_counter() - t, 1)})
    notes = [
        "comprehensiveness: drop of the predicted class's probability when the top-3 evidence concepts are removed "
        "from the utterance (random: 3 random concepts of the same utterance, averaged over draws); ratio = "
        "comprehensiveness / random, left empty when random is not a positive drop (≤ 0.001: removing random "
        "concepts changes nothing, so compare the two columns directly). Sufficiency: drop when only those 3 are "
        "kept (lower is better).",
        "affective agreement: share of utterances with gold joy (+) or anger/sadness/disgust/fear (−) whose top-3 "
        "concepts' mean NRC-VAD valence has the gold's sign; random: 3 random concepts of the same tokens.",
        "Utterances with fewer than 4 concepts are left out of comprehensiveness/sufficiency (top and random would "
        "coincide); the word's own concept (self_concept) is never evidence.",
    ]
    return {"description": __doc__.split("\n\n")[0], "rows": rows, "notes": notes}
