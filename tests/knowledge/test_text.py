import doctest

import pytest

from kgemo.knowledge import text
from kgemo.knowledge.stopwords import STOPWORDS
from kgemo.knowledge.text import concept_words, lemma_candidates, to_concept, tokenize


def test_docstring_examples():
    assert doctest.testmod(text).failed == 0


def test_tokenize_lowercases_and_splits_contractions_and_odd_quotes():
    assert tokenize("I can't believe Joey's SANDWICH!") == ["i", "can", "t", "believe", "joey", "s", "sandwich"]
    assert tokenize("I\x92m fine") == ["i", "m", "fine"]
    assert tokenize("Café au lait") == ["café", "au", "lait"]
    assert tokenize("") == []


def test_contraction_pieces_and_fillers_are_stopwords():
    for w in ("t", "s", "m", "ll", "ve", "re", "nt", "the", "and", "oh", "yeah"):
        assert w in STOPWORDS
    for w in ("love", "happy", "dog", "cry", "serious"):
        assert w not in STOPWORDS


def test_to_concept_and_back():
    assert to_concept("  Ice  Cream ") == "ice_cream"
    assert to_concept("play_on ice") == "play_on_ice"
    assert concept_words("play_on_ice") == ["play", "on", "ice"]


@pytest.mark.parametrize("token, base", [
    ("parties", "party"), ("dogs", "dog"), ("boxes", "box"), ("walked", "walk"), ("loved", "love"),
    ("stopped", "stop"), ("eating", "eat"), ("making", "make"), ("running", "run"), ("happier", "happy"),
    ("happily", "happy"), ("sadly", "sad"), ("went", "go"), ("children", "child"), ("cried", "cry"),
])
def test_lemma_candidates_contain_the_base_form(token, base):
    assert base in lemma_candidates(token)
    assert token not in lemma_candidates(token)


def test_lemma_candidates_leave_short_words_alone():
    assert lemma_candidates("is") == []
    assert lemma_candidates("bus") == []


@pytest.mark.parametrize("token, first", [("scared", "scare"), ("hoping", "hope"), ("running", "run"),
                                          ("stopped", "stop"), ("walked", "walk"), ("played", "play")])
def test_lemma_candidates_put_the_likelier_verb_stem_first(token, first):
    # The resolver takes the first candidate with neighbours: "scared" must not become "scar".
    assert lemma_candidates(token)[0] == first
