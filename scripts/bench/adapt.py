"""Domain adaptation: per-step training cost of DANN and the cross-domain cluster graph vs source-only, same batches.

The batches mix source (labelled) and target (labels removed) conversations as the trainer's are
(``configs/adapt_<direction>.yaml``; features from the feature cache). Each model runs the same batches through a
full training step (forward, loss, backward, AdamW step); for the cluster graph the two parts it adds are also timed
alone: the centre update (moving average of both domains) and the cross-domain graph (nearest centres + centre
attention, forward only). Times are medians over the batches after a warm-up; ratios are against source-only
(the no-knowledge model) in the same run.
"""
from __future__ import annotations

import logging
import statistics
import time

import torch


def add_arguments(p):
    p.add_argument("--direction", default="dailydialog_to_meld", help="configs/adapt_<direction>.yaml")
    p.add_argument("--batches", type=int, default=40, help="timed batches per model (after --warmup)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32, help="conversations per batch (the configs' 32)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda when available, and cpu as well)")


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def run(args) -> dict:
    import torch.nn.functional as F

    from kgemo.graphs import batches as make_batches
    from kgemo.models import get_model_class
    from kgemo.training import load_config, prepare_data
    from kgemo.training.data import build_pipeline

    logging.getLogger("kgemo").setLevel(logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(f"configs/adapt_{args.direction}.yaml")
    pipeline = build_pipeline(cfg)
    data = prepare_data(cfg, splits=("train",), pipeline=pipeline)
    graphs = data.graphs["train"]
    order = torch.randperm(len(graphs), generator=torch.Generator().manual_seed(0)).tolist()
    n = args.warmup + args.batches
    cpu_batches = list(make_batches(graphs, args.batch_size, pipeline.transform, order[: n * args.batch_size]))[:n]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    variants = {"source_only": ("no_knowledge", {}), "dann": ("dann", {}), "cluster_graph": ("cluster_graph", {})}
    base_model = {k: v for k, v in cfg.model.to_dict().items() if k in ("hidden", "context_layers", "heads",
                                                                          "dropout")}
    rows, notes = [], []
    for device in devices:
        device_batches = [b.to(device) for b in cpu_batches]
        utts = statistics.mean(b["utterance"].num_nodes for b in device_batches)
        per_variant = {}
        for variant, (name, extra) in variants.items():
            cls = get_model_class(name)
            opts = {**base_model, **extra}
            if name == "cluster_graph":
                opts.update({k: v for k, v in cfg.model.to_dict().items() if k in cls.config_class.field_names()
                             and k not in ("name", "input_dim")})
            torch.manual_seed(0)
            model = cls(cls.config_class(input_dim=pipeline.encoder.dim, **opts), data.label_spaces)
            if hasattr(model, "prepare_training"):
                model.prepare_training(device_batches[: args.warmup])
            model.to(device).train()
            opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
            task = model.tasks[0]

            def step(batch):
                fwd = getattr(model, "forward_train", None)
                logits, aux = fwd(batch) if fwd else (model(batch), {})
                loss = F.cross_entropy(logits[task], batch["utterance"][f"y_{task}"], ignore_index=-1)
                loss = loss + sum(aux.values())
                opt.zero_grad()
                loss.backward()
                opt.step()

            times = [_timed(lambda b=b: step(b), device) for b in device_batches]
            per_variant[variant] = statistics.median(times[args.warmup:])
            row = {"device": device, "variant": variant, "model": name, "utterances/batch": round(utts, 1),
                   "ms/step": round(1000 * per_variant[variant], 2)}
            if name == "cluster_graph":
                upd, graph = [], []
                with torch.no_grad():
                    for b in device_batches:
                        h = model._states(b)
                        dom = b["utterance"].domain
                        probs = torch.softmax(torch.randn(h.size(0), len(data.label_spaces[task]), device=device), -1)
                        y = b["utterance"][f"y_{task}"]
                        upd.append(_timed(lambda: model._update_centres(h, dom, y, probs), device))
                        graph.append(_timed(lambda: model._propagate(h, dom), device))
                row["centre update ms"] = round(1000 * statistics.median(upd[args.warmup:]), 3)
                row["cross-domain graph ms (fwd)"] = round(1000 * statistics.median(graph[args.warmup:]), 3)
            rows.append(row)
        for row in rows:
            if row["device"] == device:
                row["vs source_only"] = round(per_variant[row["variant"]] / per_variant["source_only"], 2)
                if "centre update ms" in row:
                    row["update share of step"] = round(row["centre update ms"] / row["ms/step"], 3)
    notes.append(f"{args.batches} timed steps after {args.warmup} warm-up steps, batches of {args.batch_size} "
                 f"conversations from configs/adapt_{args.direction}.yaml's train split (source + unlabelled target "
                 f"in the trainer's proportions), torch threads {torch.get_num_threads()}; model sizes from that "
                 "config (the baselines share hidden, layers, heads, dropout).")
    notes.append("centre update = the moving-average step of both domains' centres (source by gold label, target by "
                 "pseudo-label); cross-domain graph = nearest centres of both domains + one centre-attention block, "
                 "forward only. Both are part of the cluster graph's ms/step.")
    return {"description": __doc__.strip().splitlines()[0], "rows": rows, "notes": notes}
