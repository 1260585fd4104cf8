"""Target labels never reach training.

The trainer removes every label of the target datasets' train split before any graph is built, and the models
read labels only where the utterance belongs to the source domain. Proof by experiment: replacing the target's
train and test labels with garbage leaves the trained weights identical, bit for bit, for a fixed seed — while the
same garbage in the *source* labels changes them (so the comparison can see a label that is used). The target's
dev labels are the only target labels used: to select the epoch (early stopping), which is why they stay.
"""
import pytest
import torch
from safetensors.torch import load_file
from two_domains import patch_datasets

from kgemo.graphs import get_builder
from kgemo.pipeline import InputPipeline
from kgemo.training import ExperimentConfig, fit, prepare_data

MODELS = {
    "cluster_graph": {"name": "cluster_graph", "hidden": 16, "heads": 2, "conditioning": "cdan_e"},
    "cluster_graph_pseudo": {"name": "cluster_graph", "hidden": 16, "heads": 2, "target_init": "pseudo_label",
                             "centres_per_class": 2},
    "dann": {"name": "dann", "hidden": 16, "heads": 2},
}


def experiment(tmp_path, model, run):
    return ExperimentConfig(
        name="t", seed=7, model=dict(model),
        data={"datasets": ["dailydialog"], "target_datasets": ["meld"], "label_space": "ekman7",
              "metrics": {"emotion": "weighted_f1"}},
        graph={"source": ["dailydialog"]},
        train={"epochs": 2, "batch_size": 8, "patience": 5, "progress": False, "threads": 1},
        output_dir=str(tmp_path / run))


def trained(monkeypatch, tmp_path, tiny_encoder, model, run, garbage=(), garbage_source=False):
    patch_datasets(monkeypatch, tmp_path, garbage)
    if garbage_source:
        import kgemo.data as data
        from two_domains import conversations

        real = data.load_dataset
        monkeypatch.setattr(data, "load_dataset", lambda name, split, root=None, strict=True: (
            conversations(name, split, garbage=True) if name == "dailydialog" else real(name, split)))
    cfg = experiment(tmp_path, model, run)
    prepared = prepare_data(cfg, pipeline=InputPipeline(get_builder("cross_domain", cfg.graph), tiny_encoder))
    fit(cfg, data=prepared)
    weights = load_file(str(tmp_path / run / "model" / "model.safetensors"))
    last = torch.load(tmp_path / run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    return prepared, weights, last


@pytest.mark.parametrize("model", list(MODELS))
def test_garbage_target_labels_give_identical_weights(monkeypatch, tmp_path, tiny_encoder, model):
    clean, w_clean, last_clean = trained(monkeypatch, tmp_path, tiny_encoder, MODELS[model], "clean")
    noisy, w_noisy, last_noisy = trained(monkeypatch, tmp_path, tiny_encoder, MODELS[model], "garbage",
                                         garbage=("train", "test"))
    # the garbage is real: the target's test labels differ, so its test score may differ; training may not
    y = lambda d, s: torch.cat([g["utterance"].y_emotion for g in d.graphs[s]])  # noqa: E731
    assert not torch.equal(y(clean, "test"), y(noisy, "test"))
    assert set(w_clean) == set(w_noisy) and any(k.startswith("adversary.") for k in w_clean)
    for k in w_clean:
        assert torch.equal(w_clean[k], w_noisy[k]), k
    for k in last_clean:
        assert torch.equal(last_clean[k], last_noisy[k]), k


def test_garbage_source_labels_do_change_the_weights(monkeypatch, tmp_path, tiny_encoder):
    _, w_clean, _ = trained(monkeypatch, tmp_path, tiny_encoder, MODELS["cluster_graph"], "clean")
    _, w_noisy, _ = trained(monkeypatch, tmp_path, tiny_encoder, MODELS["cluster_graph"], "garbage",
                            garbage_source=True)
    assert any(not torch.equal(w_clean[k], w_noisy[k]) for k in w_clean)


def test_target_train_split_arrives_without_labels(monkeypatch, tmp_path, tiny_encoder):
    patch_datasets(monkeypatch, tmp_path)
    cfg = experiment(tmp_path, MODELS["dann"], "run")
    data = prepare_data(cfg, pipeline=InputPipeline(get_builder("cross_domain", cfg.graph), tiny_encoder))
    train = data.graphs["train"]
    source = [g for g in train if int(g["utterance"].domain[0]) == 0]
    target = [g for g in train if int(g["utterance"].domain[0]) == 1]
    assert len(source) == len(target) == 24
    assert all((g["utterance"].y_emotion == -1).all() for g in target)
    assert all((g["utterance"].y_emotion >= 0).all() for g in source)
    assert all(u.labels == {} for c in data.conversations["train"] if c.dataset == "meld" for u in c.utterances)
    # dev and test: the target's own, labelled (dev selects the epoch; test is scored)
    for split in ("dev", "test"):
        assert {c.dataset for c in data.conversations[split]} == {"meld"}
        assert all((g["utterance"].y_emotion >= 0).all() and (g["utterance"].domain == 1).all()
                   for g in data.graphs[split])
    # class weights come from the labelled train utterances: the source's alone
    assert data.train_labels("emotion").ge(0).sum() == sum(g["utterance"].num_nodes for g in source)


def test_source_only_run_never_sees_the_target_train_split(monkeypatch, tmp_path, tiny_encoder):
    patch_datasets(monkeypatch, tmp_path)
    cfg = ExperimentConfig(name="t", model={"name": "no_knowledge", "hidden": 16, "heads": 2},
                           data={"datasets": ["dailydialog"], "target_datasets": ["meld"], "target_train": False,
                                 "label_space": "ekman7"}, output_dir=str(tmp_path / "run"))
    data = prepare_data(cfg, pipeline=InputPipeline(get_builder("conversation", cfg.graph), tiny_encoder))
    assert {c.dataset for c in data.conversations["train"]} == {"dailydialog"}
    assert {c.dataset for c in data.conversations["dev"]} == {"meld"}


def test_models_read_source_labels_only():
    """Below the trainer: even a batch whose target utterances still carry labels trains the same way."""
    from torch_geometric.data import Batch

    from kgemo.data import label_space
    from kgemo.models import ClusterGraph, ClusterGraphConfig
    from two_domains import conversations

    spaces = {"emotion": label_space("ekman7", "emotion")}
    builder = get_builder("cross_domain", source=["dailydialog"])
    g = torch.Generator().manual_seed(0)
    convs = conversations("dailydialog", "dev") + conversations("meld", "dev")
    graphs = [builder(c, torch.randn(len(c), 8, generator=g).numpy(), spaces) for c in convs]
    batch = Batch.from_data_list(graphs)
    garbled = batch.clone()
    target = garbled["utterance"].domain == 1
    garbled["utterance"].y_emotion[target] = (garbled["utterance"].y_emotion[target] + 3) % 7
    outs = []
    for b in (batch, garbled):
        torch.manual_seed(0)
        model = ClusterGraph(ClusterGraphConfig(input_dim=8, hidden=8, heads=2), spaces)
        model.prepare_training([b])
        model.train()
        logits, aux = model.forward_train(b)
        outs.append((logits["emotion"], aux["domain_loss"], model.centres.centres.clone()))
    for a, b in zip(*outs):
        assert torch.equal(a, b)
