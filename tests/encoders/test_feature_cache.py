"""FeatureCache: hits without the encoder, corrupt and stale files rebuilt with a message, resumable chunks."""
from __future__ import annotations

import logging
import struct

import numpy as np
import pytest

from kgemo.data.conversation import Conversation, Utterance
from kgemo.encoders import FeatureCache
from kgemo.errors import KgemoError

TEXTS = [f"utterance number {i}" for i in range(10)]
SOURCES = {"test_sent_emo.csv": "ab" * 32}


def test_second_call_reads_from_disk(tiny_encoder, kgemo_home):
    cache = FeatureCache()
    assert cache.root == kgemo_home / "features"
    first = cache.get_or_encode(tiny_encoder, TEXTS, "meld/test", sources=SOURCES)
    assert tiny_encoder.calls == 1
    np.testing.assert_array_equal(first, tiny_encoder.encode(TEXTS))
    tiny_encoder.calls = 0
    again = FeatureCache().get_or_encode(tiny_encoder, TEXTS, "meld/test", sources=SOURCES)
    assert tiny_encoder.calls == 0
    np.testing.assert_array_equal(again, first)
    assert again.dtype == np.float32 and again.shape == (10, 16)
    path = cache.path_for(tiny_encoder.id, "meld/test")
    assert path.is_file() and path.parent.parent == kgemo_home / "features"
    assert not list(path.parent.glob(".*.tmp")), "atomic writes leave no temporary files"


def test_keys_and_encoders_do_not_mix(tiny_encoder, tmp_path):
    cache = FeatureCache(tmp_path)
    a = cache.get_or_encode(tiny_encoder, TEXTS, "a")
    cache.get_or_encode(tiny_encoder, TEXTS[:3], "b")
    other = type(tiny_encoder)(dim=8)
    c = cache.get_or_encode(other, TEXTS, "a")
    assert c.shape == (10, 8) and a.shape == (10, 16)
    assert tiny_encoder.calls == 2 and other.calls == 1
    assert cache.get_or_encode(tiny_encoder, TEXTS[:3], "b").shape == (3, 16)
    assert tiny_encoder.calls == 2


def _corrupt(path, how):
    data = bytearray(path.read_bytes())
    header_len = struct.unpack("<Q", data[:8])[0]
    if how == "truncate":
        data = data[: len(data) // 2]
    elif how == "flip_data":
        data[-5] ^= 0xFF
    elif how == "garbage_header":
        data[8:8 + 20] = b"#" * 20
    elif how == "empty":
        data = b""
    elif how == "foreign_metadata":
        # A well-formed safetensors file that kgemo did not write.
        from safetensors.numpy import save

        data = save({"features": np.zeros((10, 16), np.float32)}, metadata={"format": "something-else"})
    elif how == "edited_metadata":
        # Same length, valid JSON, but the recorded checksum no longer matches the data.
        header = bytes(data[8:8 + header_len])
        i = header.index(b'"data_sha256":"') + len(b'"data_sha256":"')
        header = header[:i] + (b"0" if header[i:i + 1] != b"0" else b"1") + header[i + 1:]
        data[8:8 + header_len] = header
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncate", "flip_data", "garbage_header", "empty", "foreign_metadata",
                                 "edited_metadata"])
def test_corrupt_file_is_rebuilt_with_a_message(how, tiny_encoder, tmp_path, caplog):
    cache = FeatureCache(tmp_path)
    good = cache.get_or_encode(tiny_encoder, TEXTS, "meld/test")
    path = cache.path_for(tiny_encoder.id, "meld/test")
    _corrupt(path, how)
    with caplog.at_level(logging.WARNING, logger="kgemo.encoders"):
        rebuilt = cache.get_or_encode(tiny_encoder, TEXTS, "meld/test")
    assert tiny_encoder.calls == 2
    np.testing.assert_array_equal(rebuilt, good)
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(messages) == 1 and str(path) in messages[0]
    assert "rebuilding" in messages[0]
    # The rebuilt file is good again.
    cache.get_or_encode(tiny_encoder, TEXTS, "meld/test")
    assert tiny_encoder.calls == 2


@pytest.mark.parametrize("change", ["texts", "sources"])
def test_stale_file_is_recomputed(change, tiny_encoder, tmp_path, caplog):
    cache = FeatureCache(tmp_path)
    cache.get_or_encode(tiny_encoder, TEXTS, "meld/test", sources=SOURCES)
    texts, sources = TEXTS, SOURCES
    if change == "texts":
        texts = TEXTS[:-1] + ["an edited last utterance"]
    else:
        sources = {"test_sent_emo.csv": "cd" * 32}
    with caplog.at_level(logging.WARNING, logger="kgemo.encoders"):
        out = cache.get_or_encode(tiny_encoder, texts, "meld/test", sources=sources)
    assert tiny_encoder.calls == 2
    np.testing.assert_array_equal(out, tiny_encoder.encode(texts))
    (message,) = [r.getMessage() for r in caplog.records]
    assert "stale" in message and str(cache.path_for(tiny_encoder.id, "meld/test")) in message
    assert ("texts changed" if change == "texts" else "source data files changed") in message


def test_conversation_features_split_in_order(tiny_encoder, tmp_path):
    convs = [Conversation(str(k), [Utterance(t, "A") for t in TEXTS[a:b]])
             for k, (a, b) in enumerate([(0, 3), (3, 4), (4, 10)])]
    feats = FeatureCache(tmp_path).conversation_features(tiny_encoder, convs, "toy/train")
    assert tiny_encoder.calls == 1, "one encode call for all conversations"
    assert [f.shape for f in feats] == [(3, 16), (1, 16), (6, 16)]
    np.testing.assert_array_equal(np.concatenate(feats), tiny_encoder.encode(TEXTS))


def test_empty_collection(tiny_encoder, tmp_path):
    cache = FeatureCache(tmp_path)
    assert cache.get_or_encode(tiny_encoder, [], "empty").shape == (0, 16)
    assert cache.get_or_encode(tiny_encoder, [], "empty").shape == (0, 16)
    assert tiny_encoder.calls == 1


class FailingEncoder:
    """Wraps an encoder and raises on the call after ``fail_after`` successful ones (a killed run)."""

    def __init__(self, inner, fail_after):
        self.inner, self.fail_after, self.id = inner, fail_after, inner.id

    def encode(self, texts, batch_size=None, show_progress=None):
        if self.inner.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")
        return self.inner.encode(texts, batch_size, show_progress)


def test_interrupted_chunked_build_resumes(tiny_encoder, tmp_path, caplog):
    cache = FeatureCache(tmp_path, chunk_size=3)          # 10 texts -> chunks of 3, 3, 3, 1
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_encode(FailingEncoder(tiny_encoder, fail_after=2), TEXTS, "big")
    path = cache.path_for(tiny_encoder.id, "big")
    assert not path.exists()
    partial = path.parent / ".partial" / path.stem
    assert len(list(partial.glob("*.safetensors"))) == 2

    tiny_encoder.calls = tiny_encoder.encoded = 0
    with caplog.at_level(logging.INFO, logger="kgemo.encoders"):
        out = cache.get_or_encode(tiny_encoder, TEXTS, "big")
    assert tiny_encoder.encoded == 4, "only the two unfinished chunks (3 + 1 texts) are encoded"
    assert any("resumed 2 of 4 chunks" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(out, tiny_encoder.encode(TEXTS))
    assert path.is_file() and not partial.exists(), "chunks are merged and cleaned up"


def test_chunks_of_other_texts_are_not_reused(tiny_encoder, tmp_path):
    cache = FeatureCache(tmp_path, chunk_size=3)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_encode(FailingEncoder(tiny_encoder, fail_after=2), TEXTS, "big")
    tiny_encoder.encoded = 0
    changed = ["changed"] + TEXTS[1:]
    out = cache.get_or_encode(tiny_encoder, changed, "big")
    assert tiny_encoder.encoded == 10
    np.testing.assert_array_equal(out, tiny_encoder.encode(changed))


def test_corrupt_chunk_is_reencoded(tiny_encoder, tmp_path, caplog):
    cache = FeatureCache(tmp_path, chunk_size=3)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_encode(FailingEncoder(tiny_encoder, fail_after=2), TEXTS, "big")
    path = cache.path_for(tiny_encoder.id, "big")
    first_chunk = sorted((path.parent / ".partial" / path.stem).glob("*.safetensors"))[0]
    _corrupt(first_chunk, "flip_data")
    tiny_encoder.encoded = 0
    with caplog.at_level(logging.WARNING, logger="kgemo.encoders"):
        out = cache.get_or_encode(tiny_encoder, TEXTS, "big")
    assert tiny_encoder.encoded == 3 + 4
    assert any(str(first_chunk) in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(out, tiny_encoder.encode(TEXTS))


def test_bad_encoder_output_is_not_cached(tmp_path):
    class NaNEncoder:
        id = "nan"

        def encode(self, texts, batch_size=None, show_progress=None):
            return np.full((len(texts), 4), np.nan, dtype=np.float32)

    cache = FeatureCache(tmp_path)
    with pytest.raises(KgemoError, match="NaN"):
        cache.get_or_encode(NaNEncoder(), ["a"], "x")
    assert not cache.path_for("nan", "x").exists()


def test_bad_key(tiny_encoder, tmp_path):
    with pytest.raises(ValueError):
        FeatureCache(tmp_path).get_or_encode(tiny_encoder, TEXTS, "")
