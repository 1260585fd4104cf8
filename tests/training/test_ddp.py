"""DDP with 2 CPU processes (gloo) scores like one process: samplers, the global-batch loss, gathering in order,
and the trainer end to end (same seed and global batch → same test metric; a saved model's predictions identical).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from ddp_processes import run_processes
from tiny_data import tiny_prepared

from kgemo.training import ExperimentConfig, TrainConfig, fit
from kgemo.training.distributed import (EvalBatchSampler, GlobalBatchSampler, gather_in_order, graph_loader,
                                        masked_copy)

WORLD = 2


# ---------------------------------------------------------------------------------------------------------------
# Pieces, in one process
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, batch", [(10, 3), (7, 4), (4, 4), (1, 2)])
def test_global_batches_split_over_ranks_cover_each_conversation_once_per_epoch(n, batch):
    one = list(GlobalBatchSampler(n, batch, seed=5))
    per_rank = [list(GlobalBatchSampler(n, batch, seed=5, rank=r, world_size=WORLD)) for r in range(WORLD)]
    assert all(len(p) == len(one) == math.ceil(n / batch) for p in per_rank)  # every rank takes every step
    for step, global_batch in enumerate(one):
        shares = [p[step] for p in per_rank]
        real = sorted(i for s in shares for i in s if i >= 0)
        assert real == sorted(global_batch)  # the ranks' shares make up the one-process batch, nothing twice
        for s in shares:
            assert s and (all(i >= 0 for i in s) or (len(s) == 1 and -1 - s[0] in global_batch))
    assert sorted(i for b in one for i in b) == list(range(n))


def test_epoch_order_depends_on_seed_and_epoch_only():
    a, b = GlobalBatchSampler(20, 4, seed=1), GlobalBatchSampler(20, 4, seed=1)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)
    a.set_epoch(1)
    assert list(a) == list(b)  # e.g. after a resume at epoch 1
    assert list(GlobalBatchSampler(20, 4, seed=2)) != list(GlobalBatchSampler(20, 4, seed=1))


@pytest.mark.parametrize("n, batch", [(10, 3), (10, 12), (0, 4), (9, 3)])
def test_eval_batches_are_the_one_process_batches_dealt_round_robin(n, batch):
    one = list(EvalBatchSampler(n, batch))
    per_rank = [list(EvalBatchSampler(n, batch, rank=r, world_size=WORLD)) for r in range(WORLD)]
    assert len({len(p) for p in per_rank}) == 1  # same number of steps everywhere
    dealt = [b for step in range(len(per_rank[0])) for p in per_rank for b in [p[step]] if b != [-1]]
    assert dealt == one


def test_masked_copy_removes_labels_and_leaves_the_graph(tiny_encoder):
    data = tiny_prepared(tiny_encoder, "conversation", sizes=(2, 1, 1))
    g = data.graphs["train"][0]
    m = masked_copy(g)
    assert (m["utterance"].y_emotion == -1).all() and (g["utterance"].y_emotion >= 0).any()
    assert m.edge_types == g.edge_types and m["utterance"].num_nodes == g["utterance"].num_nodes


def test_loader_batches_carry_conversation_indices(tiny_encoder):
    from kgemo.training.distributed import utterance_index

    data = tiny_prepared(tiny_encoder, "conversation", sizes=(2, 1, 5))
    graphs = data.graphs["test"]
    (batch,) = list(graph_loader(graphs, EvalBatchSampler(5, 8), data.pipeline.transform))
    sizes = [g["utterance"].num_nodes for g in graphs]
    assert utterance_index(batch).tolist() == [i for i, s in enumerate(sizes) for _ in range(s)]


def test_gather_in_order_drops_padding_and_restores_one_process_order():
    order = torch.tensor([3, 3, -1, 0, 1, 1])
    out = gather_in_order({"y": torch.tensor([30, 31, 99, 0, 10, 11])}, order)
    assert out["y"].tolist() == [0, 10, 11, 30, 31]


# ---------------------------------------------------------------------------------------------------------------
# The trainer with 2 processes (gloo), against one process
# ---------------------------------------------------------------------------------------------------------------
def config(out: Path, devices: int = 1, strategy: str = "auto", epochs: int = 3, model: str = "no_knowledge"):
    return ExperimentConfig(
        name="ddp", seed=3, model={"name": model, "hidden": 16, "heads": 2, "dropout": 0.0},
        # batch_size is the global batch: 3 conversations per step, split over the processes; 22 train
        # conversations leave a last batch of 1, so one process trains on a label-less copy there.
        train=TrainConfig(epochs=epochs, batch_size=3, lr=3e-3, warmup_epochs=0, patience=10, progress=False,
                          accelerator="cpu", devices=devices, strategy=strategy, threads=1),
        output_dir=str(out))


def _worker(rank: int, world: int, tmp: str, single_model: str) -> None:
    """One DDP process, started like torchrun starts one (the environment names the group)."""
    import lightning as L

    from tiny_encoder import TinyEncoder
    from kgemo.models import load_model
    from kgemo.training import TrainConfig as TC
    from kgemo.training.distributed import GraphDataModule, ddp_strategy, predict_distributed, world as group
    from kgemo.training.module import TaskModule
    from kgemo.training.trainer import score_graphs

    tmp_path = Path(tmp)
    data = tiny_prepared(TinyEncoder(), "conversation", sizes=(22, 11, 13))
    result = fit(config(tmp_path / "ddp", devices=world, strategy="ddp"), data=data)
    assert group() == (rank, world)
    # Evaluation of the model the one-process run saved, with 2 processes: the prediction helpers...
    model, _ = load_model(single_model)
    probs = predict_distributed(model, data.graphs["test"], data.pipeline.transform, batch_size=4)
    scores = score_graphs(model, data.graphs["test"], data.pipeline.transform, data.label_spaces, data.metrics,
                          batch_size=4)
    # ... and the LightningModule's own evaluation under Lightning DDP (its dev loop, 11 conversations in batches
    # of 3: the second process gets 2 batches, the first 2; with batches of 12 the second gets a padding batch).
    module = TaskModule(model, data.label_spaces, data.metrics, TC())
    validated = {}
    for eval_batch in (3, 12):
        loaders = GraphDataModule(data.graphs["train"], data.graphs["dev"], 3, eval_batch,
                                  transform=data.pipeline.transform)
        trainer = L.Trainer(accelerator="cpu", devices=world, strategy=ddp_strategy("ddp"), logger=False,
                            use_distributed_sampler=False, enable_progress_bar=False, enable_model_summary=False)
        trainer.validate(module, datamodule=loaders, verbose=False)
        validated[eval_batch] = (module.last_scores["dev"], module.last_predictions["dev"]["emotion"])
    if rank == 0:
        # the result as metrics.json holds it (plain values: its provenance block has a TorchVersion, which a
        # weights-only load refuses)
        torch.save({"result": json.loads(json.dumps(result)), "probs": probs, "scores": scores,
                    "validated": validated}, tmp_path / "ddp.pt")


@pytest.mark.slow
def test_two_processes_score_like_one(tiny_encoder, tmp_path):
    from kgemo.models import load_model
    from kgemo.models.predict import predict
    from kgemo.training.trainer import score_graphs

    torch.set_num_threads(1)
    data = tiny_prepared(tiny_encoder, "conversation", sizes=(22, 11, 13))
    single = fit(config(tmp_path / "single"), data=data)
    model, _ = load_model(tmp_path / "single" / "model")
    probs = predict(model, data.graphs["test"], data.pipeline.transform, batch_size=4)
    dev_probs = predict(model, data.graphs["dev"], data.pipeline.transform)
    scores = score_graphs(model, data.graphs["test"], data.pipeline.transform, data.label_spaces, data.metrics)

    run_processes(_worker, (str(tmp_path), str(tmp_path / "single" / "model")), WORLD)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)

    # Evaluation of a saved model: exactly the same predictions and score with 2 processes, each utterance once.
    assert torch.equal(ddp["probs"]["emotion"], probs["emotion"])
    assert ddp["scores"] == scores
    dev_pred = dev_probs["emotion"].argmax(-1)
    for eval_batch, (dev_scores, pred) in ddp["validated"].items():
        assert torch.equal(pred, dev_pred), eval_batch  # 58 dev utterances, none twice, none missing
    y_dev = torch.cat([g["utterance"].y_emotion for g in data.graphs["dev"]])
    from kgemo.metrics import score

    keep = y_dev >= 0
    assert ddp["validated"][3][0]["emotion"] == pytest.approx(
        score("weighted_f1", y_dev[keep].numpy(), dev_pred[keep].numpy(), data.label_spaces["emotion"]))

    # Training: same seed, same global batch (3 conversations per step) → the same run up to the order of
    # floating-point sums (dropout off): same best epoch, test and dev scores within 1e-6, and the two trained
    # models' test probabilities within 1e-3 with the same predicted class everywhere. (Weights are not compared:
    # Adam turns the ~1e-9 rounding noise of gradients that are exactly zero in theory — attention key biases —
    # into full-size steps in parameters that do not change any output.)
    result = ddp["result"]
    assert result["complete"] and result["epochs_run"] == single["epochs_run"] == 3
    assert result["best_epoch"] == single["best_epoch"]
    assert result["test"]["emotion"] == pytest.approx(single["test"]["emotion"], abs=1e-6)
    assert result["dev"]["emotion"] == pytest.approx(single["dev"]["emotion"], abs=1e-6)
    trained, _ = load_model(tmp_path / "ddp" / "model")
    ddp_probs = predict(trained, data.graphs["test"], data.pipeline.transform, batch_size=4)["emotion"]
    gap = float((ddp_probs - probs["emotion"]).abs().max())
    assert gap < 1e-3, f"max |Δ probability| {gap:.2e}"
    assert torch.equal(ddp_probs.argmax(-1), probs["emotion"].argmax(-1))
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["test"] == result["test"]


# ---------------------------------------------------------------------------------------------------------------
# Every registered model trains under DDP through the trainer
# ---------------------------------------------------------------------------------------------------------------
def _every_model_data(name: str):
    """Tiny synthetic train/dev/test graphs for any registered model (its builder, knowledge and tasks), made the
    way ``scripts/gpu_check.py`` makes them."""
    import argparse

    from script_loader import load_script

    from kgemo.knowledge import ConceptNetKB
    from kgemo.models import MODELS, get_model_class
    from kgemo.training import PreparedData

    check = load_script("scripts/gpu_check.py")
    get_model_class(name)
    kb = {"conceptnet": ConceptNetKB.load("default")}
    words = [c for c in kb["conceptnet"].concepts[:5000] if c.isalpha()]
    graphs = {}
    for split, n in (("train", 7), ("dev", 5), ("test", 5)):
        args = argparse.Namespace(conversations=n, utterances=4)
        pipeline, spaces, graphs[split], _ = check.model_inputs(MODELS[name], args, check.HashEncoder(64), kb,
                                                                words[{"train": 0, "dev": 1, "test": 2}[split]::3])
    metrics = {t: "weighted_f1" for t in spaces}
    return PreparedData(pipeline, spaces, metrics, graphs, {s: [] for s in graphs}), \
        ({"source": ["synthetic-source"]} if "source" in pipeline.builder.settings.to_dict() else {})


def _every_model_config(out: Path, name: str, graph: dict, devices: int, strategy: str) -> ExperimentConfig:
    return ExperimentConfig(name=name, seed=1, model={"name": name, "hidden": 16, "heads": 2}, graph=graph,
                            train=TrainConfig(epochs=1, batch_size=3, patience=5, progress=False, accelerator="cpu",
                                              devices=devices, strategy=strategy, threads=1, class_weights=None),
                            output_dir=str(out / name))


def _every_model_worker(rank: int, world: int, tmp: str, names: list[str]) -> None:
    results = {}
    for name in names:
        data, graph = _every_model_data(name)
        results[name] = fit(_every_model_config(Path(tmp), name, graph, world, "ddp"), data=data)
    if rank == 0:
        (Path(tmp) / "every.json").write_text(json.dumps(results))


@pytest.mark.slow
def test_every_model_trains_under_ddp_and_scores_each_test_utterance_once(tmp_path, kgemo_home):
    from kgemo.models import MODELS, get_model_class, load_model
    from kgemo.training.trainer import score_graphs

    get_model_class("no_knowledge")
    names = sorted(MODELS)
    run_processes(_every_model_worker, (str(tmp_path), names), WORLD, timeout=1200)
    results = json.loads((tmp_path / "every.json").read_text())
    for name in names:
        result = results[name]
        assert result["complete"] and result["epochs_run"] == 1, name
        # The test score gathered from 2 processes is the one-process score of the same trained model.
        data, _ = _every_model_data(name)
        model, _ = load_model(tmp_path / name / "model")
        alone = score_graphs(model, data.graphs["test"], data.pipeline.transform, data.label_spaces, data.metrics)
        assert result["test"] == pytest.approx(alone, abs=1e-9), name
