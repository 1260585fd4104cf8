"""TokenEncoder: token states, word pooling, truncation, and agreement with SentenceEncoder's mean pooling."""
from __future__ import annotations

import numpy as np
import pytest

from kgemo.encoders import TokenEncoder, TokenStates, TruncationWarning
from kgemo.errors import DataFormatError


def test_token_states_shapes_and_alignment(minilm_tokens):
    texts = ["I can't believe it!", "hi", "The unbelievable day"]
    out = minilm_tokens.encode(texts)
    assert [type(s) for s in out] == [TokenStates] * 3
    first = out[0]
    assert first.tokens[0] == "[CLS]" and first.tokens[-1] == "[SEP]"
    assert first.states.shape == (len(first.tokens), 384) and first.states.dtype == np.float32
    assert len(first.word_ids) == len(first.offsets) == len(first.tokens)
    assert first.word_ids[0] is None and first.word_ids[-1] is None
    # Offsets point back into the text.
    for tok, (a, b), w in zip(first.tokens, first.offsets, first.word_ids):
        if w is not None:
            assert texts[0][a:b].lower() == tok.removeprefix("##")
    assert not any(s.truncated for s in out)
    assert minilm_tokens.encode([]) == []


def test_mean_of_token_states_is_the_sentence_embedding(minilm, minilm_tokens):
    # all-MiniLM-L6-v2 = mean over all tokens (specials included), then L2-normalised.
    texts = ["I can't believe it!", "Fine, whatever."]
    for states, sent in zip(minilm_tokens.encode(texts), minilm.encode(texts)):
        m = states.states.mean(axis=0)
        np.testing.assert_allclose(m / np.linalg.norm(m), sent, atol=2e-3 if minilm.fp16 else 1e-5)


def test_word_pooling_matches_manual_mean(minilm_tokens):
    import torch

    words = [["I", "can't", "believe", "it!"], ["unbelievable"], ["so", "very", "happy", "today", "!"]]
    pooled = minilm_tokens.encode_words(words, batch_size=2)
    assert [p.shape for p in pooled] == [(4, 384), (1, 384), (5, 384)]
    tok, model = minilm_tokens.tokenizer, minilm_tokens.model
    for ws, got in zip(words, pooled):
        enc = tok(ws, is_split_into_words=True, return_tensors="pt")
        with torch.inference_mode():
            h = model(**{k: v.to(minilm_tokens.device) for k, v in enc.items()}).last_hidden_state[0]
        h = h.float().cpu().numpy()
        ids = enc.word_ids(0)
        for j in range(len(ws)):
            rows = [t for t, w in enumerate(ids) if w == j]
            assert rows, f"word {ws[j]!r} has sub-words"
            np.testing.assert_allclose(got[j], h[rows].mean(axis=0), atol=2e-3 if minilm_tokens.fp16 else 1e-5)
    # "can't" is three sub-words (can ' t): its state is not any single token's.
    assert len([w for w in tok(words[0], is_split_into_words=True).word_ids() if w == 1]) == 3


def test_truncation_warns_and_zero_fills_lost_words(tiny_bert_dir):
    enc = TokenEncoder(tiny_bert_dir, max_length=8, device="cpu")
    long_words = ["i", "love", "it"] * 5  # 15 words, 17 tokens with specials
    with pytest.warns(TruncationWarning, match=r"1 of 2 texts .* max_length=8"):
        pooled = enc.encode_words([long_words, ["sad"]])
    assert pooled[0].shape == (15, 32)
    assert np.abs(pooled[0][:6]).sum(axis=1).min() > 0   # 6 words fit between [CLS] and [SEP]
    np.testing.assert_array_equal(pooled[0][6:], 0.0)
    with pytest.warns(TruncationWarning, match="1 of 1 texts"):
        states = enc.encode([" ".join(long_words)])[0]
    assert states.truncated and len(states.tokens) == 8 and states.tokens[-1] == "[SEP]"


def test_bad_word_input(minilm_tokens):
    with pytest.raises(DataFormatError):
        minilm_tokens.encode_words("not a list of lists")
    with pytest.raises(DataFormatError, match="words of text 1"):
        minilm_tokens.encode_words([["ok"], ["fine", None]])
