"""Data for the annotator tests: a tiny ConceptNet, VAD, an ATOMIC slice whose heads are some of the test
utterances (exact retrieval hits), and a four-turn conversation."""
from __future__ import annotations

import numpy as np

from kgemo.knowledge import VadLexicon
from kgemo.models import save_model

EDGES = [
    ("RelatedTo", "happy", "joy", 2.0), ("Causes", "happy", "smile", 1.0), ("Causes", "sad", "cry", 3.0),
    ("IsA", "dog", "pet", 1.5), ("RelatedTo", "dog", "happy", 1.0), ("RelatedTo", "job", "work", 2.0),
    ("IsA", "job", "employment", 1.0), ("HasProperty", "exam", "difficult", 1.0), ("Causes", "fail", "sad", 2.0),
]
VAD = {"happy": (1.0, 0.735, 0.772), "joy": (0.98, 0.824, 0.794), "smile": (0.96, 0.56, 0.6),
       "sad": (0.052, 0.288, 0.164), "cry": (0.1, 0.7, 0.2), "dog": (0.75, 0.5, 0.45)}
ATOMIC = [
    ("I got the job", "xReact", "proud"), ("I got the job", "oReact", "happy for them"),
    ("I got the job", "xIntent", "to earn money"), ("I failed my exam", "xReact", "sad"),
    ("I failed my exam", "oReact", "sympathetic"), ("PersonX walks the dog", "xIntent", "to exercise"),
]
CONVERSATION = [("Anna", "I got the job"), ("Ben", "my dog is happy too"), ("Anna", "I failed my exam"),
                ("Ben", "so sad, I could cry")]


def vad_lexicon():
    words = list(VAD)
    return VadLexicon(words, np.array([VAD[w] for w in words], dtype=np.float32))


def save_tiny(model, pipeline, path, tasks):
    """Save a test model folder with the pipeline spec (and the data section `kgemo evaluate` needs)."""
    spec = pipeline.spec({"datasets": ["meld"], "tasks": tasks, "label_space": None,
                          "metrics": {t: "weighted_f1" for t in tasks}})
    return save_model(model, path, spec)
