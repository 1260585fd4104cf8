"""evidence: how faithful the concept evidence is — concept comprehensiveness, concept sufficiency (text kept),
ERASER-style sufficiency (text removed) and affective agreement of the top-3 concepts, each against random concepts
of the same utterance, on MELD and DailyDialog test.

    python scripts/benchmark.py evidence --models default runs/ket_meld/seed0 ...

Definitions: kgemo/annotate/faithfulness.py. Each model is scored on the test split of every dataset it names
(default: MELD and DailyDialog), in its own label space. ``--rank occlusion`` ranks the concepts by occlusion
effects measured on another split (``--rank-split``, default dev); ``occlusion_in_sample`` ranks on the scored test
utterances themselves (the annotator's ranking; an upper bound).
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
                   choices=["attention", "occlusion", "occlusion_in_sample"],
                   help="how evidence is ranked: the model's attention weights; occlusion effects measured on "
                        "--rank-split; or occlusion effects of the scored test utterances themselves (an upper bound)")
    p.add_argument("--rank-split", default="dev", help="the split occlusion effects are measured on (--rank occlusion)")
    p.add_argument("--raw", action="store_true",
                   help="score the model's own probabilities, not the calibrated ones the annotator shows (a model "
                        "folder's calibration.json: class offsets can change the predicted label)")
    p.add_argument("--max-rank-conversations", type=int, default=None,
                   help="first N conversations of --rank-split (default: --max-conversations)")


def run(args) -> dict:
    import torch

    from kgemo.annotate.annotator import resolve_model_path
    from kgemo.annotate.calibration import Calibration
    from kgemo.annotate.faithfulness import evidence_faithfulness
    from kgemo.data import load_dataset
    from kgemo.encoders.model_source import DEFAULT_MODEL, DEFAULT_NAME
    from kgemo.pipeline import load_model_and_pipeline

    torch.set_num_threads(args.threads)
    n_rank = args.max_rank_conversations if args.max_rank_conversations is not None else args.max_conversations
    rows = []
    for name in args.models:
        path = resolve_model_path(name)
        model, pipeline, spec = load_model_and_pipeline(path)
        calibration = None if args.raw else Calibration.load(path)
        shown = ("raw" if calibration is None else
                 "offsets + T" if calibration.changes_labels else "T")
        graph = spec.graph.to_dict()
        variant = {"selection": graph.get("selection", "confidence"), "self_concept": graph.get("self_concept", False),
                   "min_score": graph.get("min_score"), "past_only": graph.get("past_only"),
                   "relatedness": getattr(model.config, "relatedness", None)}
        for ds, rank in [(d, r) for d in args.datasets for r in args.rank]:
            convs = load_dataset(ds, "test")[: args.max_conversations]
            ranked_on, extra = "", {}
            if rank == "occlusion":
                extra["rank_conversations"] = load_dataset(ds, args.rank_split)[:n_rank]
                ranked_on = f"{args.rank_split} ({len(extra['rank_conversations'])} conversations)"
            elif rank == "occlusion_in_sample":
                ranked_on = "test itself"
            t = time.perf_counter()
            s = evidence_faithfulness(model, pipeline, convs, top=args.top, draws=args.draws, rank=rank,
                                      calibration=calibration, **extra)
            d = s.to_dict()
            nan_none = lambda v: None if isinstance(v, float) and math.isnan(v) else v  # noqa: E731
            rows.append({"model": name if name == "default" else Path(name).as_posix(), "model_type": model.name,
                         "encoder": DEFAULT_NAME if spec.encoder == DEFAULT_MODEL else Path(spec.encoder).name,
                         "kb": spec.knowledge["conceptnet"].path, **variant, "probabilities": shown,
                         "dataset": ds, "evidence rank": rank,
                         "ranked on": ranked_on, "rank coverage": nan_none(d["rank_coverage"]),
                         "utterances": d["utterances"],
                         "concept comprehensiveness": d["concept_comprehensiveness"],
                         "random concept comprehensiveness": d["concept_comprehensiveness_random"],
                         "ratio": nan_none(d["concept_comprehensiveness_ratio"]),
                         "concept sufficiency (text kept)": d["concept_sufficiency"],
                         "random concept sufficiency": d["concept_sufficiency_random"],
                         "ERASER sufficiency (text removed)": d["eraser_sufficiency"],
                         "random ERASER sufficiency": d["eraser_sufficiency_random"],
                         "ERASER sufficiency, nothing kept": d["eraser_sufficiency_empty"],
                         "affective utterances": d["affective_utterances"],
                         "affective agreement %": round(d["affective_agreement"], 2),
                         "random agreement %": round(d["affective_agreement_random"], 2),
                         "agreement gain": d["affective_agreement_gain"], "seconds": round(time.perf_counter() - t, 1)})
    notes = [
        "concept comprehensiveness: drop of the predicted class's probability when the top-3 evidence concepts are "
        "unlinked from the utterance's words, its text and other concepts kept (random: 3 random concepts of the "
        "same utterance, averaged over draws); ratio = concept comprehensiveness / random, left empty when random "
        "is not a positive drop (≤ 0.001: removing random concepts changes nothing, so compare the two columns "
        "directly).",
        "concept sufficiency (text kept): drop when the utterance keeps only those 3 among its concepts, its text "
        "kept (lower is better). Not ERASER's sufficiency: the text is still there.",
        "ERASER sufficiency (text removed): drop when the utterance is reduced to those 3 concepts — its sentence "
        "embedding zeroed, its words' embeddings and VAD zeroed, the words that reach no evidence concept removed, "
        "their own concepts and all other concepts unlinked; the other utterances kept as context (lower is better). "
        "Nothing kept: the same with no concept (the reference; evidence that carries the prediction is below it).",
        "evidence rank: attention (the model's weights, blind to the outcome); occlusion (mean occlusion effect of "
        "each concept per predicted label, measured on the 'ranked on' split, never on the scored one; rank "
        "coverage: share of the scored concepts with such an estimate, the rest rank as 0); occlusion_in_sample "
        "(each concept's effect on the scored utterance itself: the annotator's ranking, whose comprehensiveness is "
        "nearly built in — an upper bound, not a measure).",
        "affective agreement: share of the scored utterances with gold joy (+) or anger/sadness/disgust/fear (−) "
        "whose top-3 concepts' mean NRC-VAD valence has the gold's sign; random: 3 random concepts of the same "
        "words.",
        "probabilities: the ones the annotator shows — the model folder's calibration.json applied (offsets + T: "
        "class offsets, then temperature, which can change the predicted label; T: temperature alone), or raw "
        "(--raw, or a folder without one).",
        "Only utterances with at least 4 concepts are scored (top and random would coincide), agreement included; "
        "the word's own concept (self_concept) is never evidence.",
    ]
    return {"description": __doc__.split("\n\n")[0], "rows": rows, "notes": notes}
