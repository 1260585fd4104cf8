"""ATOMIC's if-then relations, and which ones each commonsense method uses — the one list every part reads.

Relations starting with ``x`` are about the person of the event (in a conversation: the speaker of the
utterance), those starting with ``o`` about the others (the listeners); the rest describe the event or the person
(``xAttr``) without a party. Knowledge sources (ATOMIC retrieval, COMET generation), graph builders and models
all take their relation lists from here, so a method's relations are written once.
"""
from __future__ import annotations

__all__ = ["ATOMIC_2019_RELATIONS", "COSMIC_RELATIONS", "TODKAT_RELATIONS", "SPEAKER_RELATIONS",
           "LISTENER_RELATIONS", "is_listener_relation"]

#: The nine relations of ATOMIC (Sap et al., 2019).
ATOMIC_2019_RELATIONS = ("oEffect", "oReact", "oWant", "xAttr", "xEffect", "xIntent", "xNeed", "xReact", "xWant")
#: The relations COSMIC feeds its model (Ghosal et al., 2020): intent, effect and reaction of the speaker, effect
#: and reaction of the listeners.
COSMIC_RELATIONS = ("xIntent", "xEffect", "xReact", "oEffect", "oReact")
#: The relations TODKAT retrieves and generates (Zhu et al., 2021).
TODKAT_RELATIONS = ("xIntent", "xReact", "oReact")
#: COSMIC's relations about the speaker, and about the listeners.
SPEAKER_RELATIONS = tuple(r for r in COSMIC_RELATIONS if r.startswith("x"))
LISTENER_RELATIONS = tuple(r for r in COSMIC_RELATIONS if r.startswith("o"))


def is_listener_relation(relation: str) -> bool:
    """Whether ``relation`` describes the others of an event (``oReact``), not its person (``xReact``)."""
    return relation.startswith("o") and relation[1:2].isupper()
