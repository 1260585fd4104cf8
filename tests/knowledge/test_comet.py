"""COMET on tiny random checkpoints built in the test (no COMET weights exist offline)."""
import logging

import numpy as np
import pytest
import transformers  # noqa: F401  a dependency of kgemo: a broken install must fail here, not skip

from kgemo.knowledge import AtomicRetriever, AtomicTable
from kgemo.knowledge.comet import (COSMIC_RELATIONS, CometGenerator, GenerationCache, RetrievedComet,
                                  save_random_comet, save_word_tokenizer)

WORDS = ("i lost my keys we won the game happy sad to find them celebrate PersonX PersonY xIntent xEffect xReact "
         "oEffect oReact xWant").split()


@pytest.fixture(scope="module")
def tiny_bart(tmp_path_factory):
    return save_random_comet(tmp_path_factory.mktemp("tiny-comet-bart"), WORDS, max_positions=64)


def test_random_comet_is_reproducible_and_loads(tiny_bart, tmp_path):
    from safetensors.numpy import load_file

    again = save_random_comet(tmp_path / "again", WORDS, max_positions=64)
    a, b = load_file(tiny_bart / "model.safetensors"), load_file(again / "model.safetensors")
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    other = load_file(save_random_comet(tmp_path / "other", WORDS, max_positions=64, seed=1) / "model.safetensors")
    assert not all(np.array_equal(a[k], other[k]) for k in a)
    gen = CometGenerator(tiny_bart, device="cpu", max_new_tokens=2, cache=False)
    assert gen.relation_states(["i lost my keys"], ["xReact"]).shape[-1] == 16


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = tmp_path_factory.mktemp("tiny-comet-gpt2")
    n = save_word_tokenizer(folder, WORDS)
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=n, n_embd=12, n_layer=1, n_head=2, n_positions=64, bos_token_id=1, eos_token_id=2,
                     pad_token_id=0)
    GPT2LMHeadModel(cfg).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("which, dim", [("tiny_bart", 16), ("tiny_gpt2", 12)])
def test_generation_batching_states_and_cache_hits(which, dim, request, monkeypatch):
    folder = request.getfixturevalue(which)
    comet = CometGenerator(folder, device="cpu", max_new_tokens=4, batch_size=4)
    assert comet.source == "comet" and comet.id.startswith(f"comet:{folder.name}:")
    assert comet.is_seq2seq == (which == "tiny_bart")
    texts = ["i lost my keys", "we won the game", "i lost my keys"]
    out = comet.generate(texts, ["xReact", "xIntent"], k=3, num_beams=4)
    assert len(out) == 3 and set(out[0]) == {"xReact", "xIntent"}
    assert all(1 <= len(tails) <= 3 for o in out for tails in o.values())
    assert out[0] == out[2]                             # duplicate texts generated once, answered alike
    assert comet.counters["generation_misses"] == 4     # 2 distinct texts × 2 relations
    greedy = comet.generate(texts[:1], ["xReact"], num_beams=1)
    assert len(greedy[0]["xReact"]) <= 1                 # greedy: one sequence (empty if EOS came first)
    assert comet.counters["generation_misses"] == 5     # other decoding parameters, other cache entry
    states = comet.relation_states(texts, COSMIC_RELATIONS)
    assert states.shape == (3, 5, dim) and states.dtype == np.float32
    assert np.isfinite(states).all() and not np.allclose(states[0, 0], states[1, 0])
    mean = comet.relation_states(texts[:1], ["xReact"], pool="mean")
    assert not np.allclose(mean[0, 0], states[0, 2])

    # A second generator (a second run over the dataset) answers from the SQLite cache: no model call.
    again = CometGenerator(folder, device="cpu", max_new_tokens=4, batch_size=4)
    monkeypatch.setattr(again.model, "generate", lambda *a, **k: pytest.fail("generation not cached"))
    monkeypatch.setattr(again, "_states", lambda *a, **k: pytest.fail("states not cached"))
    assert again.generate(texts, ["xReact", "xIntent"], k=3, num_beams=4) == out
    np.testing.assert_array_equal(again.relation_states(texts, COSMIC_RELATIONS), states)
    assert again.counters["generation_misses"] == 0 and again.counters["generation_hits"] == 4
    assert again.cache_stats()["generations"] >= 5


def test_missing_checkpoint_says_what_to_do(tmp_path):
    from kgemo.errors import DataNotFoundError

    with pytest.raises(DataNotFoundError, match="RetrievedComet"):
        CometGenerator(tmp_path / "nothing")


def test_corrupt_cache_database_is_moved_aside(kgemo_home, caplog):
    path = kgemo_home / "gen.sqlite"
    path.write_bytes(b"this is not an sqlite database" * 100)
    with caplog.at_level(logging.WARNING):
        cache = GenerationCache(path)
    assert "is corrupt" in caplog.text
    cache.put_generations("m", "{}", [("xReact", "hi", ["happy"])])
    assert cache.get_generations("m", "{}", [("xReact", "hi")]) == {("xReact", "hi"): ["happy"]}
    assert list(kgemo_home.glob("gen.sqlite.corrupt-*"))


def test_retrieved_comet_has_the_same_interface(tiny_encoder):
    table = AtomicTable.from_tuples([
        ("PersonX loses PersonX's keys", "xReact", "annoyed"), ("PersonX loses PersonX's keys", "xReact", "sad"),
        ("PersonX loses PersonX's keys", "xIntent", "none of this"), ("PersonX wins the game", "xReact", "happy"),
    ])
    rc = RetrievedComet(AtomicRetriever(table, encoder=tiny_encoder))
    assert rc.source == "atomic-retrieval" and rc.id.startswith("atomic-retrieval:")
    out = rc.generate(["PersonX loses PersonX's keys"], ["xReact", "oEffect"], k=2)
    assert out == [{"xReact": ["annoyed", "sad"], "oEffect": []}]
    states = rc.relation_states(["PersonX loses PersonX's keys", "PersonX wins the game"], ["xReact", "oEffect"])
    assert states.shape == (2, 2, tiny_encoder.dim)
    assert np.allclose(states[:, 1], 0)                 # no oEffect anywhere → zero state
    expected = tiny_encoder.encode(["annoyed", "sad", "happy"])
    w = states[0, 0]
    # A similarity-weighted mean of the retrieved tails' embeddings lies in their span.
    coef, *_ = np.linalg.lstsq(expected.T, w, rcond=None)
    np.testing.assert_allclose(expected.T @ coef, w, atol=1e-4)
    assert rc.generate(["PersonX loses PersonX's keys"], ["xReact", "oEffect"], k=2) == out
    assert rc.counters["generation_hits"] == 2


def test_retrieved_comet_encodes_each_query_and_tail_once(tiny_encoder):
    """generate() + relation_states() of one batch encode its texts once; a tail seen in an earlier batch is not
    encoded again; the states equal those computed without the memo."""
    table = AtomicTable.from_tuples([
        ("PersonX loses PersonX's keys", "xReact", "annoyed"), ("PersonX loses PersonX's keys", "xReact", "sad"),
        ("PersonX wins the game", "xReact", "happy"), ("PersonX wins the race", "xReact", "happy"),
    ])
    encoded: list[str] = []

    class Counting:
        dim, id = tiny_encoder.dim, tiny_encoder.id

        def encode(self, texts, **kw):
            encoded.extend(texts)
            return tiny_encoder.encode(texts, **kw)

    rc = RetrievedComet(AtomicRetriever(table, encoder=Counting()), cache=False, state_k=2)
    batch = ["I lost my keys", "we won the game"]
    rc.generate(batch, ["xReact"], k=2)
    first = rc.relation_states(batch, ["xReact"])
    assert encoded.count("I lost my keys") == 1 and encoded.count("we won the game") == 1
    rc.relation_states(["we won the race"], ["xReact"])
    assert encoded.count("happy") == 1                   # retrieved again, not encoded again
    plain = RetrievedComet(AtomicRetriever(table, encoder=tiny_encoder), cache=False, state_k=2, tail_memo=0)
    np.testing.assert_allclose(plain.relation_states(batch, ["xReact"]), first, atol=1e-5)


def test_build_comet_fills_the_cache_and_resumes(tiny_encoder):
    from kgemo.knowledge.build import build_comet

    texts = ["I lost my dog", "We won the game", "I lost my dog"]
    first = build_comet(texts, model=None, relations=["xReact", "oReact"], atomic="default", encoder=tiny_encoder)
    assert first["source"] == "atomic-retrieval" and first["texts"] == 2
    assert first["cache_after"]["generations"] == 4 and first["cache_after"]["states"] == 4
    second = build_comet(texts, model=None, relations=["xReact", "oReact"], atomic="default", encoder=tiny_encoder)
    assert second["cache_after"]["generation_misses"] == 0 and second["cache_after"]["generation_hits"] == 4
