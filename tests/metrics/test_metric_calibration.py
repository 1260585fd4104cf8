"""ECE, NLL and temperature fitting (kgemo.metrics.calibration) on hand-made numbers."""
from __future__ import annotations

import numpy as np
import pytest

from kgemo.metrics import expected_calibration_error, fit_temperature, negative_log_likelihood
from kgemo.metrics.calibration import softmax


def test_ece_by_hand():
    # Confidences 0.9, 0.9 (bin 14: one right, one wrong) and 0.6, 0.6 (bin 9: both right); 15 bins.
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 1])
    # bin 14: |0.5 - 0.9| * 2/4 = 0.2; bin 9: |1.0 - 0.6| * 2/4 = 0.2
    assert expected_calibration_error(probs, labels) == pytest.approx(0.4)
    assert expected_calibration_error(probs, labels, bins=1) == pytest.approx(abs(0.75 - 0.75))
    # Unlabelled positions are ignored; nothing labelled is 0.
    assert expected_calibration_error(np.vstack([probs, [[0.99, 0.01]]]), [0, 1, 1, 1, -1]) == pytest.approx(0.4)
    assert expected_calibration_error(probs, [-1, -1, -1, -1]) == 0.0
    # A confidence of exactly 1 falls in the last bin, 1/15 in the first.
    assert expected_calibration_error(np.array([[1.0, 0.0]]), [0]) == 0.0
    assert expected_calibration_error(np.full((1, 15), 1 / 15), [0]) == pytest.approx(1 - 1 / 15)


def test_nll_by_hand():
    logits = np.array([[0.0, np.log(3.0)], [0.0, 0.0]])
    assert negative_log_likelihood(logits, [1, 0]) == pytest.approx((np.log(4 / 3) + np.log(2)) / 2)
    assert negative_log_likelihood(logits, [1, 0], weight=[1.0, 0.0]) == pytest.approx(np.log(4 / 3))
    assert negative_log_likelihood(2 * logits, [1, 0], temperature=2.0) == pytest.approx(
        negative_log_likelihood(logits, [1, 0]))


def _sampled(n=4000, classes=5, scale=1.0, seed=0):
    """Logits z and labels drawn from softmax(z): calibrated at T = 1; ``scale`` × z is over-confident (> 1)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, classes)) * 2.0
    p = softmax(z)
    y = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return z * scale, y


def test_overconfident_logits_get_t_above_one_and_lower_nll_and_ece():
    z, y = _sampled(scale=3.0)
    t = fit_temperature(z, y)
    assert 2.6 < t < 3.4                                            # it undoes the scale
    assert negative_log_likelihood(z, y, t) < negative_log_likelihood(z, y) - 0.1
    assert expected_calibration_error(softmax(z, t), y) < expected_calibration_error(softmax(z), y) / 3
    # The fit is the minimum: nearby temperatures are no better.
    for other in (t * 0.95, t * 1.05):
        assert negative_log_likelihood(z, y, other) >= negative_log_likelihood(z, y, t)


def test_underconfident_logits_get_t_below_one_and_calibrated_stay_near_one():
    z, y = _sampled(scale=0.5, seed=1)
    assert 0.4 < fit_temperature(z, y) < 0.6
    z, y = _sampled(seed=2)
    assert 0.9 < fit_temperature(z, y) < 1.1


def test_temperature_never_changes_the_argmax_and_one_changes_nothing():
    z, _ = _sampled(n=500, scale=3.0)
    for t in (0.3, 1.7, 25.0):
        assert (softmax(z, t).argmax(1) == z.argmax(1)).all()
    assert np.array_equal(softmax(z, 1.0), softmax(z))


def test_weights_let_each_dataset_count_once():
    big, y_big = _sampled(n=4000, scale=0.5, seed=3)       # wants T ≈ 0.5
    small, y_small = _sampled(n=400, scale=3.0, seed=4)     # wants T ≈ 3
    z, y = np.vstack([big, small]), np.concatenate([y_big, y_small])
    pooled = fit_temperature(z, y)
    equal = fit_temperature(z, y, weight=np.r_[np.full(4000, 1 / 4000), np.full(400, 1 / 400)])
    assert pooled < equal                                    # the big set dominates the pooled fit
    assert fit_temperature(z, y, weight=np.r_[np.zeros(4000), np.ones(400)]) == pytest.approx(
        fit_temperature(small, y_small), rel=1e-4)
    assert fit_temperature(z, -np.ones(len(y))) == 1.0       # nothing labelled


def _shifted_parts(seed=0):
    """Two 'datasets' whose logits under-call class 0 (a model trained with class weights): class 0 is 60% / 85% of
    the labels, but its logit is lowered by 1.0 in both."""
    rng = np.random.default_rng(seed)
    parts = []
    for share, n in ((0.6, 400), (0.85, 1200)):
        y = np.where(rng.random(n) < share, 0, rng.integers(1, 4, n))
        z = rng.normal(0, 1, (n, 4))
        z[np.arange(n), y] += 1.5
        z[:, 0] -= 1.0
        parts.append((z, y))
    return parts


def test_fit_class_bias_restores_the_under_called_class_and_never_lowers_the_mean_score():
    from kgemo.metrics.calibration import fit_class_bias

    parts = _shifted_parts()
    acc = lambda y, p: float((y == p).mean()) * 100  # noqa: E731
    b = fit_class_bias([z for z, _ in parts], [y for _, y in parts], [acc, acc])
    assert b.shape == (4,) and abs(b.mean()) < 1e-12                 # centred
    assert b[0] - b[1:].mean() > 0.5                                  # the under-called class is raised
    before = np.mean([acc(y, z.argmax(1)) for z, y in parts])
    after = np.mean([acc(y, (z + b).argmax(1)) for z, y in parts])
    assert after > before + 2.0
    # Deterministic, and already-right logits are left alone (an offset moves only for a strictly better score).
    assert np.array_equal(b, fit_class_bias([z for z, _ in parts], [y for _, y in parts], [acc, acc]))
    exact = [(np.eye(4)[y] * 5.0, y) for _, y in parts]
    assert np.array_equal(fit_class_bias([z for z, _ in exact], [y for _, y in exact], [acc, acc]), np.zeros(4))
    with pytest.raises(ValueError, match="one scorer per part"):
        fit_class_bias([parts[0][0]], [parts[0][1]], [acc, acc])
