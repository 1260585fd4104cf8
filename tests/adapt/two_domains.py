"""Two tiny labelled domains (DailyDialog-like source, MELD-like target) in the ekman7 space, for kgemo.adapt tests.

``patch_datasets`` makes ``prepare_data`` load them instead of the real files, so the trainer's whole path (labels
removed from the target's train split, graphs, batches, training) runs in a second.
"""
from __future__ import annotations

import random

from kgemo.data import Conversation, Utterance

LINES = {
    "joy": ["I am so happy today", "my dog makes me happy", "what a joy", "happy happy"],
    "sadness": ["I am sad", "the dog will cry", "so sad and I cry", "I could cry"],
    "neutral": ["ok then", "see you at five", "where is the station", "fine"],
}
#: How the target speaks: other words for the same classes (a domain shift).
TARGET_LINES = {
    "joy": ["yay we won", "best day ever", "this is great news"],
    "sadness": ["we lost everything", "nobody came to my party", "my cat died"],
    "neutral": ["the bus leaves at nine", "what time is it", "it is on the table"],
}
SIZES = {"train": 24, "dev": 8, "test": 8}


def conversations(dataset: str, split: str, garbage: bool = False) -> list[Conversation]:
    """Conversations of ``dataset`` (``dailydialog`` = source style, ``meld`` = target style); ``garbage`` draws
    every label at random, independently of the text."""
    seed = {"train": 0, "dev": 1, "test": 2}[split] + (10 if dataset == "meld" else 0)
    rng, noise = random.Random(seed), random.Random(seed + 100)
    lines = TARGET_LINES if dataset == "meld" else LINES
    convs = []
    for c in range(SIZES[split]):
        utts = []
        for i in range(rng.randint(2, 5)):
            emotion = rng.choice(list(lines))
            text = rng.choice(lines[emotion])
            label = noise.choice(["anger", "fear", "disgust", "surprise", "joy"]) if garbage else emotion
            utts.append(Utterance(text, "AB"[i % 2], {"emotion": label}))
        convs.append(Conversation(f"{dataset}{c}", utts, dataset=dataset, split=split))
    return convs


def patch_datasets(monkeypatch, tmp_path, garbage_target: tuple[str, ...] = ()):
    """Serve :func:`conversations` through ``kgemo.data.load_dataset``; the splits named in ``garbage_target`` of
    the target (meld) get random labels."""
    import kgemo.data as data

    files = {}

    def load_dataset(name, split, root=None, strict=True):
        return conversations(name, split, garbage=name == "meld" and split in garbage_target)

    def dataset_files(name, split, root=None):
        path = tmp_path / f"{name}_{split}.txt"
        if path not in files:
            path.write_text(f"{name} {split}\n")
            files[path] = True
        return [path]

    monkeypatch.setattr(data, "load_dataset", load_dataset)
    monkeypatch.setattr(data, "dataset_files", dataset_files)
