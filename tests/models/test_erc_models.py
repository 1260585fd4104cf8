"""Every ERC model: a 2-epoch smoke train through the real trainer (loss falls), and save → load → same output."""
import csv
import json

import pytest
import torch
from tiny_data import tiny_prepared

from kgemo.models import load_model, save_model
from kgemo.models.predict import predict
from kgemo.training import ExperimentConfig, TrainConfig, fit

MODELS = {"no_knowledge": "conversation", "ket": "concept", "ckenet": "concept", "affect_prior": "concept"}


def train_losses(run_dir):
    with open(run_dir / "logs" / "version_0" / "metrics.csv") as fh:
        return [float(r["train_loss"]) for r in csv.DictReader(fh) if r.get("train_loss")]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_two_epoch_smoke_train_loss_falls(name, tiny_encoder, tmp_path):
    params = {"concepts_per_token": 3} if MODELS[name] == "concept" else {}
    data = tiny_prepared(tiny_encoder, MODELS[name], window=4, **params)
    config = ExperimentConfig(name=name, model={"name": name, "hidden": 32, "heads": 2, "dropout": 0.0},
                              train=TrainConfig(epochs=2, batch_size=4, lr=3e-3, warmup_epochs=0,
                                                patience=5, progress=False),
                              output_dir=str(tmp_path / "run"))
    result = fit(config, data=data)
    losses = train_losses(tmp_path / "run")
    assert len(losses) == 2 and losses[1] < losses[0]
    assert result["complete"] and set(result["test"]) == {"emotion"}
    assert 0 <= result["test"]["emotion"] <= 100
    assert (tmp_path / "run" / "confusion_test_emotion.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((tmp_path / "run" / "report_test_emotion.json").read_text())
    assert report["score"] == pytest.approx(result["test"]["emotion"])
    # The exported best model reloads and scores the same graphs identically.
    model, pipeline = load_model(tmp_path / "run" / "model")
    assert pipeline["builder"]["name"] == MODELS[name]
    assert pipeline["data"]["tasks"] == ["emotion"]


@pytest.mark.parametrize("name", list(MODELS))
def test_save_load_gives_identical_predictions(name, tiny_encoder, tmp_path):
    from kgemo.models import get_model_class

    data = tiny_prepared(tiny_encoder, MODELS[name], sizes=(4, 2, 2))
    cls = get_model_class(name)
    opts = {k: v for k, v in data.pipeline.model_dims().items() if k in cls.config_class.__dataclass_fields__}
    torch.manual_seed(0)
    model = cls(cls.config_class(hidden=32, heads=2, **opts), data.label_spaces).eval()
    before = predict(model, data.graphs["test"], data.pipeline.transform)
    save_model(model, tmp_path / "m", data.pipeline.spec())
    loaded, spec = load_model(tmp_path / "m")
    after = predict(loaded, data.graphs["test"], data.pipeline.transform)
    assert torch.equal(before["emotion"], after["emotion"])
    assert spec["encoder_id"] == tiny_encoder.id and spec["encoder_dim"] == tiny_encoder.dim
    assert (tmp_path / "m" / "README.md").read_text().startswith(f"# kgemo model: {name}")


def test_explain_weights_sum_as_documented(tiny_encoder):
    from kgemo.models import KET, KETConfig
    from kgemo.graphs import batches

    data = tiny_prepared(tiny_encoder, "concept", sizes=(3, 1, 1))
    model = KET(KETConfig(input_dim=16, concept_dim=16, hidden=32, heads=2), data.label_spaces).eval()
    batch = next(batches(data.graphs["train"], 3, data.pipeline.transform))
    ev = model.explain(batch)
    link = batch["concept", "linked", "token"]
    per_token = torch.zeros(batch["token"].num_nodes).index_add_(0, link.edge_index[1], ev["concept_edge_weight"])
    has_concepts = torch.zeros(batch["token"].num_nodes, dtype=torch.bool)
    has_concepts[link.edge_index[1]] = True
    assert torch.allclose(per_token[has_concepts], torch.ones(int(has_concepts.sum())), atol=1e-5)
    tok_utt = batch["token", "in", "utterance"].edge_index[1]
    per_utt = torch.zeros(batch["utterance"].num_nodes).index_add_(0, tok_utt, ev["token_weight"])
    has_tokens = torch.zeros(batch["utterance"].num_nodes, dtype=torch.bool)
    has_tokens[tok_utt] = True
    assert torch.allclose(per_utt[has_tokens], torch.ones(int(has_tokens.sum())), atol=1e-5)


def test_load_model_errors_name_the_folder(tmp_path):
    from kgemo.errors import KgemoError

    with pytest.raises(KgemoError, match="not a kgemo model folder"):
        load_model(tmp_path)


@pytest.mark.parametrize("affect", [True, False])
def test_ket_concept_affect_channel_reads_the_concepts_vad(tiny_encoder, affect):
    from kgemo.graphs import batches
    from kgemo.models import KET, KETConfig

    data = tiny_prepared(tiny_encoder, "concept", sizes=(3, 1, 1))
    cfg = data.pipeline.fill_widths(KETConfig(hidden=32, heads=2, concept_affect=affect, word_vectors=False))
    torch.manual_seed(0)
    model = KET(cfg, data.label_spaces).eval()
    torch.nn.init.normal_(model.knowledge_out[1].weight)  # zero-initialised: give the knowledge a say
    batch = next(batches(data.graphs["train"], 3, data.pipeline.transform))
    assert batch["concept"].vad.shape == (batch["concept"].num_nodes, 3)
    before = model(batch)["emotion"]
    batch["concept"].vad = 1.0 - batch["concept"].vad            # flip every concept's valence, arousal, dominance
    after = model(batch)["emotion"]
    assert (not torch.allclose(before, after)) == affect


@pytest.mark.parametrize("config, field", [("KETConfig", "knowledge_dropout"), ("KETConfig", "dropout"),
                                           ("CoGATConfig", "attention_dropout"), ("DANNConfig", "dropout")])
def test_every_dropout_probability_is_checked_in_the_config(config, field):
    import kgemo.models as models
    from kgemo.errors import KgemoError

    with pytest.raises(KgemoError, match=f"{field} must be in \\[0, 1\\], got 1.5"):
        getattr(models, config)(**{field: 1.5})
    getattr(models, config)(**{field: 0.5})


def test_utterance_affect_statistics_of_the_known_words():
    from kgemo.models.affect_prior import utterance_affect

    vad = torch.tensor([[0.9, 0.6, 0.5], [0.1, 0.8, 0.3], [0.5, 0.5, 0.5], [0.7, 0.2, 0.4]])
    known = torch.tensor([True, True, False, True])
    a = utterance_affect(vad, known, torch.tensor([0, 0, 1, 2]), 4)
    assert torch.allclose(a[0], torch.tensor([0.0, 0.2, -0.1, -0.4, 0.1, -0.2, 0.4, 0.3, 0.0, 1.0]), atol=1e-6)
    assert torch.equal(a[1], torch.zeros(10)) and torch.equal(a[3], torch.zeros(10))  # nothing known / no words
    assert torch.allclose(a[2], torch.tensor([0.2, -0.3, -0.1] * 3 + [1.0]))


def test_affect_prior_reads_the_words_vad_and_is_its_ablation_without_it(tiny_encoder):
    from kgemo.graphs import batches
    from kgemo.models import AffectPrior, AffectPriorConfig

    data = tiny_prepared(tiny_encoder, "concept", sizes=(3, 1, 1))
    torch.manual_seed(0)
    model = AffectPrior(data.pipeline.fill_widths(AffectPriorConfig(hidden=32, heads=2)), data.label_spaces).eval()
    batch = next(batches(data.graphs["train"], 3, data.pipeline.transform))
    assert bool(batch["token"].vad_known.any())
    before = model(batch)["emotion"]
    batch["token"].vad = 1.0 - batch["token"].vad                 # flip every word's valence, arousal, dominance
    assert torch.equal(before, model(batch)["emotion"])           # W_a starts at 0: the no-knowledge model
    torch.nn.init.normal_(model.affect_in.weight)
    flipped = model(batch)["emotion"]
    batch["token"].vad = 1.0 - batch["token"].vad
    assert not torch.allclose(flipped, model(batch)["emotion"])   # a trained W_a reads the words' affect


@pytest.mark.parametrize("options", [{}, {"word_vectors": False, "concept_affect": True},
                                     {"relatedness": "paper", "context_layers": 2}])
def test_ket_two_stage_occlusion_equals_forward_on_the_copies(tiny_encoder, options):
    """occluded_logits (knowledge once, then only the dropped utterances' knowledge and the context layers per
    copy) gives what forward gives on each copy of the graph without the dropped concept edges."""
    import numpy as np

    from kgemo.annotate.occlusion import drop_edges
    from kgemo.models import KET, KETConfig

    data = tiny_prepared(tiny_encoder, "concept", sizes=(20, 1, 1), concepts_per_token=3)
    cfg = data.pipeline.fill_widths(KETConfig(hidden=32, heads=2, **options))
    torch.manual_seed(0)
    model = KET(cfg, data.label_spaces).eval()
    torch.nn.init.normal_(model.knowledge_out[1].weight)  # zero-initialised: give the knowledge a say
    g = max(data.graphs["train"], key=lambda x: x["concept", "linked", "token"].edge_index.size(1))
    n_edges = g["concept", "linked", "token"].edge_index.size(1)
    assert n_edges > 4 and g["utterance"].num_nodes > 1
    rng = np.random.default_rng(0)
    drops = [np.zeros(n_edges, bool), rng.random(n_edges) < 0.3, rng.random(n_edges) < 0.7, np.ones(n_edges, bool)]
    with torch.no_grad():
        copies = model(data.pipeline.transform(drop_edges(g, drops)))["emotion"]
        two_stage = model.occluded_logits(data.pipeline.transform(g.clone()), torch.from_numpy(np.stack(drops)))
    n = g["utterance"].num_nodes
    assert two_stage["emotion"].shape == (len(drops), n, copies.size(-1))
    assert torch.allclose(two_stage["emotion"].reshape(-1, copies.size(-1)), copies, atol=1e-5)
    assert not torch.allclose(copies[:n], copies[-n:], atol=1e-3)     # the drops do change the logits
    # Only one utterance per copy (what occlusion reads): the context layers compute just what it needs.
    rows = torch.tensor([0, n - 1, n // 2, 1])
    with torch.no_grad():
        one = model.occluded_logits(data.pipeline.transform(g.clone()), torch.from_numpy(np.stack(drops)), rows)
    assert torch.allclose(one["emotion"], copies[torch.arange(len(drops)) * n + rows], atol=1e-5)
