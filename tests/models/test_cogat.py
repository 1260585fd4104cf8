"""Co-GAT: its layers on hand-made inputs, the model contract, a 2-epoch training run, save/load, configs."""
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
from kgemo.metrics import score
from kgemo.models import CoGAT, CoGATConfig, load_model, save_model
from kgemo.models.predict import predict
from kgemo.nn import CoInteractiveGAT, ConversationLSTM, ResidualGAT
from kgemo.training import DataConfig, ExperimentConfig, PreparedData, TrainConfig, fit, load_config, task_setup

ROOT = Path(__file__).resolve().parents[2]
MASTODON = {"sentiment": label_space("mastodon", "sentiment"), "act": label_space("mastodon", "act")}
# Text → (sentiment, act): the labels are a function of the text, so a model can learn them from the
# tiny encoder's hash features in a few steps.
TEMPLATES = [("what time is it", "*", "Q"), ("it is noon", "*", "A"), ("thanks a lot", "+", "T"),
             ("this is awful", "-", "I"), ("i love it", "+", "I"), ("no way", "-", "D")]


def tiny_conversations(n: int, seed: int) -> list[Conversation]:
    rng = np.random.default_rng(seed)
    convs = []
    for k in range(n):
        length = int(rng.integers(2, 6))
        utts = []
        for i in range(length):
            text, sentiment, act = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
            utts.append(Utterance(f"{text} {i}", "AB"[i % 2], {"sentiment": sentiment, "act": act}))
        links = [(i, i) for i in range(length)] + [(i, i + 2) for i in range(length - 2)]
        convs.append(Conversation(str(k), utts, "mastodon", None, reply_to=links))
    return convs


def tiny_data(encoder, **graph) -> PreparedData:
    """A :class:`PreparedData` of tiny conversations with the tiny hash encoder (no model load, no files)."""
    pipeline = InputPipeline(get_builder("co_interactive", **graph), encoder, encoder_name="tiny")
    convs = {"train": tiny_conversations(24, 0), "dev": tiny_conversations(6, 1), "test": tiny_conversations(6, 2)}
    graphs = {s: pipeline.graphs(c, MASTODON, features=pipeline.encode(c)) for s, c in convs.items()}
    metrics = {"sentiment": "mastodon_sentiment_f1", "act": "mastodon_act_f1"}
    return PreparedData(pipeline, dict(MASTODON), metrics, graphs, convs)


def tiny_config(tmp_path, model: dict, graph: dict | None = None, epochs: int = 2) -> ExperimentConfig:
    return ExperimentConfig(
        name="tiny", seed=0, data=DataConfig(datasets=["mastodon"], tasks=["sentiment", "act"]),
        model=model, graph=graph or {},
        train=TrainConfig(epochs=epochs, batch_size=4, lr=3e-3, warmup_epochs=0, patience=10, monitor="mean",
                          class_weights=None, accelerator="cpu", progress=False),
        output_dir=str(tmp_path / "run"))


def epoch_losses(run_dir: Path) -> list[float]:
    rows = [r for path in run_dir.glob("logs/**/metrics.csv") for r in csv.DictReader(path.open())]
    return [float(r["train_loss"]) for r in sorted(rows, key=lambda r: int(r["epoch"])) if r.get("train_loss")]


def batch_of(encoder, **graph) -> Batch:
    data = tiny_data(encoder, **graph)
    return Batch.from_data_list(data.graphs["train"][:3])


# -- layers -----------------------------------------------------------------------------------------------------

def test_conversation_lstm_equals_one_lstm_per_conversation():
    torch.manual_seed(0)
    layer = ConversationLSTM(5, 6)
    x = torch.randn(7, 5)
    batch = torch.tensor([0, 0, 0, 1, 2, 2, 2])
    out = layer(x, batch)
    assert out.shape == (7, 6)
    for g in range(3):
        sel = batch == g
        alone, _ = layer.lstm(x[sel].unsqueeze(0))
        torch.testing.assert_close(out[sel], alone[0])
    torch.testing.assert_close(layer(x[:3]), out[:3])         # batch=None: one conversation
    assert "BiLSTM" in repr(layer)


def test_residual_gat_is_identity_plus_attention_over_edges_only():
    torch.manual_seed(0)
    layer = ResidualGAT(8, heads=2, dropout=0.0, attention_dropout=0.0).eval()
    h = torch.randn(3, 8)
    # No edges: nothing to attend to, so the update is ELU(bias) and the same for every node.
    out = layer(h, torch.zeros((2, 0), dtype=torch.long))
    delta = out - h
    torch.testing.assert_close(delta, delta[:1].expand(3, -1))
    # Only node 2 receives a message (from node 0): nodes 0 and 1 are unchanged relative to the no-edge case.
    out2 = layer(h, torch.tensor([[0], [2]]))
    torch.testing.assert_close(out2[:2], out[:2])
    assert not torch.allclose(out2[2], out[2])
    with pytest.raises(ValueError, match="divisible"):
        ResidualGAT(10, heads=4)


def test_co_interactive_gat_mixes_tasks_only_through_cross_edges(tiny_encoder):
    torch.manual_seed(0)
    b = batch_of(tiny_encoder)
    n = b["utterance"].num_nodes
    layer = CoInteractiveGAT(8, layers=2, heads=2, dropout=0.0, attention_dropout=0.0).eval()
    act, sent = torch.randn(n, 8), torch.randn(n, 8)
    edges = b.edge_index_dict
    no_cross = {et: ei for et, ei in edges.items() if et[1] != "cross"}
    out = layer({"act": act, "sentiment": sent}, edges)
    assert out["act"].shape == (n, 8) and out["sentiment"].shape == (n, 8)
    changed = {"act": act, "sentiment": sent + 1.0}
    # With cross-task edges the act nodes see the sentiment nodes; without them they do not.
    assert not torch.allclose(layer(changed, edges)["act"], out["act"])
    base = layer({"act": act, "sentiment": sent}, no_cross)
    torch.testing.assert_close(layer(changed, no_cross)["act"], base["act"])
    x, ei = CoInteractiveGAT.merge({"act": act, "sentiment": sent}, edges)
    assert x.shape == (2 * n, 8) and int(ei.max()) < 2 * n


# -- model ------------------------------------------------------------------------------------------------------

def test_forward_gives_logits_per_task(tiny_encoder):
    b = batch_of(tiny_encoder)
    model = CoGAT(CoGATConfig(input_dim=16, hidden=16, heads=4), MASTODON).eval()
    out = model(b)
    n = b["utterance"].num_nodes
    assert set(out) == {"sentiment", "act"}
    assert out["sentiment"].shape == (n, 3) and out["act"].shape == (n, 15)
    # The ablation graph (no cross-task edges) is a valid input too.
    assert model(batch_of(tiny_encoder, cross_task=False))["act"].shape == (n, 15)


def test_second_task_may_be_dailydialog_emotion(tiny_encoder):
    spaces = {"act": label_space("dailydialog", "act"), "emotion": label_space("dailydialog", "emotion")}
    model = CoGAT(CoGATConfig(input_dim=16, hidden=16, heads=4), spaces).eval()
    out = model(batch_of(tiny_encoder))
    assert out["emotion"].shape[1] == 7 and out["act"].shape[1] == 4


@pytest.mark.parametrize("tasks", [["act"], ["emotion", "sentiment"], ["act", "sentiment", "emotion"]])
def test_wrong_tasks_are_an_error(tasks):
    spaces = {t: label_space("meld" if t != "act" else "dailydialog", t) for t in tasks}
    with pytest.raises(KgemoError, match="act and one of"):
        CoGAT(CoGATConfig(input_dim=16, hidden=16, heads=4), spaces)


@pytest.mark.slow
def test_two_epoch_training_lowers_the_loss_and_reloads_identically(tmp_path, tiny_encoder):
    data = tiny_data(tiny_encoder)
    model_opts = {"name": "cogat", "hidden": 32, "heads": 4, "dropout": 0.0, "attention_dropout": 0.0}
    result = fit(tiny_config(tmp_path, model_opts), data=data)
    losses = epoch_losses(tmp_path / "run")
    assert len(losses) == 2 and losses[1] < losses[0]
    assert set(result["test"]) == {"sentiment", "act"}
    assert result["metrics"] == {"sentiment": "mastodon_sentiment_f1", "act": "mastodon_act_f1"}

    model, pipeline = load_model(tmp_path / "run" / "model")
    assert isinstance(model, CoGAT) and pipeline["builder"]["name"] == "co_interactive"
    before = predict(model, data.graphs["test"])
    save_model(model, tmp_path / "again", pipeline)
    again, _ = load_model(tmp_path / "again")
    after = predict(again, data.graphs["test"])
    for task in before:
        assert torch.equal(before[task], after[task])
    # The annotator loads it like any model: an act and a sentiment per utterance, for input without reply links.
    from kgemo import Annotator

    ann = Annotator.from_pretrained(tmp_path / "run" / "model", encoder=tiny_encoder, events=None, device="cpu")
    res = ann.annotate([("Ann", "what time is it 0"), ("Bob", "it is noon 1"), ("Ann", "thanks a lot 2")])
    assert set(ann.tasks) == {"sentiment", "act"}
    for utt in res.utterances:
        assert utt.labels["act"] in MASTODON["act"].labels and utt.labels["sentiment"] in MASTODON["sentiment"]
    # metrics.json reports the dataset metric of the best model.
    y = torch.cat([g["utterance"].y_act for g in data.graphs["test"]])
    assert result["test"]["act"] == pytest.approx(
        score("mastodon_act_f1", y, before["act"].argmax(-1), MASTODON["act"]))


# -- configs and metrics ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,metrics", [
    ("cogat_mastodon", {"sentiment": "mastodon_sentiment_f1", "act": "mastodon_act_f1"}),
    ("cogat_nocross_mastodon", {"sentiment": "mastodon_sentiment_f1", "act": "mastodon_act_f1"}),
    ("cogat_dailydialog", {"emotion": "macro_f1", "act": "macro_f1"}),
])
def test_configs_score_with_cogats_metrics(name, metrics):
    config = load_config(ROOT / "configs" / f"{name}.yaml")
    spaces, chosen = task_setup(config)
    assert chosen == metrics
    assert config.model.name == "cogat" and config.train.monitor == "mean"
    assert (config.graph.cross_task is False) == ("nocross" in name)
    CoGAT(dataclasses.replace(config.model, input_dim=16), spaces)


def test_metric_definitions_by_hand():
    """Co-GAT's Mastodon metrics on a case small enough to compute by hand."""
    sent = MASTODON["sentiment"]                      # positive 0, negative 1, neutral 2
    y_true, y_pred = [0, 0, 1, 2, 2], [0, 2, 1, 0, 2]
    # F1(+) = 2·(1/2·1/2)/(1/2+1/2) = 1/2; F1(−) = 1; neutral's F1 is left out of the mean.
    assert score("mastodon_sentiment_f1", y_true, y_pred, sent) == pytest.approx(75.0)
    act = MASTODON["act"]                             # I 0, W 1, Q 2
    y_true, y_pred = [0, 0, 0, 2], [0, 0, 2, 2]
    # Prevalence 3/4 (I), 1/4 (Q). P = 3/4·1 + 1/4·1/2 = 7/8; R = 3/4·2/3 + 1/4·1 = 3/4 (the accuracy).
    p, r = 7 / 8, 3 / 4
    assert score("mastodon_act_f1", y_true, y_pred, act) == pytest.approx(100 * 2 * p * r / (p + r))
    # DailyDialog in the joint setting: plain macro F1 over the classes that occur.
    emo = label_space("dailydialog", "emotion")
    assert score("macro_f1", [0, 0, 4], [0, 4, 4], emo) == pytest.approx(100 * (2 / 3 + 2 / 3) / 2)
