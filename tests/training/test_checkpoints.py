"""Best checkpoint, finished runs and resuming: the parts ``fit`` and fine-tuning share."""
import json
import math

import pytest

from kgemo.training.checkpoints import BestCheckpoint, checkpoint_to_resume, finished_run


class Recorder(BestCheckpoint):
    def __init__(self, path):
        super().__init__(path)
        self.saved = []

    def save(self, trainer, module):
        self.saved.append((self.best, self.best_step, self.best_epoch))


class FakeTrainer:
    sanity_checking, is_global_zero = False, True

    def __init__(self, score, step, epoch=0):
        self.callback_metrics = {"dev_score": score}
        self.global_step, self.current_epoch = step, epoch


def test_saves_only_on_a_new_best_and_remembers_it_across_a_resume(tmp_path):
    best = Recorder(tmp_path / "best")
    assert not best.found and best.best == -math.inf
    for score, step in ((50.0, 4), (49.0, 8), (50.0, 12), (51.5, 16)):
        best.on_validation_end(FakeTrainer(score, step, step // 10), None)
    assert best.saved == [(50.0, 4, 0), (51.5, 16, 1)] and best.found
    resumed = Recorder(tmp_path / "best")
    resumed.load_state_dict(best.state_dict())
    resumed.on_validation_end(FakeTrainer(51.0, 20), None)
    assert resumed.saved == [] and (resumed.best, resumed.best_step, resumed.best_epoch) == (51.5, 16, 1)
    # The state of a graph-model checkpoint written before the step was kept.
    old = Recorder(tmp_path / "best")
    old.load_state_dict({"best": 40.0, "best_epoch": 3})
    assert (old.best, old.best_step, old.best_epoch) == (40.0, -1, 3)


def test_subclasses_keep_their_names_as_checkpoint_keys():
    from kgemo.training.finetune import BestState
    from kgemo.training.trainer import BestModelExport

    # Lightning files a callback's state under its class name: runs killed before these became BestCheckpoints
    # resume with their best score.
    assert BestModelExport.__qualname__ == "BestModelExport" and BestState.__qualname__ == "BestState"
    assert issubclass(BestModelExport, BestCheckpoint) and issubclass(BestState, BestCheckpoint)


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_resume_from_last_checkpoint_or_start_afresh(tmp_path, kind):
    path = tmp_path / "run" / ("best.safetensors" if kind == "file" else "model")
    best = Recorder(path)

    def earlier_best():
        if kind == "file":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"old")
        else:
            path.mkdir(parents=True, exist_ok=True)
            (path / "model.safetensors").write_bytes(b"old")

    earlier_best()
    assert checkpoint_to_resume(tmp_path / "run", best) is None and not path.exists()  # nothing to resume
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(b"ckpt")
    earlier_best()
    assert checkpoint_to_resume(tmp_path / "run", best) == str(last) and path.exists()
    # --no-resume, and --force (a finished run trains again from its first step): the earlier best goes.
    assert checkpoint_to_resume(tmp_path / "run", best, resume=False) is None and not path.exists()
    earlier_best()
    assert checkpoint_to_resume(tmp_path / "run", best, force=True) is None and not path.exists()


def test_finished_run(tmp_path):
    assert finished_run(tmp_path) is None
    (tmp_path / "metrics.json").write_text(json.dumps({"complete": False}))
    assert finished_run(tmp_path) is None
    (tmp_path / "metrics.json").write_text(json.dumps({"complete": True, "dev": 1}))
    assert finished_run(tmp_path) == {"complete": True, "dev": 1}
    assert finished_run(tmp_path, resume=False) is None and finished_run(tmp_path, force=True) is None
    assert finished_run(tmp_path, outputs=(tmp_path / "encoder.json",)) is None  # its last output is missing
