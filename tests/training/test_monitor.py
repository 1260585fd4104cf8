"""The one dev score (``train.monitor``) that graph models and encoder fine-tuning early-stop and checkpoint on."""
import pytest

from kgemo.errors import KgemoError
from kgemo.training import ExperimentConfig
from kgemo.training.monitor import check_monitor, monitor_value

SCORES = {"act": 60.25, "sentiment": 70.5}


@pytest.mark.parametrize("mode, expected", [("first", 60.25), ("mean", 65.375), ("sentiment", 70.5)])
def test_monitor_value(mode, expected):
    assert monitor_value(mode, SCORES, ["act", "sentiment"]) == expected


def test_mean_adds_left_to_right():
    # The order earlier runs were selected with: (a + b) + c, not a + (b + c).
    a, b, c = 0.1, 0.2, 0.3
    assert monitor_value("mean", {"x": a, "y": b, "z": c}, ["x", "y", "z"]) == ((a + b) + c) / 3


def test_a_monitor_naming_no_task_is_refused_when_the_config_loads():
    check_monitor("sentiment", ["act", "sentiment"], "x.yaml")
    with pytest.raises(KgemoError, match=r"x.yaml: train.monitor='emotion'; expected first, mean or one of "
                                         r"\['act', 'sentiment'\]"):
        check_monitor("emotion", ["act", "sentiment"], "x.yaml")
    # The graph trainer's configs are checked the same way (they used to fail at the first dev evaluation).
    with pytest.raises(KgemoError, match=r"exp.yaml: train.monitor='sentiment'"):
        ExperimentConfig.from_dict({"model": {"name": "no_knowledge"}, "train": {"monitor": "sentiment"}},
                                   source="exp.yaml")
