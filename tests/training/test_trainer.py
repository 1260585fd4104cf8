import csv
import json

import lightning as L
import pytest
import torch
from tiny_data import tiny_prepared

from kgemo.errors import KgemoError
from kgemo.training import ExperimentConfig, TrainConfig, fit, load_config


class KillAtEpoch(L.Callback):
    """Simulates a killed run: raises when epoch ``n`` starts (after epoch n-1's checkpoint was written)."""

    def __init__(self, n):
        self.n = n

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.n:
            raise RuntimeError("killed")


def config(tmp_path, epochs=3):
    return ExperimentConfig(name="t", model={"name": "no_knowledge", "hidden": 16, "heads": 2},
                            train=TrainConfig(epochs=epochs, batch_size=8, patience=10, progress=False),
                            output_dir=str(tmp_path / "run"))


@pytest.mark.slow
def test_resume_after_kill_continues_from_last_checkpoint(tiny_encoder, tmp_path):
    data = tiny_prepared(tiny_encoder, "conversation")
    with pytest.raises(RuntimeError, match="killed"):
        fit(config(tmp_path), data=data, callbacks=[KillAtEpoch(2)])
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert set(torch.load(last, weights_only=True)) >= {"state_dict", "optimizer_states", "callbacks", "loops"}
    assert not (tmp_path / "run" / "metrics.json").exists()
    result = fit(config(tmp_path), data=data)
    assert result["epochs_run"] == 3
    epochs = []
    for log in sorted((tmp_path / "run" / "logs").glob("version_*/metrics.csv")):
        with open(log) as fh:
            epochs += [int(r["epoch"]) for r in csv.DictReader(fh) if r.get("train_loss")]
    assert epochs == [0, 1, 2]  # epochs 0-1 before the kill, epoch 2 once after the resume
    # A finished run is not retrained unless forced.
    again = fit(config(tmp_path), data=data)
    assert again == json.loads((tmp_path / "run" / "metrics.json").read_text())
    # force trains again from the first epoch, not from the finished run's last checkpoint.
    forced = fit(config(tmp_path), data=data, force=True)
    logs = sorted((tmp_path / "run" / "logs").glob("version_*/metrics.csv"))
    assert len(logs) == 3 and forced["epochs_run"] == 3
    with open(logs[-1]) as fh:
        assert [int(r["epoch"]) for r in csv.DictReader(fh) if r.get("train_loss")] == [0, 1, 2]


class _Touch:
    """Unpickling this object creates a file: proof that a checkpoint was fully unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(self.path),))


def test_resume_refuses_a_checkpoint_that_would_run_code(tiny_encoder, tmp_path):
    data = tiny_prepared(tiny_encoder, "conversation", sizes=(4, 2, 2))
    marker = tmp_path / "code-ran"
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    torch.save({"state_dict": {}, "epoch": 0, "payload": _Touch(marker)}, ckpt)
    with pytest.raises(KgemoError, match="last.ckpt.*cannot be loaded safely"):
        fit(config(tmp_path, epochs=1), data=data)
    assert not marker.exists()


def test_class_weights_come_from_train_split_only(tiny_encoder, tmp_path, monkeypatch):
    import kgemo.training.trainer as trainer

    seen = []
    real = trainer.class_weights
    monkeypatch.setattr(trainer, "class_weights", lambda y, n, s: seen.append(len(y)) or real(y, n, s))
    data = tiny_prepared(tiny_encoder, "conversation")
    fit(config(tmp_path, epochs=1), data=data)
    assert seen == [len(data.train_labels("emotion"))]


def test_config_yaml_overrides_and_errors(tmp_path):
    path = tmp_path / "ket_meld.yaml"
    path.write_text("data: {datasets: [meld]}\nmodel: {name: ket, hidden: 64}\ntrain: {epochs: 3}\n")
    cfg = load_config(path, ["train.lr=0.01", "seed=4", "graph.concepts_per_token=5", "knowledge.conceptnet=x"])
    assert cfg.name == "ket_meld" and cfg.seed == 4 and cfg.train.lr == 0.01
    assert cfg.graph.concepts_per_token == 5 and cfg.knowledge["conceptnet"].path == "x"
    assert str(cfg.run_dir) == "runs/ket_meld/seed4"
    path.write_text("model: {name: ket}\ntrain: {epoch: 3}\n")
    with pytest.raises(KgemoError, match=r"ket_meld.yaml: unknown train option 'epoch'"):
        load_config(path)
    path.write_text("train: {epochs: 3}\n")
    with pytest.raises(KgemoError, match="model.name is required"):
        load_config(path)
    path.write_text("model: {name: ket}\nknowledge: {conceptnet: default}\n")
    assert load_config(path, ["train.class_weights=none"]).train.class_weights is None
    with pytest.raises(KgemoError, match=r"ket_meld.yaml: train.class_weights='sqrt'"):
        load_config(path, ["train.class_weights=sqrt"])
    path.write_text("model: [oops\n")
    with pytest.raises(KgemoError, match="invalid YAML"):
        load_config(path)
    with pytest.raises(KgemoError, match="unknown KETConfig option 'hiden'"):
        from kgemo.models import KETConfig
        KETConfig.from_dict({"hiden": 3})
    # YAML reads 5e-4 (no dot) as a string: a number field takes it as the number, and refuses what is not one
    path.write_text("model: {name: ket}\nknowledge: {conceptnet: default}\n")
    assert load_config(path, ["train.lr=5e-4"]).train.lr == 5e-4
    with pytest.raises(KgemoError, match=r"ket_meld.yaml: train.lr='fast': expected a number \(float\)"):
        load_config(path, ["train.lr=fast"])
    with pytest.raises(KgemoError, match=r"train.epochs=2.5: expected a number \(int\)"):
        load_config(path, ["train.epochs=2.5"])
    with pytest.raises(KgemoError, match=r"model.hidden=True: expected a number \(int\)"):
        load_config(path, ["model.hidden=true"])


def test_every_shipped_config_parses():
    from pathlib import Path

    from kgemo.models import get_model_class
    from kgemo.training import task_setup

    for path in sorted(Path(__file__).resolve().parents[2].joinpath("configs").glob("*.yaml")):
        if path.name.startswith("finetune_"):  # encoder fine-tuning stages, not experiments (tests/encoders)
            continue
        cfg = load_config(path)
        get_model_class(cfg.model.name)
        spaces, metrics = task_setup(cfg)
        assert set(spaces) == set(cfg.data.tasks) == set(metrics), path
