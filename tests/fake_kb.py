"""A hand-made ConceptNet-like KB with the ``ConceptNetKB`` interface, for builder/model tests.

Concepts: 0 happy, 1 joy, 2 smile, 3 sad, 4 cry, 5 dog, 6 pet. Edges (head → tail, relation, weight):
happy→joy (RelatedTo, 2.0), happy→smile (Causes, 1.0), sad→cry (Causes, 3.0), dog→pet (IsA, 1.5),
dog→happy (RelatedTo, 1.0).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

CONCEPTS = ["happy", "joy", "smile", "sad", "cry", "dog", "pet"]
RELATIONS = ["RelatedTo", "Causes", "IsA"]
EDGES = {0: [(1, 0, 2.0), (2, 1, 1.0)], 3: [(4, 1, 3.0)], 5: [(6, 2, 1.5), (0, 0, 1.0)]}
VAD = {0: (1.0, 0.7, 0.6), 1: (0.98, 0.8, 0.7), 3: (0.1, 0.3, 0.2), 4: (0.2, 0.6, 0.3), 5: (0.7, 0.5, 0.5)}


class Neighbours(NamedTuple):
    concept: np.ndarray
    relation: np.ndarray
    weight: np.ndarray
    vad: np.ndarray
    mask: np.ndarray


class FakeKB:
    concepts = CONCEPTS
    relations = RELATIONS
    checksum = "fake-kb-1"

    def __len__(self):
        return len(CONCEPTS)

    def tokenize(self, text):
        return [w.strip(".,!?").lower() for w in text.split()]

    def lookup(self, tokens):
        return np.array([CONCEPTS.index(t) if t in CONCEPTS else -1 for t in tokens], dtype=np.int64)

    def neighbours(self, ids, k):
        ids = np.asarray(ids)
        out = Neighbours(np.full((len(ids), k), -1, np.int64), np.zeros((len(ids), k), np.int64),
                         np.zeros((len(ids), k), np.float32), np.full((len(ids), k, 3), 0.5, np.float32),
                         np.zeros((len(ids), k), bool))
        for r, cid in enumerate(ids):
            for c, (tail, rel, w) in enumerate(sorted(EDGES.get(int(cid), []), key=lambda e: -e[2])[:k]):
                out.concept[r, c], out.relation[r, c], out.weight[r, c], out.mask[r, c] = tail, rel, w, True
                out.vad[r, c] = self.vad([tail])[0]
        return out

    def vad(self, ids):
        return np.array([VAD.get(int(i), (0.5, 0.5, 0.5)) for i in ids], dtype=np.float32).reshape(-1, 3)

    def vad_known(self, ids):
        return np.array([int(i) in VAD for i in ids], dtype=bool)

    def affect(self, ids):
        v = self.vad(ids)
        raw = np.linalg.norm(np.stack([v[:, 0] - 0.5, v[:, 1] / 2], 1), axis=1)
        return (raw / np.sqrt(0.5)).astype(np.float32)  # ‖[±0.5, 0.5]‖ is the largest possible

    def concept_embeddings(self, encoder, cache=True):
        return encoder.encode([c.replace("_", " ") for c in CONCEPTS])
