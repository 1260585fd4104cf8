"""SentenceEncoder on the packaged MiniLM (offline) — few, fast checks of what callers rely on."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from kgemo.encoders import SentenceEncoder, TruncationWarning
from kgemo.errors import DataFormatError

TEXTS = ["I can't believe you did that!", "Okay.", "Oh my God, Ross, that's wonderful news!",
         "Get out.", "Why would you say something like that to me after everything we went through?"]


def tol(enc) -> float:
    return 2e-3 if enc.fp16 else 1e-5


def test_construction_is_lazy_and_id_is_cheap():
    enc = SentenceEncoder()
    assert enc._model is None
    assert enc.id.startswith("sentence:all-MiniLM-L6-v2@") and enc.id.endswith(":max128")
    assert enc._model is None, "asking the id must not load the model"
    assert SentenceEncoder().id == enc.id
    assert SentenceEncoder(max_length=64).id != enc.id, "truncation changes features, so it changes the id"


def test_packaged_minilm_offline_shape_norm_determinism(minilm):
    x = minilm.encode(TEXTS)
    assert minilm.dim == 384
    assert x.shape == (len(TEXTS), 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-3)
    np.testing.assert_array_equal(minilm.encode(TEXTS), x)
    # Different texts, different vectors; a paraphrase is closer than an unrelated text.
    sim = x @ x.T
    assert sim[0, 1] < 0.9
    para = minilm.encode(["I cannot believe you did this!"])[0]
    assert para @ x[0] > para @ x[3]


def test_same_text_same_vector_whatever_the_batch(minilm):
    ref = minilm.encode(TEXTS)
    np.testing.assert_allclose(minilm.encode(TEXTS, batch_size=2), ref, atol=tol(minilm))
    np.testing.assert_allclose(minilm.encode(TEXTS[::-1])[::-1], ref, atol=tol(minilm))
    np.testing.assert_allclose(minilm.encode(TEXTS, sort=False), ref, atol=tol(minilm))
    alone = np.stack([minilm.encode([t])[0] for t in TEXTS])
    np.testing.assert_allclose(alone, ref, atol=tol(minilm))


def test_duplicates_and_order_restored(minilm):
    texts = ["Okay.", "No way!", "Okay.", "Okay."]
    x = minilm.encode(texts)
    np.testing.assert_array_equal(x[0], x[2])
    np.testing.assert_array_equal(x[0], x[3])
    np.testing.assert_allclose(x[1], minilm.encode(["No way!"])[0], atol=tol(minilm))


def test_empty_input(minilm):
    assert minilm.encode([]).shape == (0, 384)


def test_truncation_is_warned(minilm):
    with pytest.warns(TruncationWarning, match=r"1 of 2 texts .* max_length=128"):
        minilm.encode(["hello " * 200, "short"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        minilm.encode(["short", "also short"])


def test_truncation_keeps_the_first_max_length_tokens(minilm):
    enc = SentenceEncoder(max_length=16)
    long = " ".join(f"word{i}" for i in range(30))  # ~60 tokens: cut at 16, whole at 128
    ids = enc.model.tokenizer(long, truncation=True, max_length=16)["input_ids"]
    head = enc.model.tokenizer.decode(ids[1:-1])  # the 14 tokens between [CLS] and [SEP]
    with pytest.warns(TruncationWarning):
        cut = enc.encode([long])
    np.testing.assert_allclose(cut, enc.encode([head]), atol=tol(enc))
    assert np.abs(cut - minilm.encode([long])).max() > 1e-2


@pytest.mark.parametrize("bad", ["just one string", ["fine", 3], None])
def test_bad_input_is_a_data_format_error(minilm, bad):
    with pytest.raises(DataFormatError):
        minilm.encode(bad)


def test_bad_arguments():
    with pytest.raises(ValueError):
        SentenceEncoder(batch_size=0)
    with pytest.raises(ValueError):
        SentenceEncoder(max_length=1)
