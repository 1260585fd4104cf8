"""kgemo.metrics scores: fixed arrays, values computed by hand (arithmetic in the comments), sklearn where it
defines the same quantity."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score

from kgemo.data.labels import LabelSpace, label_space
from kgemo.errors import DataFormatError
from kgemo.metrics import (DATASET_METRICS, METRICS, dataset_metric, macro_f1, mastodon_act_f1, mastodon_act_prf,
                           mastodon_sentiment_f1, micro_f1_no_neutral, prepare, score, weighted_f1)

DD_EMO = label_space("dailydialog", "emotion")   # neutral=0 anger=1 disgust=2 fear=3 happiness=4 sadness=5 surprise=6
DD_ACT = label_space("dailydialog", "act")       # inform=0 question=1 directive=2 commissive=3
MELD = label_space("meld", "emotion")
MAST_SENT = label_space("mastodon", "sentiment")  # positive=0 negative=1 neutral=2
MAST_ACT = label_space("mastodon", "act")

# A 3-class case used by several tests.
#   class 0: predicted at 0,1 -> tp=2, pred=2, gold=3: P=1,   R=2/3, F1 = 2*(2/3)/(5/3) = 0.8
#   class 1: predicted at 2,3 -> tp=1, pred=2, gold=2: P=1/2, R=1/2, F1 = 0.5
#   class 2: predicted at 4,5 -> tp=1, pred=2, gold=1: P=1/2, R=1,   F1 = 2*(1/2)/(3/2) = 2/3
#   weighted F1 = (3*0.8 + 2*0.5 + 1*2/3) / 6 = 4.0667/6 = 0.677778
Y_TRUE = [0, 0, 0, 1, 1, 2]
Y_PRED = [0, 0, 1, 1, 2, 2]


def test_weighted_f1_by_hand_and_sklearn():
    assert weighted_f1(Y_TRUE, Y_PRED) == pytest.approx(100 * (3 * 0.8 + 2 * 0.5 + 2 / 3) / 6)
    assert weighted_f1(Y_TRUE, Y_PRED) == pytest.approx(100 * f1_score(Y_TRUE, Y_PRED, average="weighted"))
    assert weighted_f1(Y_TRUE, Y_PRED, MELD) == pytest.approx(67.7777777)


def test_order_matters_and_keywords_are_safe():
    # Swapped: gold [0,0,1,1,2,2], pred [0,0,0,1,1,2]
    #   class 0: tp=2 pred=3 gold=2 -> P=2/3 R=1   F1=0.8
    #   class 1: tp=1 pred=2 gold=2 -> F1=0.5
    #   class 2: tp=1 pred=1 gold=2 -> P=1 R=1/2   F1=2/3
    #   weighted = (2*0.8 + 2*0.5 + 2*2/3)/6 = 0.655556  (vs 0.677778 in the right order)
    right = score("weighted_f1", Y_TRUE, Y_PRED)
    swapped = score("weighted_f1", Y_PRED, Y_TRUE)
    assert swapped == pytest.approx(100 * (2 * 0.8 + 2 * 0.5 + 2 * 2 / 3) / 6)
    assert swapped != pytest.approx(right)
    assert score("weighted_f1", y_pred=Y_PRED, y_true=Y_TRUE) == right
    assert score(y_true=Y_TRUE, y_pred=Y_PRED, name="weighted_f1") == right
    for name, fn in METRICS.items():
        space = DD_EMO if name == "micro_f1_no_neutral" else None
        assert fn(y_pred=Y_PRED, y_true=Y_TRUE, labels=space) == fn(Y_TRUE, Y_PRED, space), name


def test_swapped_call_with_padding_is_caught():
    gold = [0, 1, -1]
    pred = [0, 1, 1]
    with pytest.raises(DataFormatError, match="order is y_true, y_pred"):
        score("accuracy", pred, gold)


def test_micro_f1_no_neutral_excludes_neutral():
    y_true = [0, 0, 0, 0, 4, 4, 1, 5]
    y_pred = [0, 0, 0, 4, 4, 0, 1, 1]
    # Non-neutral predictions: positions 3,4,6,7 -> 4; correct among them: 4 (happiness), 6 (anger) -> tp=2;
    # non-neutral gold: positions 4,5,6,7 -> 4. P = 2/4, R = 2/4, F1 = 0.5.
    got = micro_f1_no_neutral(y_true, y_pred, DD_EMO)
    assert got == pytest.approx(50.0)
    assert got == pytest.approx(100 * f1_score(y_true, y_pred, labels=[1, 2, 3, 4, 5, 6], average="micro"))
    # With neutral the micro F1 is the accuracy: correct at 0,1,2,4,6 -> 5/8 = 62.5. A different number.
    assert 100 * f1_score(y_true, y_pred, average="micro") == pytest.approx(62.5)
    assert score("micro_f1_no_neutral", y_true, y_pred, DD_EMO) == pytest.approx(50.0)


def test_micro_f1_no_neutral_finds_neutral_from_the_label_space():
    # A label space where neutral is last (id 2), not 0: the neutral class must come from the space.
    space = LabelSpace("toy/emotion", ("joy", "anger", "neutral"), neutral="neutral")
    y_true = [2, 2, 0, 1]
    y_pred = [0, 2, 0, 2]
    # Non-neutral (0,1) predictions: positions 0,2 -> 2; correct: position 2 -> tp=1; non-neutral gold: 2,3 -> 2.
    # P = 1/2, R = 1/2, F1 = 0.5. Treating id 0 as neutral instead would give: preds in {1,2}: 1,3 -> 2;
    # tp: position 1 -> 1; gold in {1,2}: 0,1,3 -> 3; F1 = 2*(1/2)(1/3)/(5/6) = 0.4.
    assert micro_f1_no_neutral(y_true, y_pred, space) == pytest.approx(50.0)
    assert micro_f1_no_neutral(y_true, y_pred, neutral=0) == pytest.approx(40.0)
    with pytest.raises(DataFormatError, match="neutral"):
        micro_f1_no_neutral(y_true, y_pred)
    with pytest.raises(DataFormatError, match="no neutral"):
        micro_f1_no_neutral([0, 1], [0, 1], DD_ACT)


def test_unlabelled_positions_are_ignored():
    y_true = [0, 1, -1, 1, -1]
    y_pred = [0, 1, 0, 0, 1]
    # Same as gold [0,1,1], pred [0,1,0]: accuracy 2/3.
    assert score("accuracy", y_true, y_pred) == pytest.approx(200 / 3)
    for name in METRICS:
        space = DD_EMO if name == "micro_f1_no_neutral" else None
        assert score(name, y_true, y_pred, space) == score(name, [0, 1, 1], [0, 1, 0], space), name
    # Padded (batch, time) arrays work the same way.
    assert score("accuracy", np.array([[0, 1, -1], [1, -1, -1]]), np.array([[0, 1, 0], [0, 1, 1]])) \
        == pytest.approx(200 / 3)


def test_macro_f1_with_a_class_never_predicted():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 1, 1, 1, 0]
    # class 0: tp=2 pred=3 gold=2 -> P=2/3 R=1 F1=0.8; class 1: same, 0.8; class 2: never predicted, F1=0.
    # macro = (0.8 + 0.8 + 0)/3 = 0.53333
    assert macro_f1(y_true, y_pred) == pytest.approx(100 * 1.6 / 3)
    assert macro_f1(y_true, y_pred) == pytest.approx(100 * f1_score(y_true, y_pred, average="macro"))
    # DailyDialog act has a 4th class (commissive) absent from both arrays: left out, as sklearn (and Co-GAT).
    assert macro_f1(y_true, y_pred, DD_ACT) == pytest.approx(100 * 1.6 / 3)


def test_mastodon_sentiment_f1_ignores_neutral_and_averages_pos_neg():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 0, 2, 1, 0, 2, 1, 2]
    # + (0): predicted at 0,1,4 -> 3, tp=2, gold=3: P=R=2/3, F1=2/3
    # - (1): predicted at 3,6   -> 2, tp=1, gold=2: P=R=1/2, F1=1/2
    # mean = (2/3 + 1/2)/2 = 7/12 = 0.583333. (Neutral's own F1 is 2/3; a 3-class macro would give 0.6111.)
    got = mastodon_sentiment_f1(y_true, y_pred, MAST_SENT)
    assert got == pytest.approx(100 * 7 / 12)
    assert got == pytest.approx(100 * f1_score(y_true, y_pred, labels=[0, 1], average="macro", zero_division=0))
    assert got != pytest.approx(100 * f1_score(y_true, y_pred, average="macro"))
    # Without a label space the Mastodon space is assumed; Co-GAT's symbols decode through the aliases.
    assert mastodon_sentiment_f1(y_true, y_pred) == pytest.approx(got)
    sym = {0: "+", 1: "-", 2: "*"}
    assert score("mastodon_sentiment_f1", [sym[i] for i in y_true], [sym[i] for i in y_pred], MAST_SENT) \
        == pytest.approx(got)


def test_mastodon_sentiment_f1_absent_class_counts_as_zero():
    # No positive in gold nor predictions: F1(+) = 0 (Co-GAT does not drop it from the mean).
    # - : predicted at 0 -> 1, tp=1, gold=2: P=1, R=1/2, F1=2/3.  mean = (0 + 2/3)/2 = 1/3.
    assert mastodon_sentiment_f1([1, 1, 2], [1, 2, 2], MAST_SENT) == pytest.approx(100 / 3)
    # Everything predicted neutral: both F1 are 0.
    assert mastodon_sentiment_f1([0, 1, 2], [2, 2, 2], MAST_SENT) == 0.0
    # The positive/negative classes are found by name, wherever they sit.
    space = LabelSpace("toy/sentiment", ("neutral", "negative", "positive"), neutral="neutral")
    assert mastodon_sentiment_f1([2, 2, 0], [2, 2, 2], space) == pytest.approx(100 * (0.8 + 0) / 2)


# Mastodon act case (ids 0..2 of the 15 acts):
#   gold prevalence: class 0: 4/8, class 1: 2/8, class 2: 2/8
#   class 0: pred=3 tp=3 gold=4 -> P=1    R=3/4  F1=6/7
#   class 1: pred=4 tp=2 gold=2 -> P=1/2  R=1    F1=2/3
#   class 2: pred=1 tp=1 gold=2 -> P=1    R=1/2  F1=2/3
#   P = .5*1 + .25*.5 + .25*1 = 0.875;  R = .5*.75 + .25*1 + .25*.5 = 0.75 (= accuracy 6/8)
#   act F1 = 2*0.875*0.75/1.625 = 21/26 = 0.807692
#   sklearn weighted F1 = .5*6/7 + .25*2/3 + .25*2/3 = 16/21 = 0.761905
ACT_TRUE = [0, 0, 0, 0, 1, 1, 2, 2]
ACT_PRED = [0, 0, 0, 1, 1, 1, 1, 2]


def test_mastodon_act_f1_by_hand_differs_from_weighted_f1():
    got = mastodon_act_f1(ACT_TRUE, ACT_PRED, MAST_ACT)
    assert got == pytest.approx(100 * 21 / 26)
    assert weighted_f1(ACT_TRUE, ACT_PRED, MAST_ACT) == pytest.approx(100 * 16 / 21)
    assert abs(got - weighted_f1(ACT_TRUE, ACT_PRED, MAST_ACT)) > 4
    prf = mastodon_act_prf(ACT_TRUE, ACT_PRED, MAST_ACT)
    assert prf["precision"] == pytest.approx(87.5)
    assert prf["recall"] == pytest.approx(75.0)
    # Act letters decode through the label space (I=0, W=1, Q=2).
    letters = "IWQ"
    assert score("mastodon_act_f1", [letters[i] for i in ACT_TRUE], [letters[i] for i in ACT_PRED], MAST_ACT) \
        == pytest.approx(got)


def test_mastodon_act_f1_zero_prediction_and_zero_division():
    # gold [0,1,2], pred [0,0,1]; prevalence 1/3 each.
    #   class 0: pred=2 tp=1 -> P=1/2 R=1;  class 1: pred=1 tp=0 -> P=0 R=0;  class 2: never predicted -> P=0, R=0
    #   P = (1/2)/3 = 1/6, R = 1/3;  F1 = 2*(1/6)*(1/3)/(1/2) = 2/9
    assert mastodon_act_f1([0, 1, 2], [0, 0, 1], MAST_ACT) == pytest.approx(100 * 2 / 9)
    # Nothing right: P = R = 0 -> F1 = 0, not a division error.
    assert mastodon_act_f1([0, 1], [1, 0], MAST_ACT) == 0.0
    # A predicted class absent from gold has prevalence 0, so its precision does not count; the miss lowers the
    # recall of the gold class. gold [0,0], pred [0,5]: class 0 P=1 R=1/2 -> P=1, R=1/2, F1 = 1/(3/2) = 2/3.
    assert mastodon_act_f1([0, 0], [0, 5], MAST_ACT) == pytest.approx(100 * 2 / 3)


def test_mastodon_act_identities_on_random_labels():
    # Independent route: R is the accuracy and P sklearn's weighted precision, whatever the labels.
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 15, 500)
    y_pred = np.where(rng.random(500) < 0.4, y_true, rng.integers(0, 15, 500))
    prf = mastodon_act_prf(y_true, y_pred, MAST_ACT)
    p = 100 * precision_score(y_true, y_pred, average="weighted", zero_division=0)
    r = 100 * accuracy_score(y_true, y_pred)
    assert prf["precision"] == pytest.approx(p)
    assert prf["recall"] == pytest.approx(r)
    assert prf["f1"] == pytest.approx(2 * p * r / (p + r))


def test_inputs_from_torch_and_names():
    import torch  # a dependency of kgemo: a broken install must fail here, not skip
    assert score("weighted_f1", torch.tensor(Y_TRUE), torch.tensor(Y_PRED)) == pytest.approx(
        weighted_f1(Y_TRUE, Y_PRED))
    names_true = ["neutral", "anger", None, "happiness"]
    names_pred = ["neutral", "anger", "anger", "anger"]
    # Gold [0,1,4] pred [0,1,1] (the None position is unlabelled): accuracy 2/3.
    assert score("accuracy", names_true, names_pred, DD_EMO) == pytest.approx(200 / 3)


@pytest.mark.parametrize("y_true, y_pred, space, match", [
    ([0, 1], [0, 1, 1], None, "shape"),
    ([0, 1], [0, 7], DD_ACT, "4 classes"),
    ([-1, -1], [0, 1], None, "no labelled"),
    ([0, -2], [0, 1], None, "-2"),
    ([0.2, 1.0], [0, 1], None, "non-integer"),
    (["inform"], ["inform"], None, "LabelSpace"),
    (["infrom"], ["inform"], DD_ACT, "unknown dailydialog/act label 'infrom'"),
    ([[0, 1], [1]], [[0, 1], [1]], None, "rectangular"),
])
def test_bad_inputs_name_the_problem(y_true, y_pred, space, match):
    with pytest.raises(DataFormatError, match=match):
        prepare(y_true, y_pred, space)


def test_registry_and_dataset_metrics():
    assert set(METRICS) == {"weighted_f1", "micro_f1_no_neutral", "macro_f1", "accuracy",
                            "mastodon_sentiment_f1", "mastodon_act_f1"}
    assert set(DATASET_METRICS.values()) <= set(METRICS)
    assert dataset_metric("meld/emotion") == "weighted_f1"
    assert dataset_metric(label_space("emorynlp", "emotion")) == "weighted_f1"
    assert dataset_metric(DD_EMO) == "micro_f1_no_neutral"
    assert dataset_metric(DD_EMO, setting="joint") == "macro_f1"
    assert dataset_metric(DD_ACT, setting="joint") == "macro_f1"
    assert dataset_metric(MAST_ACT) == "mastodon_act_f1"
    assert dataset_metric(MAST_SENT, "joint") == "mastodon_sentiment_f1"
    with pytest.raises(KeyError, match="known"):
        score("f1", [0], [0])
    with pytest.raises(KeyError, match="known"):
        dataset_metric("nope/emotion")
    with pytest.raises(ValueError, match="setting"):
        dataset_metric(DD_EMO, setting="cogat")
