"""From an experiment config to graphs per split: datasets → features (cached) → graphs (cached).

Dataset facts come from the dataset registry (label spaces, metric per task); class weights are computed from
the train split only.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch_geometric.data import HeteroData

from ..data.conversation import Conversation
from ..data.labels import LABEL_SPACES, LabelSpace
from ..errors import KgemoError
from ..pipeline import InputPipeline
from .config import DataConfig, ExperimentConfig, conversations_read

__all__ = ["PreparedData", "prepare_data", "task_setup", "build_pipeline", "split_parts", "without_labels",
           "share_indices", "label_share", "neutral_keep", "neutral_share"]

log = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")


def task_setup(data: DataConfig | ExperimentConfig) -> tuple[dict[str, LabelSpace], dict[str, str]]:
    """Label space and metric name for each task of a data config.

    Datasets train together when their label spaces of a task agree: the same labels in the same order and the same
    neutral class (a file of your own can declare a built-in space's labels, or name it: ``labels: meld/emotion``);
    else ``data.label_space`` names one shared space. The space used is the first dataset's.
    """
    from ..data import get_dataset

    if isinstance(data, ExperimentConfig):
        data = data.data
    spaces: dict[str, LabelSpace] = {}
    metrics: dict[str, str] = {}
    for task in data.tasks:
        if data.label_space:
            name = f"{data.label_space}/{task}"
            if name not in LABEL_SPACES:
                raise KgemoError(f"no label space {name!r}; known: {sorted(LABEL_SPACES)}")
            spaces[task] = LABEL_SPACES[name]
        else:
            every = [*data.datasets, *data.target_datasets]
            found = [get_dataset(d).label_space(task) for d in every]
            # Compared by content, not name: the built-in spaces all differ in their labels, so for them this is
            # the name check it always was; a file's space that lists MELD's labels trains with MELD.
            if len({(s.labels, s.neutral) for s in found}) > 1:
                names = sorted({s.name for s in found})
                raise KgemoError(f"datasets {every} have different {task} label spaces {names}; "
                                 "set data.label_space (e.g. ekman7) to train on them together")
            spaces[task] = found[0]
        scored = data.target_datasets or data.datasets  # the datasets whose dev and test splits are scored
        if task in data.metrics:
            metrics[task] = data.metrics[task]
        elif data.label_space or len(scored) > 1:
            metrics[task] = "weighted_f1"
        else:
            metrics[task] = get_dataset(scored[0]).metric(task)
    return spaces, metrics


@dataclass
class PreparedData:
    pipeline: InputPipeline
    label_spaces: dict[str, LabelSpace]
    metrics: dict[str, str]
    graphs: dict[str, list[HeteroData]]
    conversations: dict[str, list]

    def train_labels(self, task: str) -> torch.Tensor:
        ys = [g["utterance"][f"y_{task}"] for g in self.graphs["train"]]
        return torch.cat(ys) if ys else torch.zeros(0, dtype=torch.long)


def without_labels(conversations: Sequence[Conversation]) -> list[Conversation]:
    """Copies of ``conversations`` with every label of every utterance removed (texts, speakers and ids kept)."""
    return [dataclasses.replace(c, utterances=[dataclasses.replace(u, labels={}) for u in c.utterances])
            for c in conversations]


def split_parts(data: DataConfig, split: str) -> list[tuple[str, bool]]:
    """``(dataset, labels_removed)`` for each dataset that makes up ``split``.

    Without target datasets: every dataset of ``data.datasets``, labelled. With them (domain adaptation): the train
    split is the source datasets' (labelled) and the target datasets' with labels removed (when
    ``data.target_train``; labelled with ``data.target_labels``); dev and test are the target datasets' alone,
    labelled, for model selection and scoring.
    """
    if not data.target_datasets:
        return [(d, False) for d in data.datasets]
    if split == "train":
        return [(d, False) for d in data.datasets] + [(d, not data.target_labels) for d in data.target_datasets
                                                      if data.target_train]
    return [(d, False) for d in data.target_datasets]


def _split_data(data: DataConfig, pipeline: InputPipeline, dataset: str, split: str, labels_removed: bool = False):
    from ..data import dataset_files, load_dataset
    from ..encoders import FeatureCache, file_sha256

    root = data.root
    convs = load_dataset(dataset, split, root=root, strict=data.strict)
    n = conversations_read(data, split)
    if n is not None:
        convs = convs[:n]
    if labels_removed:  # before anything is built from them: no target label exists past this line
        convs = without_labels(convs)
    sources = {Path(p).name: file_sha256(p) for p in dataset_files(dataset, split, root=root)}
    key = f"{dataset}/{split}" if n is None else f"{dataset}/{split}/first{n}"
    feats = FeatureCache().conversation_features(pipeline.encoder, convs, key=key, sources=sources,
                                                 desc=f"encoding {key}")
    key = {"dataset": dataset, "split": split, "sources": sources, "max_conversations": n, "strict": data.strict}
    if labels_removed:
        key["labels_removed"] = True  # a graph cache entry of its own, never the labelled graphs
    return convs, feats, key


def share_indices(n: int, share: float | int, seed: int, key: str) -> list[int]:
    """The conversations a learning-curve run keeps: the first ``ceil(share * n)`` (at least one; an ``int`` share
    is a number of conversations) of a permutation of ``range(n)`` fixed by ``seed`` and ``key`` (dataset/split), in
    their original order. Nested: for one seed and key, a smaller share keeps a subset of a larger one's."""
    k = min(n, share) if isinstance(share, int) else max(1, math.ceil(share * n))
    if k >= n:
        return list(range(n))
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    return sorted(rng.permutation(n)[:k].tolist())


def label_share(graphs: list[HeteroData], conversations: list, share: float, seed: int, key: str,
                tasks: Sequence[str] = ()) -> tuple[list[HeteroData], list]:
    """``share`` of a split's labelled conversations (:func:`share_indices`). With ``tasks``, every conversation
    stays and those outside the share lose only those tasks' labels (``-1``): a related task keeps all of its own."""
    keep = share_indices(len(graphs), share, seed, key)
    if not tasks:
        return [graphs[i] for i in keep], [conversations[i] for i in keep]
    chosen, out = set(keep), []
    for i, g in enumerate(graphs):
        if i not in chosen:
            g = g.clone()  # the cached graph is shared with other runs in this process
            for task in tasks:
                g["utterance"][f"y_{task}"] = torch.full_like(g["utterance"][f"y_{task}"], -1)
        out.append(g)
    return out, list(conversations)


def neutral_keep(all_neutral: Sequence[bool], share: float, seed: int, key: str) -> list[int]:
    """The conversations ``data.neutral_share`` keeps, in their original order: every one that is not all-neutral,
    and ``share`` of those that are (:func:`share_indices` over them, so nested per seed). The graph trainer and
    fine-tuning both choose with it."""
    flat = [i for i, a in enumerate(all_neutral) if a]
    kept = {flat[j] for j in share_indices(len(flat), share, seed, f"{key}/neutral")} if share > 0 and flat else set()
    return [i for i, a in enumerate(all_neutral) if not a or i in kept]


def neutral_share(graphs: list[HeteroData], conversations: list, task: str, neutral: int, share: float, seed: int,
                  key: str) -> tuple[list[HeteroData], list]:
    """Every conversation with a non-neutral ``task`` label, and ``share`` of those whose labelled turns are all
    ``neutral`` (:func:`neutral_keep`), in their original order."""
    flags = []
    for g in graphs:
        y = g["utterance"][f"y_{task}"]
        y = y[y >= 0]
        flags.append(bool(y.numel()) and bool((y == neutral).all()))
    keep = neutral_keep(flags, share, seed, key)
    return [graphs[i] for i in keep], [conversations[i] for i in keep]


def build_pipeline(config: ExperimentConfig) -> InputPipeline:
    """The experiment's input pipeline, made from its spec like every other pipeline."""
    return InputPipeline.from_spec(config.pipeline_spec(), encoder_batch_size=config.data.encoder_batch_size)


def prepare_data(config: ExperimentConfig | DataConfig, splits: Sequence[str] = SPLITS,
                 pipeline: InputPipeline | None = None) -> PreparedData:
    """Load every dataset split of the config, encode it (cached) and build its graphs (cached).

    Args:
        config: an experiment config, or only its data section when ``pipeline`` is given (evaluation of a saved
            model: the pipeline comes from the model folder).
        splits: the splits to prepare.
        pipeline: the input pipeline; default: the experiment's (:func:`build_pipeline`).
    """
    if pipeline is None:
        if not isinstance(config, ExperimentConfig):
            raise TypeError("prepare_data needs an ExperimentConfig, or a DataConfig and a pipeline")
        pipeline = build_pipeline(config)
    data = config.data if isinstance(config, ExperimentConfig) else config
    spaces, metrics = task_setup(data)
    graphs: dict[str, list[HeteroData]] = {}
    conversations: dict[str, list] = {}
    seed = data.share_seed if data.share_seed is not None else getattr(config, "seed", 0)
    scarce = data.train_share is not None or data.train_conversations is not None
    train_sizes: dict[str, int] = {}
    for split in splits:
        graphs[split], conversations[split] = [], []
        for dataset, labels_removed in split_parts(data, split):
            convs, feats, key = _split_data(data, pipeline, dataset, split, labels_removed)
            built = pipeline.graphs(convs, spaces, feats, cache_key=key, desc=f"graphs {dataset}/{split}")
            if (scarce and not labels_removed and (split == "train" or split == "dev" and data.share_dev)
                    and (not data.target_datasets or dataset in data.target_datasets)):  # the source stays whole
                # After the (cached) graphs of the whole split, so every share and seed reads one cache entry.
                share = data.train_share
                if share is None and split == "train":  # exactly that many, whatever the float rounding
                    share, train_sizes[dataset] = data.train_conversations, len(built)
                elif share is None:  # dev: the same share of its own conversations as train's
                    if dataset not in train_sizes:
                        train_sizes[dataset] = len(_split_data(data, pipeline, dataset, "train")[0])
                    share = data.train_conversations / train_sizes[dataset]
                built, convs = label_share(built, convs, share, seed, f"{dataset}/{split}", data.share_tasks)
            if split == "train" and data.neutral_share is not None and not labels_removed:
                task = data.tasks[0]
                before = len(built)
                built, convs = neutral_share(built, convs, task, spaces[task].neutral_index, data.neutral_share,
                                             seed, f"{dataset}/{split}")
                log.info("%s/%s: %d of %d all-neutral conversations dropped (data.neutral_share=%s)", dataset,
                         split, before - len(built), before, data.neutral_share)
            graphs[split] += built
            conversations[split] += convs
        log.info("%s: %d conversations, %d utterances", split, len(graphs[split]),
                 sum(g["utterance"].num_nodes for g in graphs[split]))
    if pipeline.concepts is not None:
        pipeline.concepts.full_table()  # a dataset reaches most concepts: load (or encode and cache) the table once
    return PreparedData(pipeline, spaces, metrics, graphs, conversations)
