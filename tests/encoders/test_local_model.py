"""Any Hugging Face model folder works, ids follow the weights, and a missing model is a clear error."""
from __future__ import annotations

import numpy as np
import pytest

from kgemo.encoders import SentenceEncoder, TokenEncoder
from kgemo.errors import DataNotFoundError


def test_local_hf_folder_with_both_encoders(tiny_bert_dir):
    sent = SentenceEncoder(tiny_bert_dir, device="cpu")
    x = sent.encode(["i love it", "so sad", "i love it"])
    assert sent.dim == 32 and x.shape == (3, 32) and x.dtype == np.float32
    np.testing.assert_array_equal(x[0], x[2])
    assert not np.allclose(x[0], x[1])
    assert sent.id.startswith("sentence:tiny-bert@")

    tok = TokenEncoder(str(tiny_bert_dir), device="cpu")
    states = tok.encode(["i love it"])[0]
    assert states.tokens == ["[CLS]", "i", "love", "it", "[SEP]"]
    assert states.states.shape == (5, 32)
    # Without a sentence-transformers config the folder gets mean pooling, so the two paths agree.
    np.testing.assert_allclose(states.states.mean(axis=0), x[0], atol=1e-5)
    # Words of one sub-word each: their states are those tokens' states.
    words = tok.encode_words([["i", "love", "it"]])[0]
    np.testing.assert_allclose(words, states.states[1:4], atol=1e-5)
    assert tok.encode_words([["i", "loved", "it"]])[0].shape == (3, 32)


def test_id_changes_with_the_weights_and_not_with_a_readme(tmp_path, make_tiny_bert):
    a = make_tiny_bert(tmp_path / "a", seed=0)
    b = make_tiny_bert(tmp_path / "b", seed=1)
    c = make_tiny_bert(tmp_path / "c", seed=0)
    (c / "README.md").write_text("a model card does not change what the model computes")
    ida, idb, idc = (SentenceEncoder(p).id.split("@")[1] for p in (a, b, c))
    assert ida != idb
    assert ida == idc


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        SentenceEncoder(tmp_path / "nope").id
    with pytest.raises(DataNotFoundError, match="no model files"):
        TokenEncoder(tmp_path).id


def test_uncached_hub_name_offline_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache
    with pytest.raises(DataNotFoundError, match="kgemo-test/no-such-model"):
        SentenceEncoder("kgemo-test/no-such-model").id
