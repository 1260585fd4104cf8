"""kgemo.metrics.class_weights."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from kgemo.data.labels import label_space
from kgemo.errors import DataFormatError
from kgemo.metrics import class_weights

# counts: class 0 -> 6, class 1 -> 2, class 2 -> 1 (the -1 is skipped); N = 9, C = 3
Y_TRAIN = [0, 0, 0, 0, 0, 0, 1, 1, 2, -1]


def test_inverse_by_hand_and_sklearn():
    w = class_weights(Y_TRAIN, 3, "inverse")
    # N / (C n_c) = 9/18, 9/6, 9/3
    np.testing.assert_allclose(w, [0.5, 1.5, 3.0])
    assert w.dtype == np.float32 and w.shape == (3,)
    np.testing.assert_allclose(w, compute_class_weight("balanced", classes=np.arange(3), y=np.array(Y_TRAIN[:-1])))


def test_sqrt_inverse_and_none():
    np.testing.assert_allclose(class_weights(Y_TRAIN, 3, "sqrt_inverse"), np.sqrt([0.5, 1.5, 3.0]), rtol=1e-6)
    np.testing.assert_array_equal(class_weights(Y_TRAIN, 3, None), [1, 1, 1])
    # A balanced split gives ones with every scheme.
    np.testing.assert_allclose(class_weights([0, 1, 2, 3], label_space("dailydialog", "act")), [1, 1, 1, 1])


def test_absent_class_gets_zero_and_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="kgemo.metrics.weights"):
        w = class_weights([0, 0, 1, 1], 3)
    # N / (C n_c) = 4 / (3*2) = 2/3 for classes 0 and 1; class 2 absent -> 0
    np.testing.assert_allclose(w, [2 / 3, 2 / 3, 0.0], rtol=1e-6)
    assert "never occur" in caplog.text


def test_torch_input_and_errors():
    import torch  # a dependency of kgemo: a broken install must fail here, not skip
    np.testing.assert_allclose(class_weights(torch.tensor(Y_TRAIN), 3), [0.5, 1.5, 3.0])
    with pytest.raises(ValueError, match="scheme"):
        class_weights(Y_TRAIN, 3, "balanced")
    with pytest.raises(DataFormatError, match="outside 0..1"):
        class_weights(Y_TRAIN, 2)
    with pytest.raises(DataFormatError, match="no labelled"):
        class_weights([-1, -1], 2)
