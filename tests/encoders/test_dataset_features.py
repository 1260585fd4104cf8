"""dataset_features on the real MELD test split (skipped when the data is absent)."""
from __future__ import annotations

import numpy as np
import pytest

from kgemo.encoders import FeatureCache, dataset_features, file_sha256

pytestmark = pytest.mark.integration


def test_meld_test_features_cached_and_keyed_by_files(data_root, tiny_encoder, tmp_path):
    cache = FeatureCache(tmp_path)
    convs, feats = dataset_features(tiny_encoder, "meld", "test", root=data_root, cache=cache)
    assert len(convs) == len(feats) == 280
    assert sum(len(c) for c in convs) == sum(len(f) for f in feats) == 2610
    assert all(f.shape == (len(c), 16) for c, f in zip(convs, feats))
    np.testing.assert_array_equal(feats[0], tiny_encoder.encode(convs[0].texts))
    assert tiny_encoder.calls == 2  # one for the split, one just above

    again_convs, again = dataset_features(tiny_encoder, "meld", "test", root=data_root, cache=cache)
    assert tiny_encoder.calls == 2, "second call reads the cache"
    assert [c.id for c in again_convs] == [c.id for c in convs]
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(feats))

    from safetensors import safe_open

    with safe_open(str(cache.path_for(tiny_encoder.id, "meld/test")), "np") as fh:
        sources = fh.metadata()["sources"]
    assert file_sha256(data_root / "meld" / "test_sent_emo.csv") in sources
