"""ProgressLog: the log lines a run without a progress bar prints."""
import logging
from types import SimpleNamespace

import torch

from kgemo.training.progress_log import ProgressLog, format_duration
from kgemo.training.trainer_options import trainer_options


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def fake_trainer(step, total=600, loss=1.25):
    return SimpleNamespace(global_step=step, estimated_stepping_batches=total, current_epoch=0, sanity_checking=False,
                           callback_metrics={"train_loss_step": torch.tensor(loss)})


def test_one_line_per_interval_with_rate_loss_and_time_left(caplog):
    clock = Clock()
    cb = ProgressLog(interval_s=60, clock=clock)
    cb.on_train_start(fake_trainer(0), None)
    with caplog.at_level(logging.INFO, logger="kgemo.training"):
        for step in range(1, 61):  # one step every 2 s: 30 steps a minute
            clock.t = 2.0 * step
            cb.on_train_batch_end(fake_trainer(step), None, None, None, step - 1)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2  # at 60 s and 120 s, not at every step
    assert lines[0].startswith("step 30/600 (5%) · epoch 1 · 30.0 steps/min · loss 1.250")
    assert lines[0].endswith("about 19 min left")  # 570 steps at 30 a minute
    assert lines[1].startswith("step 60/600 (10%)")


def test_a_resumed_run_counts_only_its_own_steps_for_the_rate(caplog):
    clock = Clock()
    cb = ProgressLog(interval_s=10, clock=clock)
    cb.on_train_start(fake_trainer(300), None)  # resumed at step 300: 30 steps in 60 s, not 330
    clock.t = 60.0
    with caplog.at_level(logging.INFO, logger="kgemo.training"):
        cb.on_train_batch_end(fake_trainer(330), None, None, None, 0)
    assert "30.0 steps/min" in caplog.records[0].getMessage()
    assert "about 9 min left" in caplog.records[0].getMessage()


def test_dev_evaluations_are_logged_but_not_the_sanity_check(caplog):
    cb = ProgressLog()
    t = fake_trainer(120)
    t.callback_metrics["dev_score"] = torch.tensor(56.891)
    with caplog.at_level(logging.INFO, logger="kgemo.training"):
        cb.on_validation_end(SimpleNamespace(**{**vars(t), "sanity_checking": True}), None)
        cb.on_validation_end(t, None)
    assert [r.getMessage() for r in caplog.records] == ["dev at step 120: 56.89"]


def test_format_duration():
    assert [format_duration(s) for s in (0, 40.4, 60, 719, 3600, 6540)] == ["0 s", "40 s", "1 min", "11 min",
                                                                          "1 h 0 min", "1 h 49 min"]


def test_the_log_lines_replace_the_bar_only_when_there_is_no_bar(tmp_path):
    def callbacks(progress):
        train = SimpleNamespace(accelerator="cpu", precision="32-true", grad_clip=0, deterministic=True, patience=2,
                                progress=progress)
        return [type(c).__name__ for c in trainer_options(train, tmp_path, 10, best=None)["callbacks"]]

    assert "ProgressLog" in callbacks(False)
    assert "ProgressLog" not in callbacks(True)
