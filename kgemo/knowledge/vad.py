"""NRC-VAD valence/arousal/dominance for words and ConceptNet concepts, and KET's affect intensity.

Concept VAD: the lexicon entry of the whole phrase if it has one (NRC-VAD lists ~130 phrases), else the mean
over the phrase's non-stopword words that the lexicon knows (each word tried as is, then through
:func:`~kgemo.knowledge.text.lemma_candidates`); a concept with no known word gets the neutral ``(0.5, 0.5, 0.5)``
and ``known = False``.

Affect intensity (KET, Zhong et al. 2019, eq. 1): ``‖[V − 0.5, A / 2]‖₂``, min-max normalised. KET's code
normalises with constants fitted on the lexicon (``(x − 0.06467) / 0.607468``); kgemo fits min and max on the
concepts with known VAD of the KB at hand and clips the others (neutral concepts get ``‖[0, 0.25]‖`` mapped the
same way). KET's code gives unknown words intensity 0.5 instead; use ``vad_known`` to do that.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .readers import BadRows, read_nrc_vad
from .stopwords import STOPWORDS
from .text import concept_words, lemma_candidates

__all__ = ["VadLexicon", "affect_raw", "NEUTRAL_VAD"]

NEUTRAL_VAD = np.array([0.5, 0.5, 0.5], dtype=np.float32)


def affect_raw(vad: np.ndarray) -> np.ndarray:
    """``‖[V − 0.5, A / 2]‖₂`` over the last axis of ``[..., 3]`` VAD values (before min-max scaling)."""
    vad = np.asarray(vad, dtype=np.float32)
    return np.sqrt((vad[..., 0] - 0.5) ** 2 + (vad[..., 1] / 2) ** 2).astype(np.float32)


class VadLexicon:
    """A word → (V, A, D) table.

    Args:
        words: lower-cased entries (a phrase entry keeps its spaces).
        values: ``[n, 3]`` float32 in [0, 1].
    """

    def __init__(self, words: list[str], values: np.ndarray):
        self.words = list(words)
        self.values = np.asarray(values, dtype=np.float32).reshape(-1, 3)
        self._index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def from_file(cls, path: str | Path, bad: BadRows | None = None) -> "VadLexicon":
        """Read an NRC-VAD file; malformed rows go to ``bad`` (checked: a mostly-bad file raises)."""
        bad = bad if bad is not None else BadRows(str(path))
        words, values = [], []
        for w, v, a, d in read_nrc_vad(path, bad):
            words.append(w)
            values.append((v, a, d))
        bad.check()
        return cls(words, np.array(values, dtype=np.float32).reshape(-1, 3))

    def word_index(self, word: str) -> int:
        """Index of ``word`` (as is, else its first lemma candidate in the lexicon), or -1."""
        i = self._index.get(word)
        if i is not None:
            return i
        for cand in lemma_candidates(word):
            i = self._index.get(cand)
            if i is not None:
                return i
        return -1

    def concept(self, concept: str) -> tuple[np.ndarray, bool]:
        """VAD of a ConceptNet concept (``ice_cream``) and whether any of it was known."""
        phrase = concept.replace("_", " ")
        i = self._index.get(phrase)
        if i is not None:
            return self.values[i], True
        words = [w for w in concept_words(concept) if w not in STOPWORDS] or concept_words(concept)
        rows = [j for j in (self.word_index(w) for w in words) if j >= 0]
        if not rows:
            return NEUTRAL_VAD, False
        return self.values[rows].mean(axis=0), True

    def concepts(self, concepts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """``([n, 3] float32 VAD, [n] bool known)`` for many concepts."""
        vad = np.empty((len(concepts), 3), dtype=np.float32)
        known = np.zeros(len(concepts), dtype=bool)
        for n, c in enumerate(concepts):
            vad[n], known[n] = self.concept(c)
        return vad, known
