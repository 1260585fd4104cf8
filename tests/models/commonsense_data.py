"""Tiny event-graph inputs for the COSMIC / TODKAT tests: a hand-made ATOMIC table, the tiny conversations of
``tiny_data``, and a tiny random COMET (BART) built on the spot — no model files, no data, no COMET weights."""
from __future__ import annotations

from pathlib import Path

from tiny_data import tiny_conversations

from kgemo.atomic_relations import COSMIC_RELATIONS
from kgemo.data import label_space
from kgemo.graphs import get_builder
from kgemo.knowledge import AtomicRetriever, AtomicTable
from kgemo.pipeline import InputPipeline
from kgemo.training import PreparedData

SPACES = {"emotion": label_space("meld", "emotion")}
HEADS = {
    "PersonX is so happy today": ("to celebrate", "smiles", "joyful", "they smile back", "happy for them"),
    "PersonX cries": ("to be comforted", "gets tissues", "sad", "they worry", "concerned"),
    "PersonX asks where the station is": ("to find the way", "gets directions", "curious", "they help",
                                          "helpful"),
    "PersonX loses PersonX's dog": ("to find the dog", "searches", "upset", "they search too", "sorry"),
    "PersonX says fine": ("to agree", "moves on", "calm", "they nod", "relieved"),
}
TUPLES = [(head, rel, tail) for head, tails in HEADS.items() for rel, tail in zip(COSMIC_RELATIONS, tails)]
WORDS = ("i am so happy today my dog makes me what a joy sad the will cry and could ok then see you at five where "
         "is station fine to celebrate smiles joyful they smile back for them PersonX xIntent xEffect xReact oEffect "
         "oReact").split()


def retriever(encoder) -> AtomicRetriever:
    return AtomicRetriever(AtomicTable.from_tuples(TUPLES), encoder=encoder)


def event_pipeline(encoder, comet=None, **graph) -> InputPipeline:
    knowledge = {"atomic": retriever(encoder)}
    settings = {"atomic": "custom"}
    if comet is not None:
        knowledge["comet"], settings["comet"] = comet, "custom"
        comet.checksum = comet.id
    return InputPipeline(get_builder("event", **graph), encoder, knowledge, settings, "tiny")


def event_prepared(encoder, sizes=(40, 10, 10), comet=None, **graph) -> PreparedData:
    pipe = event_pipeline(encoder, comet, **graph)
    graphs, convs = {}, {}
    for split, n, seed in zip(("train", "dev", "test"), sizes, (0, 1, 2)):
        convs[split] = tiny_conversations(n, seed)
        graphs[split] = pipe.graphs(convs[split], SPACES)
    return PreparedData(pipe, SPACES, {"emotion": "weighted_f1"}, graphs, convs)


def tiny_comet_bart(folder: Path) -> Path:
    """A random 1-layer BART with a word-level tokenizer over ``WORDS``, saved as a COMET checkpoint folder."""
    from kgemo.knowledge.comet import save_random_comet

    return save_random_comet(folder, WORDS, max_positions=64)


def labels_and_predictions(model, data: PreparedData, split: str, task: str = "emotion"):
    """Gold labels and ``model``'s argmax predictions over ``data``'s graphs of ``split`` (unlabelled turns left
    out), as the trainer's score should see them."""
    import torch

    from kgemo.models.predict import predict

    y = torch.cat([g["utterance"][f"y_{task}"] for g in data.graphs[split]])
    pred = predict(model, data.graphs[split], data.pipeline.transform, batch_size=3)[task].argmax(-1)
    keep = y >= 0
    return y[keep].numpy(), pred[keep].numpy()


def chance_ceiling(data: PreparedData, split: str = "test", task: str = "emotion", draws: int = 500) -> float:
    """The best score of ``draws`` random labelings of ``split``, each label drawn from the train split's label
    frequencies (seeded): a model that beats it has learned something about the fixture (p < 1/draws)."""
    import numpy as np
    import torch

    from kgemo.metrics import score

    def labels(s):
        y = torch.cat([g["utterance"][f"y_{task}"] for g in data.graphs[s]]).numpy()
        return y[y >= 0]

    y, train = labels(split), labels("train")
    rng = np.random.default_rng(0)
    return max(score(data.metrics[task], y, rng.choice(train, len(y)), data.label_spaces[task])
               for _ in range(draws))
