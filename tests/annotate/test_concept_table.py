"""ConceptTable: concepts encoded on demand (same values as the full table), the cached table used when present."""
import numpy as np
import pytest
import torch
from annotate_data import EDGES, vad_lexicon
from torch_geometric.data import HeteroData

from kgemo.concept_table import ConceptTable
from kgemo.knowledge import ConceptNetKB


class Recording:
    def __init__(self, inner):
        self.inner, self.id, self.dim, self.texts = inner, inner.id, inner.dim, []

    def encode(self, texts, batch_size=None, show_progress=None):
        self.texts += list(texts)
        return self.inner.encode(texts)


def _graph(kb, token_words, concept_words):
    d = HeteroData()
    d["token"].kid = torch.tensor([kb.concept_id(w) for w in token_words], dtype=torch.long)
    d["concept"].kid = torch.tensor([kb.concept_id(w) for w in concept_words], dtype=torch.long)
    return d


@pytest.fixture
def kb():
    return ConceptNetKB.from_edges(EDGES, vad=vad_lexicon())


def test_encodes_only_what_a_batch_needs_once(kb, tiny_encoder):
    enc = Recording(tiny_encoder)
    table = ConceptTable(kb, enc, full_fraction=1.0)
    assert not table.complete
    d = table(_graph(kb, ["dog", "happy"], ["pet", "happy", "joy"]))
    assert sorted(enc.texts) == ["dog", "happy", "joy", "pet"]
    full = kb.concept_embeddings(tiny_encoder, cache=False)
    np.testing.assert_allclose(d["concept"].x.numpy(), full[d["concept"].kid.numpy()], atol=1e-6)
    np.testing.assert_allclose(d["token"].x.numpy(), full[d["token"].kid.numpy()], atol=1e-6)
    enc.texts.clear()
    table(_graph(kb, ["dog"], ["pet", "smile"]))
    assert enc.texts == ["smile"]


def test_switches_to_the_full_cached_table_past_the_fraction(kb, tiny_encoder, kgemo_home):
    enc = Recording(tiny_encoder)
    table = ConceptTable(kb, enc, full_fraction=0.3)
    table(_graph(kb, ["dog", "happy", "sad", "job"], ["pet", "joy", "cry", "work", "smile"]))
    assert table.complete and len(enc.texts) == len(kb)
    # The next annotator finds the cached table and encodes nothing.
    enc.texts.clear()
    again = ConceptTable(kb, enc)
    assert again.complete
    again(_graph(kb, ["dog"], ["pet"]))
    assert enc.texts == []


def test_no_concepts_gives_empty_features(kb, tiny_encoder):
    d = ConceptTable(kb, tiny_encoder)(_graph(kb, [], []))
    assert d["token"].x.shape == (0, tiny_encoder.dim) and d["concept"].x.shape == (0, tiny_encoder.dim)
