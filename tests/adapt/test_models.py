"""The adaptation models: centres initialised from the train split, training steps move them, save → load keeps them,
and every adapt config parses with a consistent source domain."""
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Batch
from two_domains import conversations

from kgemo.data import label_space
from kgemo.graphs import get_builder
from kgemo.models import DANN, ClusterGraph, ClusterGraphConfig, DANNConfig, load_model, save_model

SPACES = {"emotion": label_space("ekman7", "emotion")}
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def batch(seed=0):
    builder = get_builder("cross_domain", source=["dailydialog"])
    g = torch.Generator().manual_seed(seed)
    convs = conversations("dailydialog", "dev") + conversations("meld", "dev")
    return Batch.from_data_list([builder(c, torch.randn(len(c), 8, generator=g).numpy(), SPACES) for c in convs])


def test_prepare_training_sets_source_centres_to_class_means():
    torch.manual_seed(0)
    b = batch()
    model = ClusterGraph(ClusterGraphConfig(input_dim=8, hidden=8, heads=2), SPACES)
    model.prepare_training([b])
    assert model.centres.initialised.all() and model.training
    model.eval()
    h = model._states(b)
    u = b["utterance"]
    joy = (u.domain == 0) & (u.y_emotion == SPACES["emotion"].index("joy"))
    assert torch.allclose(model.centres.centres[0, SPACES["emotion"].index("joy")], h[joy].mean(0), atol=1e-5)
    before = model.centres.centres.clone()
    model.prepare_training([batch(1)])                      # already initialised (e.g. resumed): left alone
    assert torch.equal(model.centres.centres, before)


@pytest.mark.parametrize("update", ["pseudo_label", "nearest"])
def test_training_step_moves_both_domains_centres(update):
    torch.manual_seed(0)
    b = batch()
    model = ClusterGraph(ClusterGraphConfig(input_dim=8, hidden=8, heads=2, target_update=update), SPACES)
    model.prepare_training([b])
    before = model.centres.centres.clone()
    model.train()
    model.on_train_step(50, 100)
    logits, aux = model.forward_train(b)
    assert logits["emotion"].shape == (b["utterance"].num_nodes, 7) and aux["domain_loss"].ndim == 0
    assert 0 < model.grl_coeff < 1
    moved = (model.centres.centres - before).abs().sum(-1) > 0        # [2, K]
    assert moved[0].any() and moved[1].any()
    (logits["emotion"].sum() + aux["domain_loss"]).backward()
    assert model.graph[0].attn.q.weight.grad is not None and model.adversary.mlp[0].weight.grad is not None
    # evaluation does not move them
    model.eval()
    after = model.centres.centres.clone()
    model(b)
    assert torch.equal(model.centres.centres, after)


@pytest.mark.parametrize("cls, cfg", [(ClusterGraph, ClusterGraphConfig), (DANN, DANNConfig)])
def test_save_load_keeps_centres_and_predictions(cls, cfg, tmp_path):
    torch.manual_seed(0)
    b = batch()
    model = cls(cfg(input_dim=8, hidden=8, heads=2), SPACES)
    if hasattr(model, "prepare_training"):
        model.prepare_training([b])
    model.eval()
    save_model(model, tmp_path / "m", {"builder": {"name": "cross_domain", "params": {"source": ["dailydialog"]}}})
    loaded, _ = load_model(tmp_path / "m")
    assert torch.equal(model(b)["emotion"], loaded(b)["emotion"])
    if cls is ClusterGraph:
        assert torch.equal(loaded.centres.centres, model.centres.centres) and loaded.centres.initialised.all()


def test_bad_options_are_refused():
    from kgemo.errors import KgemoError

    with pytest.raises(KgemoError, match="target_init"):
        ClusterGraphConfig(target_init="random")
    with pytest.raises(KgemoError, match="conditioning"):
        DANNConfig(conditioning="cdan+e")


def test_adapt_configs_parse_and_agree_on_the_domains():
    from kgemo.training import load_config, task_setup

    paths = sorted(CONFIGS.glob("adapt_*.yaml"))
    assert len(paths) == 8
    variants = {}
    for path in paths:
        cfg = load_config(path)
        _, metrics = task_setup(cfg)
        target = cfg.data.target_datasets or cfg.data.datasets
        assert metrics["emotion"] == {"meld": "weighted_f1", "dailydialog": "micro_f1_no_neutral"}[target[0]], path
        assert cfg.data.label_space == "ekman7" and cfg.data.encoder == "default"
        if cfg.model_class.graph_builder == "cross_domain":
            assert cfg.graph.source == cfg.data.datasets, path
        variants.setdefault(cfg.tags["adaptation"], []).append(path.name)
    assert {k: len(v) for k, v in variants.items()} == {"cluster_graph": 2, "dann": 2, "source_only": 2,
                                                        "target_supervised": 2}


def test_alignment_loss_by_hand():
    """Target states of each confidently predicted class are pulled to that class's source centre."""
    spaces = {"emotion": label_space("meld", "sentiment")}                          # 3 classes
    model = ClusterGraph(ClusterGraphConfig(input_dim=2, hidden=2, heads=1, pseudo_label_threshold=0.6,
                                            alignment_weight=1.0), spaces)
    model.centres.centres[0] = torch.tensor([[0.0, 0.0], [4.0, 0.0], [9.0, 9.0]])   # source centres
    h = torch.tensor([[1.0, 1.0], [3.0, 1.0], [5.0, 3.0], [7.0, 7.0], [0.0, 0.0]], requires_grad=True)
    domain = torch.tensor([1, 1, 1, 1, 0])                                          # the last one is source
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.1, 0.9, 0.0], [0.5, 0.0, 0.5], [1.0, 0.0, 0.0]])
    # class 0: mean of rows 0, 1 = (2, 1) vs (0, 0) → (4 + 1) / 2 = 2.5; class 1: row 2 (5, 3) vs (4, 0) → (1 + 9) / 2
    # = 5; row 3 is below the threshold, row 4 is source. Mean over the two classes: 3.75.
    loss = model._alignment_loss(h, domain, probs)
    assert loss.item() == pytest.approx(3.75)
    loss.backward()
    assert h.grad[3].abs().sum() == 0 and h.grad[4].abs().sum() == 0 and not model.centres.centres.requires_grad


def test_importance_weights_give_the_source_the_target_class_proportions():
    spaces = {"emotion": label_space("meld", "sentiment")}
    model = ClusterGraph(ClusterGraphConfig(input_dim=2, hidden=2, heads=1, importance_weighting=True,
                                            max_importance=4.0), spaces)
    model.centres.prior[0] = torch.tensor([0.8, 0.1, 0.1])     # source
    model.centres.prior[1] = torch.tensor([0.4, 0.5, 0.1])     # target
    domain, y = torch.tensor([0, 0, 0, 0, 1]), torch.tensor([0, 1, 2, -1, 2])
    # 0.4/0.8 = 0.5; 0.5/0.1 = 5 → clipped to 4; 0.1/0.1 = 1; unlabelled source and target samples: 1
    assert model._importance(domain, y).tolist() == pytest.approx([0.5, 4.0, 1.0, 1.0, 1.0])
    model.centres.update_prior(1, torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]), momentum=0.5)
    assert model.centres.prior[1].tolist() == pytest.approx([0.2, 0.5, 0.3])   # 0.5·(.4, .5, .1) + 0.5·(0, .5, .5)
