"""Small value types shared by the knowledge providers, RDF export and the annotator's evidence."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np

__all__ = ["Triple", "Neighbours", "Span", "AtomicHit", "Evidence"]


class Triple(NamedTuple):
    """One knowledge statement: ``head --relation--> tail`` with a confidence weight and its source."""

    head: str
    relation: str
    tail: str
    weight: float = 1.0
    source: str = "conceptnet"


class Neighbours(NamedTuple):
    """Top-k ConceptNet neighbours of n query concepts, padded to k (sorted by weight, descending).

    Shapes:
        concept: ``[n, k]`` int64 concept ids, -1 = padding.
        relation: ``[n, k]`` int64 relation ids into ``kb.relations`` (-1 = padding); ids ≥
            ``kb.num_base_relations`` are inverse edges (the query concept is the tail).
        weight: ``[n, k]`` float32 ConceptNet confidence (0 = padding).
        vad: ``[n, k, 3]`` float32 valence/arousal/dominance of the neighbour (0 = padding).
        mask: ``[n, k]`` bool, True where a neighbour exists.
    """

    concept: np.ndarray
    relation: np.ndarray
    weight: np.ndarray
    vad: np.ndarray
    mask: np.ndarray


class Span(NamedTuple):
    """A matched concept over tokens ``[start, end)``."""

    start: int
    end: int
    concept: int


class AtomicHit(NamedTuple):
    """A retrieved ATOMIC tail: the tail text, the similarity of its head to the query, the head and relation."""

    tail: str
    score: float
    head: str
    relation: str


@dataclass
class Evidence:
    """One piece of knowledge an annotation used, with provenance.

    Args:
        source: ``conceptnet``, ``atomic``, ``comet`` (generated), ``atomic-retrieval`` or ``rdf`` (user KB).
        head, relation, tail: the statement (for COMET/ATOMIC the head is the utterance or retrieved event).
        weight: the KB's confidence (ConceptNet weight, retrieval similarity), if any.
        attention: the weight the model gave this evidence, if any.
        utterance: index of the utterance it explains, if any.
        token: the token it was attached to, if any.
        extra: anything else worth keeping (e.g. VAD).
    """

    source: str
    head: str
    relation: str
    tail: str
    weight: float | None = None
    attention: float | None = None
    utterance: int | None = None
    token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if v is not None and v != {}}

    def triple(self) -> Triple:
        return Triple(self.head, self.relation, self.tail, 1.0 if self.weight is None else float(self.weight),
                      self.source)
