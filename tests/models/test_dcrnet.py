"""DCR-Net: the co-attention layer by hand, the model contract, a 2-epoch training run, save/load, configs."""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from kgemo.data import Conversation, Utterance
from kgemo.data.labels import label_space
from kgemo.errors import KgemoError
from kgemo.graphs import get_builder
from kgemo.pipeline import InputPipeline
from kgemo.models import DCRNet, DCRNetConfig, load_model, save_model
from kgemo.models.predict import predict
from kgemo.nn import CoAttention
from kgemo.training import DataConfig, ExperimentConfig, PreparedData, TrainConfig, fit, load_config, task_setup

ROOT = Path(__file__).resolve().parents[2]
MASTODON = {"sentiment": label_space("mastodon", "sentiment"), "act": label_space("mastodon", "act")}
TEMPLATES = [("what time is it", "*", "Q"), ("it is noon", "*", "A"), ("thanks a lot", "+", "T"),
             ("this is awful", "-", "I"), ("i love it", "+", "I"), ("no way", "-", "D")]


def tiny_data(encoder, **graph) -> PreparedData:
    """Tiny two-party conversations whose labels are a function of the text, with the tiny hash encoder."""
    rng = np.random.default_rng(0)

    def conversations(n):
        out = []
        for k in range(n):
            length = int(rng.integers(2, 6))
            picks = [TEMPLATES[int(rng.integers(len(TEMPLATES)))] for _ in range(length)]
            utts = [Utterance(f"{t} {i}", "AB"[i % 2], {"sentiment": s, "act": a}) for i, (t, s, a) in enumerate(picks)]
            out.append(Conversation(str(k), utts, "mastodon", None, reply_to=[(i, i) for i in range(length)]))
        return out

    pipeline = InputPipeline(get_builder("co_interactive", **graph), encoder, encoder_name="tiny")
    convs = {"train": conversations(24), "dev": conversations(6), "test": conversations(6)}
    graphs = {s: pipeline.graphs(c, MASTODON, features=pipeline.encode(c)) for s, c in convs.items()}
    return PreparedData(pipeline, dict(MASTODON), {"sentiment": "mastodon_sentiment_f1", "act": "mastodon_act_f1"},
                        graphs, convs)


def test_co_attention_by_hand():
    torch.manual_seed(0)
    layer = CoAttention(4, heads=2, dropout=0.0).eval()
    h_dst, h_src = torch.randn(2, 4), torch.randn(3, 4)
    # Target 0 has a single source (2): its attention weight is 1, so the update is W_o W_v g_2.
    edge_index = torch.tensor([[2, 0, 1], [0, 1, 1]])
    out = layer(h_dst, h_src, edge_index)
    v = layer.kv(h_src)[:, 4:]
    torch.testing.assert_close(out[0], h_dst[0] + layer.out(v[2]))
    # Target 1 averages sources 0 and 1 with per-head softmax weights over the scaled dot products.
    q = layer.q(h_dst[1]).view(2, 2)
    k = layer.kv(h_src)[:, :4].view(3, 2, 2)
    alpha = torch.softmax((q * k[:2]).sum(-1) / np.sqrt(2), dim=0)            # [2 sources, 2 heads]
    mixed = (alpha.unsqueeze(-1) * v[:2].view(2, 2, 2)).sum(0).reshape(4)
    torch.testing.assert_close(out[1], h_dst[1] + layer.out(mixed))
    # A target without sources is unchanged but for the output bias.
    lonely = layer(h_dst, h_src, torch.tensor([[0], [1]]))
    torch.testing.assert_close(lonely[0], h_dst[0] + layer.out.bias)


def test_forward_and_tasks(tiny_encoder):
    data = tiny_data(tiny_encoder)
    b = Batch.from_data_list(data.graphs["train"][:3])
    model = DCRNet(DCRNetConfig(input_dim=16, hidden=16, heads=2), MASTODON).eval()
    out = model(b)
    n = b["utterance"].num_nodes
    assert out["sentiment"].shape == (n, 3) and out["act"].shape == (n, 15)
    # The ablation graph (no cross-task edges) is a valid input: co-attention then has nothing to attend to.
    nocross = Batch.from_data_list(tiny_data(tiny_encoder, cross_task=False).graphs["train"][:3])
    assert model(nocross)["act"].shape == (n, 15)
    with pytest.raises(KgemoError, match="act and one of"):
        DCRNet(DCRNetConfig(input_dim=16, hidden=16), {"act": MASTODON["act"]})


@pytest.mark.slow
def test_two_epoch_training_lowers_the_loss_and_reloads_identically(tmp_path, tiny_encoder):
    data = tiny_data(tiny_encoder)
    config = ExperimentConfig(
        name="tiny", data=DataConfig(datasets=["mastodon"], tasks=["sentiment", "act"]),
        model={"name": "dcrnet", "hidden": 32, "heads": 4, "dropout": 0.0},
        train=TrainConfig(epochs=2, batch_size=4, lr=3e-3, warmup_epochs=0, monitor="mean", class_weights=None,
                          accelerator="cpu", progress=False),
        output_dir=str(tmp_path / "run"))
    result = fit(config, data=data)
    rows = [r for p in (tmp_path / "run").glob("logs/**/metrics.csv") for r in csv.DictReader(p.open())]
    losses = [float(r["train_loss"]) for r in sorted(rows, key=lambda r: int(r["epoch"])) if r.get("train_loss")]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert set(result["dev"]) == {"sentiment", "act"}

    model, pipeline = load_model(tmp_path / "run" / "model")
    assert isinstance(model, DCRNet)
    before = predict(model, data.graphs["test"])
    save_model(model, tmp_path / "again", pipeline)
    after = predict(load_model(tmp_path / "again")[0], data.graphs["test"])
    for task in before:
        assert torch.equal(before[task], after[task])


@pytest.mark.parametrize("name,metrics", [
    ("dcrnet_mastodon", {"sentiment": "mastodon_sentiment_f1", "act": "mastodon_act_f1"}),
    ("dcrnet_dailydialog", {"emotion": "macro_f1", "act": "macro_f1"}),
])
def test_configs(name, metrics):
    config = load_config(ROOT / "configs" / f"{name}.yaml")
    spaces, chosen = task_setup(config)
    assert chosen == metrics and config.model.name == "dcrnet"
    DCRNet(dataclasses.replace(config.model, input_dim=16), spaces)
