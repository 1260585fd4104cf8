"""The adaptation models under DDP train like one process: the class centres (buffers, moved every step) stay the
same in every process and equal one process's, padding copies move nothing, and the domain loss is the one-process
loss of the global batch.

First the pieces, with two processes simulated in one (each adds the other's sums, as the all-reduce would); then
the trainer with 2 and 3 CPU processes (gloo) against one process.
"""
from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch
from ddp_processes import run_processes
from tiny_encoder import TinyEncoder
from two_domains import conversations

from kgemo.adapt import ClassCentres, DomainAdversary
from kgemo.data import label_space
from kgemo.graphs import get_builder
from kgemo.pipeline import InputPipeline
from kgemo.training import ExperimentConfig, PreparedData, TrainConfig, fit
from kgemo.training.data import without_labels


# ---------------------------------------------------------------------------------------------------------------
# Pieces: two processes simulated in one
# ---------------------------------------------------------------------------------------------------------------
def two_processes(run):
    """``run(rank, reduce)`` as processes 0 and 1 of a group: a first pass records each process's own sums (in
    call order), the second gives each ``reduce`` = its own sum + the other's (the value an all-reduce returns, the
    gradient of its own part: what ``kgemo.training.distributed.sum_over_processes`` does). ``run`` must build
    its state afresh on every call. Returns both results of the second pass."""
    own = {0: [], 1: []}
    for rank in (0, 1):
        run(rank, lambda t, rank=rank: own[rank].append(t.detach().clone()) or t)
    results = []
    for rank in (0, 1):
        other = iter(own[1 - rank])
        results.append(run(rank, lambda t, other=other: t + next(other)))
    return results


def test_centre_update_over_two_processes_is_the_whole_batch_update():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 4, generator=g)
    classes = torch.tensor([0, 1, 1, 2, -1, 0, 2, 2, 1])
    shares = [torch.arange(0, 9, 2), torch.arange(1, 9, 2)]         # batch[rank::2]
    probs = torch.softmax(torch.randn(9, 3, generator=g), -1)

    def centres():
        c = ClassCentres(dim=4, num_classes=3, per_class=2, momentum=0.3)
        c.init_domain(0, torch.randn(12, 4, generator=torch.Generator().manual_seed(1)),
                      classes=torch.arange(12) % 3, generator=torch.Generator().manual_seed(2))
        return c

    def run(rank, reduce):
        c, rows = centres(), shares[rank]
        c.update(0, x[rows], classes[rows], reduce)
        c.update(1, x[rows][:0], classes[rows][:0], reduce)        # no sample of domain 1 anywhere: no move
        c.update_prior(0, probs[rows], 0.5, reduce)
        return c.centres.clone(), c.prior.clone()

    alone = centres()
    alone.update(0, x, classes)
    alone.update_prior(0, probs, 0.5)
    (c0, p0), (c1, p1) = two_processes(run)
    assert torch.equal(c0, c1) and torch.equal(p0, p1)              # the same step in both processes
    assert torch.allclose(c0, alone.centres, atol=1e-6) and torch.allclose(p0, alone.prior, atol=1e-6)
    assert torch.equal(c0[1], centres().centres[1])


@pytest.mark.parametrize("conditioning", ["none", "cdan_e"])
def test_domain_loss_over_two_processes_is_the_whole_batch_loss(conditioning):
    torch.manual_seed(0)
    adversary = DomainAdversary(4, 8, 3, conditioning, dropout=0.0)
    h = torch.randn(7, 4)
    probs = torch.softmax(torch.randn(7, 3), -1)
    domain = torch.tensor([0, 0, 1, 0, 1, 0, 0])
    # process 0 holds only source utterances, process 1 one of each domain and a padding copy (domain -1)
    shares = [torch.tensor([0, 1, 3, 5]), torch.tensor([2, 4, 6, 6])]
    share_domains = [domain[shares[0]], torch.tensor([1, 1, 0, -1])]

    def loss(rows, dom, reduce=None):
        x = h[rows].clone().requires_grad_()
        value = adversary.loss(x, dom, probs[rows], 0.5, reduce=reduce)
        value.backward()
        return value.detach(), x.grad

    whole, grad = loss(torch.arange(7), domain)
    (v0, g0), (v1, g1) = two_processes(lambda rank, reduce: loss(shares[rank], share_domains[rank], reduce))
    # every process computes the whole batch's loss; its gradient is the whole batch's for its own utterances
    assert v0 == v1 and torch.allclose(v0, whole, atol=1e-6)
    assert torch.allclose(g0, grad[shares[0]], atol=1e-7)
    assert torch.allclose(g1[:3], grad[shares[1][:3]], atol=1e-7) and (g1[3] == 0).all()   # padding: no gradient


def test_padding_utterances_enter_no_domain_loss_and_move_no_centre():
    """A DDP padding copy keeps its domain in the graph, but the training terms see none (domain -1)."""
    from torch_geometric.data import Batch

    from kgemo.models import ClusterGraph, ClusterGraphConfig

    spaces = {"emotion": label_space("ekman7", "emotion")}
    builder = get_builder("cross_domain", source=["dailydialog"])
    g = torch.Generator().manual_seed(0)
    convs = conversations("dailydialog", "dev")[:3] + conversations("meld", "dev")[:3]
    graphs = [builder(c, torch.randn(len(c), 8, generator=g).numpy(), spaces) for c in convs]
    batch = Batch.from_data_list(graphs)
    torch.manual_seed(0)
    model = ClusterGraph(ClusterGraphConfig(input_dim=8, hidden=8, heads=2, dropout=0.0), spaces)
    model.prepare_training([batch])
    model.train()
    before = model.centres.centres.clone(), model.centres.prior.clone()
    _, aux = model.forward_train(batch, padding=torch.ones(batch["utterance"].num_nodes, dtype=torch.bool))
    assert aux["domain_loss"] == 0
    assert torch.equal(model.centres.centres, before[0]) and torch.equal(model.centres.prior, before[1])


# ---------------------------------------------------------------------------------------------------------------
# The trainer with 2 and 3 processes (gloo), against one process
# ---------------------------------------------------------------------------------------------------------------
#: dropout off everywhere (each process draws its own masks); the cluster graph also with 2 centres per class
#: (nearest-centre assignment), importance weights and the alignment loss, the other sums over the batch.
MODELS = {
    "dann": {"name": "dann", "conditioning": "cdan_e"},
    "cluster_graph": {"name": "cluster_graph"},
    "cluster_graph_iw": {"name": "cluster_graph", "centres_per_class": 2, "importance_weighting": True,
                         "alignment_weight": 0.5, "target_update": "nearest"},
}


def two_domain_data() -> PreparedData:
    """11 labelled source and 11 label-less target conversations to train on, the target's dev and test."""
    spaces = {"emotion": label_space("ekman7", "emotion")}
    pipeline = InputPipeline(get_builder("cross_domain", source=["dailydialog"]), TinyEncoder())
    convs = {"train": conversations("dailydialog", "train")[:11] + without_labels(conversations("meld", "train")[:11]),
             "dev": conversations("meld", "dev"), "test": conversations("meld", "test")}
    graphs = {split: pipeline.graphs(c, spaces) for split, c in convs.items()}
    return PreparedData(pipeline, spaces, {"emotion": "weighted_f1"}, graphs, convs)


def config(out: Path, name: str, batch_size: int, devices: int = 1, strategy: str = "auto") -> ExperimentConfig:
    model = {"hidden": 16, "heads": 2, "dropout": 0.0, **MODELS[name]}
    return ExperimentConfig(
        name=name, seed=3, model=model, graph={"source": ["dailydialog"]},
        train=TrainConfig(epochs=3, batch_size=batch_size, lr=3e-3, warmup_epochs=0, patience=10, progress=False,
                          accelerator="cpu", devices=devices, strategy=strategy, threads=1),
        output_dir=str(out / name))


class FinalState(L.Callback):
    """Writes each process's final model state (weights and buffers) to ``<path>_rank<r>.pt``."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_end(self, trainer, pl_module):
        state = {k: v.detach().clone() for k, v in pl_module.model.state_dict().items()}
        torch.save(state, f"{self.path}_rank{trainer.global_rank}.pt")


def without_key_bias(name: str, value: torch.Tensor) -> torch.Tensor:
    """``value`` as float, without the key part of an attention projection's bias (``qkv``: q | k | v, the context
    transformer's; ``kv``: k | v, the centre attention's)."""
    value = value.float()
    if name.endswith(".qkv.bias"):
        return value.view(3, -1)[[0, 2]]
    if name.endswith(".kv.bias"):
        return value.view(2, -1)[1]
    return value


def _worker(rank: int, world: int, tmp: str, batch_size: int) -> None:
    data = two_domain_data()
    for name in MODELS:
        fit(config(Path(tmp) / "ddp", name, batch_size, world, "ddp"), data=data,
            callbacks=[FinalState(Path(tmp) / name)])


# 22 train conversations. 2 processes, global batches of 3: shares of 2 and 1 conversations, and the last batch (1)
# leaves process 1 a padding copy. 3 processes, batches of 4: shares of 2, 1, 1, and the last batch (2) leaves
# process 2 a padding copy of process 0's conversation, which would count it twice in every mean.
@pytest.mark.slow
@pytest.mark.parametrize("world, batch_size", [(2, 3), (3, 4)])
def test_adaptation_models_train_under_ddp_like_one_process(tmp_path, world, batch_size):
    from kgemo.models import load_model
    from kgemo.models.predict import predict

    torch.set_num_threads(1)
    data = two_domain_data()
    single = {name: fit(config(tmp_path / "single", name, batch_size), data=data,
                        callbacks=[FinalState(tmp_path / f"1_{name}")]) for name in MODELS}
    run_processes(_worker, (str(tmp_path), batch_size), world)

    for name in MODELS:
        ddp = json.loads((tmp_path / "ddp" / name / "metrics.json").read_text())
        alone = torch.load(tmp_path / f"1_{name}_rank0.pt", weights_only=True)
        ranks = [torch.load(tmp_path / f"{name}_rank{r}.pt", weights_only=True) for r in range(world)]
        # Every process holds the same centres and class proportions, bit for bit (the same all-reduced sums), and
        # they are one process's up to the order of floating-point sums (measured: 4e-7; before the sums ran over
        # the processes, 0.3 from one process and 0.7 between the two).
        buffers = [k for k in alone if k.startswith("centres.")]
        assert bool(buffers) == name.startswith("cluster_graph"), name
        for k in buffers:
            assert all(torch.equal(ranks[0][k], other[k]) for other in ranks[1:]), (name, k)
            gap = float((ranks[0][k].float() - alone[k].float()).abs().max())
            assert gap < 1e-4, f"{name} {k}: max |Δ| {gap:.2e}"
        # The weights: one process's, up to rounding — but for the attention key biases, whose gradient is zero in
        # theory (a constant added to every score of a softmax): Adam turns the ~1e-9 rounding noise of that zero
        # into full-size steps, which change no output. (DDP keeps the processes' weights equal by itself.) Measured:
        # up to 3e-5 (the discriminator's input layer, under 3 processes); with the domain loss averaged per process,
        # 2e-3.
        for k in alone:
            gap = float((without_key_bias(k, ranks[0][k]) - without_key_bias(k, alone[k])).abs().max())
            assert gap < 2e-4, f"{name} {k}: max |Δ| {gap:.2e}"
        # The scores and the best epoch of one process; the exported models predict alike.
        assert ddp["complete"] and ddp["epochs_run"] == single[name]["epochs_run"] == 3, name
        assert ddp["best_epoch"] == single[name]["best_epoch"], name
        assert ddp["dev"]["emotion"] == pytest.approx(single[name]["dev"]["emotion"], abs=1e-6), name
        assert ddp["test"]["emotion"] == pytest.approx(single[name]["test"]["emotion"], abs=1e-6), name
        probs = [predict(load_model(tmp_path / run / name / "model")[0], data.graphs["test"],
                         data.pipeline.transform)["emotion"] for run in ("single", "ddp")]
        gap = float((probs[0] - probs[1]).abs().max())
        assert gap < 1e-3, f"{name}: max |Δ probability| {gap:.2e}"
        assert torch.equal(probs[0].argmax(-1), probs[1].argmax(-1)), name
