"""The Mastodon metrics on the real Mastodon test labels (Co-GAT's data files), with simple baselines."""
from __future__ import annotations

import json

import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score

from kgemo.data.labels import label_space
from kgemo.metrics import mastodon_act_prf, score

pytestmark = pytest.mark.integration

SENT = label_space("mastodon", "sentiment")
ACT = label_space("mastodon", "act")


@pytest.fixture(scope="module")
def mastodon_test(data_root):
    path = data_root / "mastodon" / "test.json"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    # Read the raw file directly: this test is about the metric, not the loader.
    dialogues = json.loads(path.read_text(encoding="utf-8"))
    return dialogues


def _previous_label(dialogues, key):
    """Predict each utterance's label as the previous utterance's gold label (the first gets the first's)."""
    gold, pred = [], []
    for dialogue in dialogues:
        labels = [u[key] for u in dialogue]
        gold += labels
        pred += labels[:1] + labels[:-1]
    return gold, pred


def test_majority_baselines(mastodon_test):
    acts = [u["act"] for d in mastodon_test for u in d]
    sents = [u["sentiment"] for d in mastodon_test for u in d]
    assert len(acts) == 1142
    # Everything "I" (591 of 1142): P = p * p (only I is predicted, precision p, weight p), R = p,
    # F1 = 2 p^3 / (p^2 + p) = 2 p^2 / (1 + p) -- here the same as sklearn's weighted F1 (p * 2p / (1 + p)).
    p = acts.count("I") / len(acts)
    assert score("mastodon_act_f1", acts, ["I"] * len(acts), ACT) == pytest.approx(100 * 2 * p * p / (1 + p))
    # Everything neutral: F1(+) = F1(-) = 0.
    assert score("mastodon_sentiment_f1", sents, ["*"] * len(sents), SENT) == 0.0
    assert score("mastodon_act_f1", acts, acts, ACT) == pytest.approx(100.0)
    assert score("mastodon_sentiment_f1", sents, sents, SENT) == pytest.approx(100.0)


def test_previous_label_baseline_matches_independent_sklearn_route(mastodon_test):
    gold, pred = _previous_label(mastodon_test, "sentiment")
    want = 100 * f1_score(gold, pred, labels=["+", "-"], average="macro", zero_division=0)
    assert score("mastodon_sentiment_f1", gold, pred, SENT) == pytest.approx(want)

    gold, pred = _previous_label(mastodon_test, "act")
    prf = mastodon_act_prf(gold, pred, ACT)
    p = 100 * precision_score(gold, pred, average="weighted", zero_division=0)
    r = 100 * accuracy_score(gold, pred)
    assert prf["precision"] == pytest.approx(p) and prf["recall"] == pytest.approx(r)
    assert prf["f1"] == pytest.approx(2 * p * r / (p + r))
    # Nor is it sklearn's weighted F1 on real data (45.15 vs 44.96 for this baseline).
    assert prf["f1"] != pytest.approx(score("weighted_f1", gold, pred, ACT), abs=0.1)
