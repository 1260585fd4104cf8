"""From an experiment config to graphs per split: datasets → features (cached) → graphs (cached).

Dataset facts come from the dataset registry (label spaces, metric per task); class weights are computed from
the train split only.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch_geometric.data import HeteroData

from ..data.labels import LABEL_SPACES, LabelSpace, label_space
from ..errors import KgemoError
from ..graphs import InputPipeline, get_builder, load_knowledge
from .config import ExperimentConfig

__all__ = ["PreparedData", "prepare_data", "task_setup", "build_pipeline"]

log = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")


def task_setup(config: ExperimentConfig) -> tuple[dict[str, LabelSpace], dict[str, str]]:
    """Label space and metric name for each task of the config."""
    from ..data import DATASETS

    spaces: dict[str, LabelSpace] = {}
    metrics: dict[str, str] = {}
    for task in config.data.tasks:
        if config.data.label_space:
            name = f"{config.data.label_space}/{task}"
            if name not in LABEL_SPACES:
                raise KgemoError(f"no label space {name!r}; known: {sorted(LABEL_SPACES)}")
            spaces[task] = LABEL_SPACES[name]
        else:
            found = {label_space(d, task).name for d in config.data.datasets}
            if len(found) > 1:
                raise KgemoError(f"datasets {config.data.datasets} have different {task} label spaces {found}; "
                                 "set data.label_space (e.g. ekman7) to train on them together")
            spaces[task] = label_space(config.data.datasets[0], task)
        if task in config.data.metrics:
            metrics[task] = config.data.metrics[task]
        elif config.data.label_space or len(config.data.datasets) > 1:
            metrics[task] = "weighted_f1"
        else:
            spec = DATASETS[config.data.datasets[0]]
            metrics[task] = spec.metrics[task]
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


def _split_data(config: ExperimentConfig, pipeline: InputPipeline, dataset: str, split: str):
    from ..data import dataset_files, load_dataset
    from ..encoders import FeatureCache, file_sha256

    root = config.data.root
    convs = load_dataset(dataset, split, root=root, strict=config.data.strict)
    n = config.data.max_conversations
    if n is not None:
        convs = convs[:n]
    sources = {Path(p).name: file_sha256(p) for p in dataset_files(dataset, split, root=root)}
    key = f"{dataset}/{split}" if n is None else f"{dataset}/{split}/first{n}"
    feats = FeatureCache().conversation_features(pipeline.encoder, convs, key=key, sources=sources,
                                                 desc=f"encoding {key}")
    return convs, feats, {"dataset": dataset, "split": split, "sources": sources, "max_conversations": n,
                          "strict": config.data.strict}


def build_pipeline(config: ExperimentConfig) -> InputPipeline:
    from ..encoders import SentenceEncoder
    from ..models import get_model_class

    model_cls = get_model_class(config.model["name"])
    builder = get_builder(model_cls.graph_builder, **config.graph)
    encoder = SentenceEncoder(config.data.encoder, batch_size=config.data.encoder_batch_size)
    return InputPipeline(builder, encoder, load_knowledge(config.knowledge, encoder), config.knowledge,
                         config.data.encoder)


def prepare_data(config: ExperimentConfig, splits: Sequence[str] = SPLITS,
                 pipeline: InputPipeline | None = None) -> PreparedData:
    """Load every dataset split of the config, encode it (cached) and build its graphs (cached)."""
    spaces, metrics = task_setup(config)
    pipeline = pipeline or build_pipeline(config)
    graphs: dict[str, list[HeteroData]] = {}
    conversations: dict[str, list] = {}
    for split in splits:
        graphs[split], conversations[split] = [], []
        for dataset in config.data.datasets:
            convs, feats, key = _split_data(config, pipeline, dataset, split)
            graphs[split] += pipeline.graphs(convs, spaces, feats, cache_key=key, desc=f"graphs {dataset}/{split}")
            conversations[split] += convs
        log.info("%s: %d conversations, %d utterances", split, len(graphs[split]),
                 sum(g["utterance"].num_nodes for g in graphs[split]))
    return PreparedData(pipeline, spaces, metrics, graphs, conversations)
