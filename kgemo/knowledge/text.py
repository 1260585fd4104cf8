"""Text → ConceptNet concept strings: the tokenizer, concept normalisation and a tiny rule-based lemmatiser.

ConceptNet names English concepts by lower-cased words joined with ``_`` (``/c/en/ice_cream``). kgemo matches a
token against the concept vocabulary in this order: the token itself, then the few candidate base forms
:func:`lemma_candidates` proposes (irregular forms from a small table, then suffix rules for plural ``-s/-es/-ies``,
past ``-ed/-ied``, gerund ``-ing``, comparative ``-er/-est`` and adverb ``-ly``), keeping the first that is a
concept. Rules are only tried when the surface form is not itself a concept, so a wrong rule ("water" → "wat")
never hides a real match; no NLTK or spaCy model is needed.
"""
from __future__ import annotations

import re

from .stopwords import STOPWORDS

__all__ = ["tokenize", "to_concept", "concept_text", "concept_words", "lemma_candidates", "is_stopword"]

# Letters and digits of any script; apostrophes split ("don't" → "don", "t", both stopwords), as do the odd
# "\x92"-style quotes found in MELD.
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_SPACE = re.compile(r"[\s_]+")

# Irregular forms common in conversation → base form (checked before the suffix rules).
_IRREGULAR = {
    "went": "go", "gone": "go", "goes": "go", "did": "do", "done": "do", "made": "make", "said": "say",
    "got": "get", "gotten": "get", "took": "take", "taken": "take", "came": "come", "saw": "see", "seen": "see",
    "knew": "know", "known": "know", "thought": "think", "told": "tell", "felt": "feel", "left": "leave",
    "kept": "keep", "brought": "bring", "bought": "buy", "found": "find", "gave": "give", "given": "give",
    "ate": "eat", "eaten": "eat", "wrote": "write", "written": "write", "spoke": "speak", "spoken": "speak",
    "broke": "break", "broken": "break", "fell": "fall", "fallen": "fall", "ran": "run", "sat": "sit",
    "stood": "stand", "lost": "lose", "won": "win", "paid": "pay", "met": "meet", "sent": "send", "spent": "spend",
    "built": "build", "slept": "sleep", "drove": "drive", "driven": "drive", "flew": "fly", "flown": "fly",
    "forgot": "forget", "forgotten": "forget", "heard": "hear", "held": "hold", "hurt": "hurt", "led": "lead",
    "meant": "mean", "taught": "teach", "caught": "catch", "fought": "fight", "sang": "sing", "sung": "sing",
    "drank": "drink", "drunk": "drink", "began": "begin", "begun": "begin", "chose": "choose", "chosen": "choose",
    "wore": "wear", "worn": "wear", "threw": "throw", "thrown": "throw", "grew": "grow", "grown": "grow",
    "children": "child", "men": "man", "women": "woman", "feet": "foot", "teeth": "tooth", "mice": "mouse",
    "better": "good", "best": "good", "worse": "bad", "worst": "bad", "happier": "happy", "happiest": "happy",
}
_VOWELS = set("aeiou")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens used for concept lookup.

    Example:
        >>> tokenize("I can't believe Joey's sandwich!")
        ['i', 'can', 't', 'believe', 'joey', 's', 'sandwich']
    """
    return _TOKEN.findall(text.lower())


def to_concept(text: str) -> str:
    """ConceptNet form of a word or phrase: lower-case, whitespace and ``_`` runs → one ``_``, stripped."""
    return _SPACE.sub("_", text.strip().lower()).strip("_")


def concept_text(concept: str) -> str:
    """Readable text of a concept (``ice_cream`` → ``ice cream``), what the sentence encoder sees."""
    return concept.replace("_", " ")


def concept_words(concept: str) -> list[str]:
    """The words of a concept (``play_on_ice`` → ``['play', 'on', 'ice']``)."""
    return [w for w in concept.split("_") if w]


def is_stopword(token: str) -> bool:
    return token in STOPWORDS


def _verb_stems(stem: str) -> list[str]:
    """Base forms for the stem left by removing -ed / -ing, the likelier spelling first.

    A doubled final consonant was added by the suffix ("stopp" → "stop"); a consonant-vowel-consonant ending
    usually lost a silent e ("hop" → "hope", "scar" → "scare": "hoping", "scared"); otherwise the stem is the verb
    ("walk"). Order matters: the resolver takes the first candidate that is a concept with neighbours.
    """
    if len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in _VOWELS:
        return [stem[:-1], stem]
    if (len(stem) >= 3 and stem[-1] not in _VOWELS | set("wxy") and stem[-2] in _VOWELS
            and stem[-3] not in _VOWELS):
        return [stem + "e", stem]
    return [stem, stem + "e"]


def lemma_candidates(token: str) -> list[str]:
    """Possible base forms of ``token``, most likely first (the token itself is not included).

    Example:
        >>> lemma_candidates("parties")
        ['party', 'parti', 'partie']
        >>> lemma_candidates("running")
        ['run', 'runn']
        >>> lemma_candidates("scared")
        ['scare', 'scar']
    """
    t = token
    out: list[str] = []
    if t in _IRREGULAR:
        out.append(_IRREGULAR[t])
    n = len(t)
    if n > 4 and t.endswith("ies"):
        out.append(t[:-3] + "y")
    if n > 4 and t.endswith("ied"):
        out.append(t[:-3] + "y")
    if n > 3 and t.endswith("es"):
        out.append(t[:-2])
    if n > 3 and t.endswith("s") and not t.endswith("ss"):
        out.append(t[:-1])
    if n > 4 and t.endswith("ed"):
        out += _verb_stems(t[:-2])  # "walked" → "walk", "loved" → "love", "stopped" → "stop"
    if n > 5 and t.endswith("ing"):
        out += _verb_stems(t[:-3])  # "eating" → "eat", "hoping" → "hope", "running" → "run"
    if n > 5 and t.endswith("iest"):
        out.append(t[:-4] + "y")
    if n > 4 and t.endswith("ier"):
        out.append(t[:-3] + "y")
    if n > 4 and t.endswith("est"):
        out.append(t[:-3])
    if n > 4 and t.endswith("er"):
        out.append(t[:-2])
    if n > 5 and t.endswith("ily"):
        out.append(t[:-3] + "y")  # "happily" → "happy"
    if n > 4 and t.endswith("ly"):
        out.append(t[:-2])  # "sadly" → "sad"
    seen: set[str] = {t}
    return [c for c in out if len(c) > 1 and not (c in seen or seen.add(c))]
