"""Fine-tune the utterance encoder on a dataset's own labels: ``finetune(config)`` → an encoder folder.

Strong ERC systems first fine-tune their utterance encoder on the emotion task with the conversation in the
input; this stage does that for any kgemo dataset and any Hugging Face encoder, and saves the result as a folder
that every experiment config can use as ``data: {encoder: PATH}`` (see :mod:`kgemo.encoders.finetuned_encoder`).

Input per utterance: ``"speaker: text"`` as the first segment, up to ``past_turns`` preceding turns (each
``"speaker: text"``, oldest first) as the second, cut from the oldest end beyond ``max_length`` tokens. Model:
the transformer (LoRA adapters by default, ``mode: full`` trains every weight), mean pooling, dropout and a
linear head per task; loss: cross-entropy with class weights from the train split.

The stage is the trainer's parts put together: the config (:mod:`.finetune_config`, read like every kgemo
config), the batches (:mod:`.utterance_batches`), the network and its LightningModule (:mod:`.finetune_module`),
and the Lightning options, dev monitor, best checkpoint and resume logic that :func:`~kgemo.training.fit` uses
(:mod:`.trainer_options`, :mod:`.monitor`, :mod:`.checkpoints`). This file holds the run itself.

Folders::

    run_dir (runs/finetune/<name>/seed<seed>)    config.yaml, checkpoints/last.ckpt (resume), best.safetensors
                                                 (trainable weights of the best dev evaluation), logs/, metrics.json
    output_dir (runs/encoders/<name>)            the encoder folder, written in one rename at the end

Example::

    kgemo finetune configs/finetune_meld.yaml train.epochs=2 --seeds 0
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import lightning as L
import numpy as np
import torch
import yaml

from ..checksums import file_sha256
from ..data import Conversation, dataset_files, get_dataset, load_dataset
from ..devices import uses_cuda
from ..encoders.architectures import describe
from ..encoders.encoder_inputs import InputTokenizer
from ..encoders.finetuned_encoder import model_card, save_encoder_folder
from ..encoders.model_source import weights_sha256
from ..encoders.pooled_transformer import load_base, load_tokenizer
from ..errors import KgemoError
from ..metrics import class_weights, score
from ..storage import atomic_write, sha256_json, write_json
from .checkpoints import BestCheckpoint, checkpoint_to_resume, finished_run, fit_resumable
from .config import conversations_read
from .finetune_config import (EncoderConfig, FinetuneConfig, FinetuneDataConfig, FinetuneTrainConfig, LoraSettings,
                              load_finetune_config)
from .finetune_module import FinetuneModule, build_net
from .provenance import provenance_block
from .trainer_options import trainer_options
from .utterance_batches import BucketBatches, UtteranceSet, eval_loader, train_loader

# The names this module has always offered; their homes are the files above.
__all__ = ["FinetuneConfig", "FinetuneDataConfig", "EncoderConfig", "LoraSettings", "FinetuneTrainConfig",
           "load_finetune_config", "finetune", "build_net", "FinetuneRun", "FinetuneModule", "UtteranceSet",
           "BucketBatches", "BestState"]

log = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")


class BestState(BestCheckpoint):
    """Saves the trainable weights whenever the dev score improves (``best.safetensors``); survives a resume.

    Only what training changes is kept (the adapter or every weight, and the heads): the base is rebuilt from its
    folder at the end, and the best weights are loaded into it before the encoder folder is written.
    """

    def save(self, trainer, module):
        from safetensors.torch import save

        with atomic_write(self.path, "wb") as fh:
            fh.write(save(module.trainable_state(), metadata={"dev_score": f"{self.best:.4f}",
                                                              "step": str(self.best_step)}))


@dataclass
class FinetuneRun:
    """What :func:`finetune` returns: the scores (also in ``metrics.json``), the encoder folder, and the trained
    module with its best dev weights loaded (``None`` when a finished run was found on disk)."""

    metrics: dict[str, Any]
    encoder_dir: Path
    module: FinetuneModule | None = None


def _load_splits(config: FinetuneConfig) -> tuple[dict[str, dict[str, list[Conversation]]], dict[str, dict]]:
    """``{split: {dataset: conversations}}`` and ``{dataset: {file name: sha256}}`` for the run's datasets."""
    d = config.data
    convs: dict[str, dict[str, list[Conversation]]] = {s: {} for s in SPLITS}
    sources: dict[str, dict[str, str]] = {}
    for name in d.names:
        sources[name] = {}
        for split in SPLITS:
            got = load_dataset(name, split, root=d.root, strict=d.strict)
            n = conversations_read(d, split)
            convs[split][name] = got if n is None else got[:n]
            for p in dataset_files(name, split, root=d.root):
                sources[name][Path(p).name] = file_sha256(p)
    return convs, sources


def keep_neutral_share(convs: list[Conversation], task: str, space, share: float, seed: int,
                       key: str) -> list[Conversation]:
    """Every conversation with a non-neutral ``task`` label and ``share`` of those whose labelled turns are all
    neutral, chosen as the graph trainer's ``data.neutral_share`` chooses (:func:`~.data.neutral_keep`)."""
    from .data import neutral_keep

    flags = []
    for conv in convs:
        ids = [space.index(x) for u in conv if (x := u.labels.get(task)) is not None and x in space]
        flags.append(bool(ids) and all(y == space.neutral_index for y in ids))
    return [convs[i] for i in neutral_keep(flags, share, seed, key)]


def finetune(config: FinetuneConfig, conversations: Mapping[str, Sequence[Conversation]] | None = None,
             resume: bool = True, force: bool = False, callbacks: Sequence[L.Callback] = (),
             source: str | None = None) -> FinetuneRun:
    """Fine-tune ``config``'s encoder and write its folder; returns the run's scores and the folder.

    Args:
        config: the run.
        conversations: ``{"train": [...], "dev": [...], "test": [...]}`` to use instead of loading
            ``config.data.dataset`` (tests, custom data; labels must be in that dataset's label spaces).
            ``test`` may be missing.
        resume: continue from ``checkpoints/last.ckpt`` of the run folder when there is one.
        force: train again from the start even when the run folder holds a finished run.
        callbacks: extra Lightning callbacks.
        source: what to name in errors (the YAML file); default the config's name.

    Raises:
        KgemoError: a bad base model (nothing is written), an empty train or dev split, a checkpoint that cannot
            be loaded safely.
    """
    source = source or config.name
    run_dir, out_dir = config.work_dir, config.encoder_dir
    metrics_path = run_dir / "metrics.json"
    done = finished_run(run_dir, resume, force, outputs=(out_dir / "encoder.json",))
    if done is not None:
        return FinetuneRun(done, out_dir)

    # Everything that can fail on bad input is checked before the first file is written.
    base = load_base(config.encoder.base)
    label_spaces, metrics = config.data.task_setup()
    names = config.data.names
    if conversations is None:
        parts, sources = _load_splits(config)
    else:
        parts = {s: {names[0]: list(conversations.get(s) or [])} for s in SPLITS}
        sources = {names[0]: {"in-memory": sha256_json([c.to_dict() for s in SPLITS for c in parts[s][names[0]]])}}
    if config.data.neutral_share is not None:
        first = config.data.tasks[0]
        for name, convs in parts["train"].items():
            kept = keep_neutral_share(convs, first, label_spaces[first], config.data.neutral_share, config.seed,
                                      f"{name}/train")
            log.info("%s train: %d of %d conversations kept (data.neutral_share=%s of the all-neutral ones)", name,
                     len(kept), len(convs), config.data.neutral_share)
            parts["train"][name] = kept
    splits = {s: [c for name in names for c in parts[s][name]] for s in SPLITS}
    for split in ("train", "dev"):
        if not splits[split]:
            raise KgemoError(f"{source}: the {split} split is empty")
    hf_tokenizer = load_tokenizer(base.transformer_dir)
    tokenizer = InputTokenizer(hf_tokenizer, config.encoder.max_length)
    data = {s: UtteranceSet(c, tokenizer, config.context, label_spaces) for s, c in splits.items() if c}

    tc = config.train
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(run_dir / "config.yaml", "w", encoding="utf-8") as fh:
        yaml.safe_dump(config.to_dict(), fh, sort_keys=False)
    if tc.threads:
        torch.set_num_threads(tc.threads)
    else:
        from ..encoders.lazy_model import configure_threads

        configure_threads()
    L.seed_everything(config.seed, workers=True, verbose=False)

    net, heads = build_net(config, base, label_spaces, source)
    weights = {}
    if tc.class_weights:
        for k, (task, space) in enumerate(label_spaces.items()):
            weights[task] = torch.as_tensor(class_weights(data["train"].labels[:, k].numpy(), len(space),
                                                          tc.class_weights))

    sampler = BucketBatches(data["train"].lengths, tc.batch_size, config.seed, tc.bucket_batches)
    steps_per_epoch = len(sampler)
    total_steps = steps_per_epoch * tc.epochs if tc.max_steps is None else min(tc.max_steps,
                                                                               steps_per_epoch * tc.epochs)
    module = FinetuneModule(net, heads, label_spaces, metrics, tc, weights, total_steps, tokenizer,
                            config.context, config.encoder.normalize, config.encoder.head_input)
    module.sampler = sampler  # so that a resumed run skips the batches trained before the kill
    module.train()  # from_pretrained returns eval mode; dropout must be on while training

    best = BestState(run_dir / "best.safetensors")
    val_every = tc.val_check_interval
    if isinstance(val_every, int) and not isinstance(val_every, bool):
        val_every = min(val_every, steps_per_epoch)  # Lightning refuses an interval longer than the epoch
    trainer = L.Trainer(
        max_epochs=tc.epochs, max_steps=tc.max_steps if tc.max_steps is not None else -1, devices=1,
        val_check_interval=val_every, check_val_every_n_epoch=1,
        # Dev is evaluated inside epochs: the rolling last.ckpt (for resuming), early stopping and the best
        # weights follow every evaluation, not only the epoch's end.
        **trainer_options(tc, run_dir, steps_per_epoch, best, callbacks, mid_epoch=True))
    ckpt = checkpoint_to_resume(run_dir, best, resume, force)
    start = time.perf_counter()
    fit_resumable(trainer, module, ckpt, train_dataloaders=train_loader(data["train"], tokenizer, sampler),
                  val_dataloaders=eval_loader(data["dev"], tokenizer, tc.eval_batch_size))
    wall = time.perf_counter() - start

    # The best dev evaluation's weights; a run too short for any dev evaluation keeps its last weights.
    if best.path.is_file():
        from safetensors.torch import load_file

        module.load_state_dict(load_file(str(best.path)), strict=False)
    else:
        log.warning("%s: no dev evaluation happened; the encoder keeps the weights of the last step", run_dir)
    gpu = uses_cuda(tc.accelerator)
    module.to("cuda" if gpu else "cpu")
    # The best evaluation was the last one (often: one evaluation, at the end): its dev predictions are those of
    # the weights just loaded, so dev is not predicted again (8k utterances through MPNet: ~13 min on one thread).
    last = getattr(module, "last_dev_pairs", None)
    dev_pairs = last[1] if last and best.found and last[0] == best.best_step else None
    scores, per_dataset = _final_scores(module, data, parts, names, tokenizer, config, label_spaces, metrics,
                                        dev_pairs)

    transformer_out = module.net.transformer
    hf_model = transformer_out.get_base_model() if hasattr(transformer_out, "get_base_model") else transformer_out
    n_params = sum(p.numel() for p in module.parameters())
    n_train = sum(p.numel() for p in module.parameters() if p.requires_grad)
    utt_per_s = module.train_utterances / module.train_seconds if module.train_seconds else None
    results = {"complete": True, "model": "encoder_linear_head", "config": config.name, "seed": config.seed,
               "datasets": names, "tasks": list(label_spaces), "encoder": out_dir.name,
               "encoder_path": str(out_dir), "base": config.encoder.base, "context": config.context.name,
               "mode": config.encoder.mode, "metrics": metrics, "dev": scores.get("dev"), "test": scores.get("test"),
               "best_dev_score": round(best.best, 4) if best.found else None,
               "best_step": best.best_step, "best_epoch": best.best_epoch, "steps": trainer.global_step,
               "epochs_run": round(trainer.global_step / max(1, steps_per_epoch), 3),
               "early_stopped": bool(trainer.should_stop and trainer.global_step < total_steps),
               "wall_time_s": round(wall, 1), "train_time_s": round(module.train_seconds, 1),
               "train_utterances_per_s": None if utt_per_s is None else round(utt_per_s, 2),
               "train_utterances": len(data["train"]), "parameters": n_params, "trainable_parameters": n_train,
               "device": "cuda" if gpu else "cpu", "threads": torch.get_num_threads()}
    if per_dataset:
        results["per_dataset"] = per_dataset
    meta = {"name": out_dir.name, "mode": config.encoder.mode,
            "base": {"model": config.encoder.base, "name": base.source.name, "path": str(base.source.path),
                     "weights_sha256": weights_sha256(base.source.path)},
            "architecture": describe(hf_model.config, type(hf_model).__name__),
            "lora": {**dataclasses.asdict(config.lora),  # the target modules as resolved for this architecture
                     "target_modules": sorted(transformer_out.peft_config["default"].target_modules)}
                    if config.encoder.mode == "lora" else None,
            "input": {"context": config.context.to_dict(), "max_length": config.encoder.max_length,
                      "segments": "first: the utterance; second: the past turns, oldest first, cut from its start"},
            "pooling": {"mode": "mean", "normalize": config.encoder.normalize},
            "head_input": config.encoder.head_input,
            "dim": net.dim,
            "tasks": {t: {"label_space": s.name, "labels": list(s.labels), "metric": metrics[t]}
                      for t, s in label_spaces.items()},
            "scores": scores,
            "data": {"datasets": names, "files_sha256": sources[names[0]] if len(names) == 1 else sources,
                     "max_conversations": config.data.max_conversations,
                     **({"max_train_conversations": config.data.max_train_conversations}
                        if config.data.max_train_conversations is not None else {}),
                     "utterances": {s: len(d) for s, d in data.items()}},
            "training": config.to_dict(),
            "run": {k: results[k] for k in ("best_step", "best_epoch", "steps", "epochs_run", "early_stopped",
                                            "wall_time_s", "train_time_s", "train_utterances_per_s", "device",
                                            "threads", "trainable_parameters")}}
    folder = save_encoder_folder(out_dir, transformer=transformer_out, tokenizer=hf_tokenizer, heads=module.heads,
                                 mode=config.encoder.mode, meta=meta, label_spaces=label_spaces, metrics=results,
                                 card=model_card(meta))
    from ..encoders.finetuned_encoder import FinetunedEncoder

    results["encoder_id"] = FinetunedEncoder(folder).id
    results["provenance"] = provenance_block(
        config.to_dict(), config.origin,
        {"data": sources,
         "encoder": {"name": config.encoder.base, "id": str(base.source.name),
                     "weights_sha256": meta["base"]["weights_sha256"]}})
    write_json(metrics_path, results)
    write_json(folder / "metrics.json", results)
    return FinetuneRun(results, folder, module)


def _final_scores(module: FinetuneModule, data, parts, names, tokenizer, config, label_spaces, metrics,
                  dev_pairs=None):
    """``({split: {task: score}}, per_dataset)`` on dev and test with the best weights. With several datasets each
    one's split is predicted on its own and scored with its own metric (DailyDialog's micro F1 without neutral in
    the shared space, say) — ``per_dataset``: ``{split: {dataset: {task: score}}}`` — and the union is scored from
    the same predictions; with one dataset ``per_dataset`` is None. ``dev_pairs``: task → (true, predicted) of
    the best weights on dev, already known (one dataset only: they are not split by dataset)."""
    batch = config.train.eval_batch_size
    scores: dict[str, dict[str, float]] = {}
    per_dataset: dict[str, dict[str, dict[str, float]]] = {}
    for split in ("dev", "test"):
        if split not in data:
            continue
        if len(names) == 1 and split == "dev" and dev_pairs is not None:
            pairs = dev_pairs
        elif len(names) == 1:
            pairs = module.predict_split(eval_loader(data[split], tokenizer, batch))
        else:
            pieces = {}
            for name in names:
                if parts[split].get(name):
                    own = UtteranceSet(parts[split][name], tokenizer, config.context, label_spaces)
                    pieces[name] = module.predict_split(eval_loader(own, tokenizer, batch))
                    spec = get_dataset(name)
                    per_dataset.setdefault(split, {})[name] = {
                        t: round(score(spec.metric(t), yt, yp, label_spaces[t]), 4)
                        for t, (yt, yp) in pieces[name].items()}
            pairs = {t: tuple(np.concatenate([p[t][i] for p in pieces.values()]) for i in (0, 1))
                     for t in label_spaces}
        scores[split] = {t: round(score(metrics[t], yt, yp, label_spaces[t]), 4) for t, (yt, yp) in pairs.items()}
    return scores, per_dataset or None
