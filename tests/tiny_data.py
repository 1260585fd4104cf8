"""Tiny labelled conversations and a ready ``PreparedData`` for model / trainer tests (no model files, no data)."""
from __future__ import annotations

import random

from fake_kb import FakeKB

from kgemo.data import Conversation, Utterance, label_space
from kgemo.graphs import get_builder
from kgemo.pipeline import InputPipeline
from kgemo.training import PreparedData

LINES = {
    "joy": ["I am so happy today", "my dog makes me happy", "what a joy", "happy happy"],
    "sadness": ["I am sad", "the dog will cry", "so sad and I cry", "I could cry"],
    "neutral": ["ok then", "see you at five", "where is the station", "fine"],
}


def tiny_conversations(n: int, seed: int = 0) -> list[Conversation]:
    rng = random.Random(seed)
    convs = []
    for c in range(n):
        utts = []
        for i in range(rng.randint(2, 6)):
            emotion = rng.choice(list(LINES))
            utts.append(Utterance(rng.choice(LINES[emotion]), "AB"[i % 2], {"emotion": emotion}))
        convs.append(Conversation(f"c{c}", utts, dataset="tiny", split="train"))
    return convs


def tiny_prepared(encoder, builder: str = "concept", sizes=(40, 10, 10), **builder_params) -> PreparedData:
    spaces = {"emotion": label_space("meld", "emotion")}
    kb = FakeKB()
    pipe = InputPipeline(get_builder(builder, **builder_params), encoder,
                         {"conceptnet": kb} if builder == "concept" else {},
                         {"conceptnet": "fake"} if builder == "concept" else {}, "tiny")
    graphs, convs = {}, {}
    for split, n, seed in zip(("train", "dev", "test"), sizes, (0, 1, 2)):
        convs[split] = tiny_conversations(n, seed)
        graphs[split] = pipe.graphs(convs[split], spaces)
    return PreparedData(pipe, spaces, {"emotion": "weighted_f1"}, graphs, convs)
