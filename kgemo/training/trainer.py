"""``fit(config)`` and ``evaluate(model_dir)``: the one trainer for every kgemo model (Lightning underneath).

Run folder (``config.run_dir``)::

    config.yaml          the resolved config
    checkpoints/last.ckpt  Lightning checkpoint of the last epoch (resume after a kill)
    model/               best-dev model as a folder (config.json, model.safetensors, labels.json, README.md)
    logs/version_N/      CSV metrics per epoch (one version per attempt)
    metrics.json         dev and test scores of the best model, epochs, timing
    report_<split>_<task>.json, confusion_<split>_<task>.png   per-class scores and confusion matrix
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning as L
import torch
import yaml

from ..data.labels import LabelSpace
from ..errors import KgemoError
from ..graphs.batching import batches
from ..metrics import class_weights, classification_report, confusion_matrix_png, score
from ..models import load_model, save_model
from ..pipeline import load_model_and_pipeline
from ..storage import atomic_write, write_json
from .checkpoints import BestCheckpoint, checkpoint_to_resume, finished_run, fit_resumable
from .config import DataConfig, ExperimentConfig, label_map_by_task
from .data import PreparedData, prepare_data
from .distributed import GraphDataModule, ddp_strategy, init_from_env, predict_distributed, world
from .module import TaskModule
from .provenance import run_provenance
from .trainer_options import trainer_options

__all__ = ["fit", "evaluate", "build_model", "score_graphs", "init_weights", "class_rows"]

log = logging.getLogger(__name__)


def build_model(config: ExperimentConfig, data: PreparedData):
    """The config's model, with its input widths (feature width, concept width, relations) from the pipeline."""
    return config.model_class(data.pipeline.fill_widths(config.model), data.label_spaces)


def score_graphs(model, graphs, transform, label_spaces, metrics, batch_size: int = 64,
                 device: str = "cpu", report_dir: Path | None = None, split: str = "test") -> dict[str, float]:
    """The dataset metric of every task on ``graphs`` (labels -1 ignored).

    With ``report_dir``, also writes ``report_<split>_<task>.json`` (per-class precision / recall / F1) and
    ``confusion_<split>_<task>.png`` there. In a DDP process group the processes share the batches and all get
    every prediction back, each utterance scored once (:func:`~kgemo.training.distributed.predict_distributed`).
    """
    probs = predict_distributed(model, graphs, transform, batch_size, device)
    out = {}
    for task, p in probs.items():
        y = torch.cat([g["utterance"][f"y_{task}"] for g in graphs]).numpy()
        keep = y >= 0
        y_true, y_pred = y[keep], p.argmax(-1).numpy()[keep]
        out[task] = score(metrics[task], y_true, y_pred, label_spaces[task])
        if report_dir is not None and keep.any():
            report = classification_report(y_true, y_pred, label_spaces[task], metric=metrics[task])
            write_json(report_dir / f"report_{split}_{task}.json", report)
            confusion_matrix_png(y_true, y_pred, label_spaces[task], report_dir / f"confusion_{split}_{task}.png",
                                 title=f"{split}: {label_spaces[task].name}")
    return out


def init_weights(model, folder: str | Path, pipeline: Any = None,
                 label_map: Mapping[str, Mapping[str, str | None]] | None = None) -> dict[str, Any]:
    """Copy into ``model`` every weight of the model folder ``folder`` whose name and shape it shares, and the
    output rows of classes both label sets have.

    For two-stage training (``train.init_from``): an adaptation model starts from the source-only model it extends
    (its encoder, context model and classifier), its own parts (centres, graph layer, discriminator) keep their
    initialisation. With a new or changed label set (a model trained on MELD started for EmoryNLP, or the embedded
    annotator started for a file of your own), a task's output layer (``heads.<task>.*``) is filled row by row:
    a new class starts from the row of the old class with the same name (or one the old label space lists as an
    alias), or of the old class ``label_map[task][new]`` names; the others (and those mapped to ``None``) keep
    their fresh initialisation. Rows are matched by name even when both sets have as many classes, never by
    position. Refused: a folder made with another encoder (different features), a weight of the same name and
    another shape (other than those output layers), a label map naming a class either set lacks, or a folder
    that shares no weight at all.

    Args:
        model: the new model (its label spaces are the new label sets).
        folder: a model folder, a run folder holding ``model/``, or ``"default"`` (the embedded annotator).
        pipeline: this run's input pipeline, to refuse a folder made with another encoder.
        label_map: ``{task: {new class: old class or None}}`` (``train.label_map``).

    Returns:
        ``{"loaded": [...], "kept": [...], "rows": {task: {new class: old class}}, "fresh": {task: [new
        classes]}}``: parameter and buffer names loaded whole or kept, and for each task whose output layer was
        filled row by row, where each row came from.

    Example:
        >>> emory = {"Neutral": "neutral", "Joyful": "joy", "Scared": "fear", "Mad": "anger", "Sad": "sadness"}
        >>> info = init_weights(model, "default", pipeline, {"emotion": emory})   # model: an EmoryNLP KET
        >>> info["rows"]["emotion"]["Joyful"], info["fresh"]["emotion"]
        ('joy', ['Peaceful', 'Powerful'])
    """
    from ..annotate.annotator import resolve_model_path  # "default", a run folder or a model folder

    name = str(folder)
    folder = resolve_model_path(folder)
    saved, spec = load_model(folder)
    if pipeline is not None and spec.get("encoder_id") and spec["encoder_id"] != pipeline.encoder.id:
        hint = " (data.encoder: default-annotator encodes as the embedded annotator does)" if name == "default" else ""
        raise KgemoError(f"train.init_from {name}: made with encoder {spec['encoder_id']}, but this run encodes "
                         f"with {pipeline.encoder.id}{hint}")
    own = model.state_dict()
    theirs = saved.state_dict()
    label_map = dict(label_map or {})
    unknown = sorted(set(label_map) - set(model.label_spaces))
    if unknown:
        raise KgemoError(f"train.label_map: task {unknown[0]!r} is not one of this model's tasks "
                         f"{list(model.label_spaces)}")
    rows: dict[str, dict[int, int]] = {}
    for task, new in model.label_spaces.items():
        old = saved.label_spaces.get(task)
        if old is None:
            if label_map.get(task):
                raise KgemoError(f"train.label_map.{task}: {name} has no {task} task (its tasks: "
                                 f"{list(saved.label_spaces)})")
            continue
        if task in label_map or new.labels != old.labels:
            rows[task] = class_rows(old, new, label_map.get(task), f"train.label_map.{task}")
    filled: dict[str, torch.Tensor] = {}
    for task, pairs in rows.items():
        n_old, n_new = len(saved.label_spaces[task]), len(model.label_spaces[task])
        prefix = f"heads.{task}."
        for key, value in theirs.items():
            if not key.startswith(prefix) or key not in own:
                continue
            if value.shape[0] != n_old or own[key].shape[0] != n_new or value.shape[1:] != own[key].shape[1:]:
                raise KgemoError(f"train.init_from {name}: {key} has shape {tuple(value.shape)} there and "
                                 f"{tuple(own[key].shape)} here, not one row per class of {task}")
            tensor = own[key].clone()
            for i, j in pairs.items():
                tensor[i] = value[j]
            filled[key] = tensor
    bad = [k for k in theirs if k in own and k not in filled and own[k].shape != theirs[k].shape]
    if bad:
        raise KgemoError(f"train.init_from {name}: {bad[:5]} have other shapes than this model's")
    loaded = [k for k in theirs if k in own and k not in filled]
    if not loaded and not filled:
        raise KgemoError(f"train.init_from {name}: no weight in common with {type(model).__name__}")
    model.load_state_dict({**{k: theirs[k] for k in loaded}, **filled}, strict=False)
    kept = [k for k in own if k not in theirs]
    info: dict[str, Any] = {"loaded": loaded, "kept": kept, "rows": {}, "fresh": {}}
    for task, pairs in rows.items():
        new, old = model.label_spaces[task], saved.label_spaces[task]
        info["rows"][task] = {new.labels[i]: old.labels[j] for i, j in sorted(pairs.items())}
        info["fresh"][task] = [lab for i, lab in enumerate(new.labels) if i not in pairs]
        log.info("%s: output rows of %s from %s; fresh: %s", task, info["rows"][task], name,
                 info["fresh"][task] or "none")
    log.info("initialised %d tensors (and %d output layers row by row) from %s; %d keep their initialisation",
             len(loaded), len(filled), name, len(kept))
    return info


def class_rows(old: LabelSpace, new: LabelSpace, mapping: Mapping[str, str | None] | None = None,
               where: str = "label_map") -> dict[int, int]:
    """``{new class id: old class id}``: which old output row each new class starts from.

    A new class takes the old class of the same name, or the one the old space lists it as an alias of
    (``happy`` → ``joy`` in ``ekman7/emotion``); ``mapping`` (new name → old name, or ``None`` for a fresh row)
    overrides that. Classes without a row start fresh.

    Example:
        >>> class_rows(label_space("ekman7", "emotion"), label_space("emorynlp", "emotion"),
        ...            {"Neutral": "neutral", "Joyful": "joy", "Mad": "anger", "Sad": "sadness", "Scared": "fear"})
        {0: 0, 1: 1, 4: 6, 5: 3, 6: 4}
    """
    mapping = dict(mapping or {})
    unknown = [k for k in mapping if k not in new]
    if unknown:
        raise KgemoError(f"{where}: {unknown[0]!r} is not a class of the new label set {list(new.labels)}")
    out: dict[int, int] = {}
    for i, label in enumerate(new.labels):
        source: str | None = label if label in old else None
        for key, target in mapping.items():
            if new.canonical(key) == label:
                source = target
        if source is None:
            continue
        if source not in old:
            raise KgemoError(f"{where}.{label}: {source!r} is not a class of the model started from "
                             f"{list(old.labels)}")
        out[i] = old.index(source)
    return out


class BestModelExport(BestCheckpoint):
    """Writes the model folder (``run_dir/model``) whenever the dev score improves; its state survives a resume."""

    def __init__(self, path: Path, pipeline: Mapping[str, Any], card: Mapping[str, Any]):
        super().__init__(path)
        self.pipeline, self.card = dict(pipeline), dict(card)

    def save(self, trainer, module):
        save_model(module.model, self.path, self.pipeline,
                   {**self.card, "best dev score": f"{self.best:.2f}", "best epoch": self.best_epoch})


def fit(config: ExperimentConfig, resume: bool = True, data: PreparedData | None = None,
        force: bool = False, callbacks: Sequence[L.Callback] = ()) -> dict[str, Any]:
    """Train ``config``'s model; returns (and writes) ``metrics.json``.

    Args:
        config: the experiment.
        resume: continue from ``checkpoints/last.ckpt`` when the run folder has one (otherwise the run starts
            afresh and an earlier run's ``model/`` is removed first).
        data: already prepared data (tests, sweeps); default: prepared from the config (cached).
        force: retrain from the first step even if the run folder already holds a finished run.
        callbacks: extra Lightning callbacks.
    """
    run_dir = config.run_dir
    metrics_path = run_dir / "metrics.json"
    done = finished_run(run_dir, resume, force)
    if done is not None:
        return done
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(run_dir / "config.yaml", "w", encoding="utf-8") as fh:
        yaml.safe_dump(config.to_dict(), fh, sort_keys=False)

    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    L.seed_everything(config.seed, workers=True, verbose=False)
    data_in_memory = data is not None
    data = data or prepare_data(config)
    if not data.graphs.get("train"):
        raise KgemoError(f"{config.name}: the train split is empty")
    model = build_model(config, data)
    tc = config.train
    if tc.init_from:
        init_weights(model, tc.init_from.format(name=config.name, seed=config.seed), data.pipeline,
                     label_map_by_task(tc.label_map, list(config.data.tasks), "train.label_map"))
    weights = {}
    if tc.class_weights:
        for task, space in data.label_spaces.items():
            weights[task] = torch.as_tensor(class_weights(data.train_labels(task).numpy(), len(space),
                                                          tc.class_weights))
    transform = data.pipeline.transform
    # Loaders made in each process: under DDP every process trains on its share of each global batch of
    # tc.batch_size conversations and evaluates whole one-process batches, none twice (kgemo.training.distributed).
    loaders = GraphDataModule(data.graphs["train"], data.graphs.get("dev") or [], tc.batch_size, tc.batch_size * 4,
                              seed=config.seed, transform=transform, num_workers=tc.num_workers)
    steps = loaders.steps_per_epoch
    module = TaskModule(model, data.label_spaces, data.metrics, tc, weights, steps_per_epoch=steps)
    prepare = getattr(model, "prepare_training", None)
    if prepare is not None:
        # A model that needs statistics of its training data before the first step (kgemo.adapt's class centres)
        # gets one pass over the train batches, in order; a resumed run then restores them from the checkpoint.
        prepare(batches(data.graphs["train"], tc.batch_size * 4, transform))

    spec_data = {"datasets": config.data.datasets, "tasks": config.data.tasks,
                 "label_space": config.data.label_space, "metrics": data.metrics}
    if config.data.target_datasets:
        spec_data["target_datasets"] = config.data.target_datasets
    spec = data.pipeline.spec(spec_data).to_dict()
    export = BestModelExport(run_dir / "model", spec, {"config": config.name, "seed": config.seed})
    trainer = L.Trainer(
        max_epochs=tc.epochs, devices=tc.devices, num_nodes=tc.num_nodes, strategy=ddp_strategy(tc.strategy),
        use_distributed_sampler=False,
        # The rolling last.ckpt and early stopping act once per epoch, after its dev evaluation.
        **trainer_options(tc, run_dir, steps, export, callbacks))
    ckpt = checkpoint_to_resume(run_dir, export, resume, force)
    start = time.perf_counter()
    fit_resumable(trainer, module, ckpt, datamodule=loaders)
    train_time = time.perf_counter() - start
    epochs_run = trainer.current_epoch

    # Every DDP process scores dev and test below (each takes its share of the batches); process 0 writes.
    trainer.strategy.barrier("kgemo-best-model")  # process 0 has written the best model folder
    if not (run_dir / "model" / "config.json").exists():
        raise KgemoError(f"{run_dir}: no dev evaluation happened, so there is no best model")
    best, _ = load_model(run_dir / "model")
    device = trainer.strategy.root_device if world()[1] > 1 else "cpu"
    results = {"complete": True, "config": config.name, "model": config.model.name, "seed": config.seed,
               "datasets": config.data.datasets, "target_datasets": config.data.target_datasets,
               **({"target_labels": True} if config.data.target_labels else {}),
               "encoder": config.data.encoder, "encoder_id": data.pipeline.encoder.id,
               "knowledge": {k: v.to_dict() for k, v in config.knowledge.items()},
               "metrics": data.metrics, "best_epoch": export.best_epoch, "epochs_run": epochs_run,
               "train_time_s": round(train_time, 2),
               "train_utterances": int(sum(g["utterance"].num_nodes for g in data.graphs["train"])),
               "parameters": int(sum(p.numel() for p in best.parameters()))}
    if config.data.train_share is not None or config.data.train_conversations is not None:
        # a learning-curve point: what it was trained and selected on
        scarce, targets = (config.data.share_tasks or config.data.tasks)[0], set(config.data.target_datasets)
        results["train_share"] = {"share": config.data.train_share, "conversations": config.data.train_conversations,
                                  "seed": config.data.share_seed if config.data.share_seed is not None
                                  else config.seed, "tasks": config.data.share_tasks or config.data.tasks,
                                  "dev_capped": config.data.share_dev,
                                  "labelled_conversations": {  # of the target datasets, when there are some
                                      s: sum(bool((g["utterance"][f"y_{scarce}"] >= 0).any())
                                             for g, c in zip(data.graphs.get(s) or [], data.conversations.get(s) or [])
                                             if not targets or c.dataset in targets) for s in ("train", "dev")}}
    results["train_utterances_per_s"] = round(results["train_utterances"] * max(1, epochs_run) / train_time, 1)
    results.update(config.tags)
    results["provenance"] = run_provenance(config, data.pipeline, data_in_memory)
    for split in ("dev", "test"):
        if data.graphs.get(split):
            results[split] = score_graphs(best, data.graphs[split], transform, data.label_spaces, data.metrics,
                                          device=device, report_dir=run_dir if trainer.is_global_zero else None,
                                          split=split)
    if not trainer.is_global_zero:
        return {}
    write_json(metrics_path, results)
    return results


def evaluate(model_dir: str | Path, split: str = "test", datasets: Sequence[str] | None = None,
             root: str | None = None, max_conversations: int | None = None,
             metrics: Sequence[str] = ()) -> dict[str, Any]:
    """Score a saved model folder on a dataset split with the metric it was trained for.

    Args:
        model_dir: a model folder (``runs/<name>/seed0/model``).
        split: ``train`` / ``dev`` / ``test``.
        datasets: score on these datasets (default: the ones it was trained on, together; for a model adapted to
            target datasets, the target datasets).
        root: dataset root (default ``KGEMO_DATA`` or ``../shared/data``).
        max_conversations: the first N conversations per dataset (smoke runs).
        metrics: more metric names to report for every task (``scores_by_metric``), besides the trained one.

    Under ``torchrun --nproc-per-node N`` (or any launcher that sets ``WORLD_SIZE``/``RANK``/``MASTER_ADDR``) the
    processes join one group and share the batches; each utterance is scored once and every process returns the
    one-process result (same predictions, bit for bit on the same hardware).
    """
    distributed = init_from_env()
    model, pipeline, spec = load_model_and_pipeline(model_dir)
    if not spec.data.get("datasets") or not spec.data.get("tasks"):
        raise KgemoError(f"{model_dir}: the model folder records no training data (datasets, tasks); cannot "
                         "evaluate")
    info = spec.data
    data = DataConfig(datasets=list(datasets or info.get("target_datasets") or info["datasets"]),
                      tasks=list(info["tasks"]),
                      label_space=info.get("label_space"), metrics=dict(info.get("metrics") or {}),
                      encoder=spec.encoder, root=root, max_conversations=max_conversations)
    prepared = prepare_data(data, splits=(split,), pipeline=pipeline)
    graphs = prepared.graphs[split]
    device = f"cuda:{torch.cuda.current_device()}" if distributed and torch.cuda.is_available() else "cpu"
    scores = score_graphs(model, graphs, pipeline.transform, model.label_spaces, prepared.metrics, device=device)
    out = {"model": str(model_dir), "split": split, "datasets": data.datasets, "metrics": prepared.metrics,
           "scores": scores, "utterances": int(sum(g["utterance"].num_nodes for g in graphs))}
    if metrics:
        probs = predict_distributed(model, graphs, pipeline.transform, device=device)
        out["scores_by_metric"] = {}
        for task, p in probs.items():
            y = torch.cat([g["utterance"][f"y_{task}"] for g in graphs]).numpy()
            keep = y >= 0
            pred = p.argmax(-1).numpy()
            out["scores_by_metric"][task] = {m: float(score(m, y[keep], pred[keep], model.label_spaces[task]))
                                             for m in metrics}
    return out
