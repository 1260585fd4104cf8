"""train.init_from: two-stage training starts a model from a saved one, by parameter name and shape."""
import pytest
import torch
from tiny_data import tiny_prepared

from kgemo.errors import KgemoError
from kgemo.graphs import batches
from kgemo.models import ClusterGraph, ClusterGraphConfig, DANN, DANNConfig, load_model
from kgemo.training import ExperimentConfig, TrainConfig, fit, init_weights


@pytest.fixture
def source_only(tiny_encoder, tmp_path):
    data = tiny_prepared(tiny_encoder, "conversation", sizes=(8, 4, 4))
    cfg = ExperimentConfig(name="so", model={"name": "no_knowledge", "hidden": 16, "heads": 2},
                           train=TrainConfig(epochs=1, batch_size=4, progress=False), output_dir=str(tmp_path / "so"))
    fit(cfg, data=data)
    return data, tmp_path / "so" / "model"


def test_adaptation_models_start_as_the_source_only_model(source_only):
    data, folder = source_only
    src, _ = load_model(folder)
    batch = next(iter(batches(data.graphs["test"], 4, data.pipeline.transform)))
    for model in (ClusterGraph(ClusterGraphConfig(input_dim=16, hidden=16, heads=2), data.label_spaces),
                  DANN(DANNConfig(input_dim=16, hidden=16, heads=2), data.label_spaces)):
        info = init_weights(model, folder, data.pipeline)
        assert "heads.emotion.weight" in info["loaded"] and all(k.startswith(("centres.", "graph.", "adversary."))
                                                               for k in info["kept"])
        model.eval()
        # the centre-attention block starts as the identity: the same predictions as the model it starts from
        assert torch.allclose(model(batch)["emotion"], src(batch)["emotion"], atol=1e-5)


def test_init_from_refuses_other_shapes_and_other_encoders(source_only):
    data, folder = source_only
    with pytest.raises(KgemoError, match="other shapes"):
        init_weights(ClusterGraph(ClusterGraphConfig(input_dim=16, hidden=32, heads=2), data.label_spaces), folder)

    class OtherEncoder:
        id = "another-encoder"

    class Pipe:
        encoder = OtherEncoder()

    with pytest.raises(KgemoError, match="encoder"):
        init_weights(DANN(DANNConfig(input_dim=16, hidden=16, heads=2), data.label_spaces), folder, Pipe())


def test_fit_formats_and_uses_init_from(source_only, tmp_path):
    data, folder = source_only
    cfg = ExperimentConfig(name="two", model={"name": "no_knowledge", "hidden": 16, "heads": 2},
                           train=TrainConfig(epochs=1, batch_size=4, progress=False, lr=0.0, warmup_epochs=0,
                                             init_from=str(folder.parent.parent / "{name}" / "model")),
                           output_dir=str(tmp_path / "two"))
    with pytest.raises(KgemoError, match="two"):       # {name} = two: no such folder yet
        fit(cfg, data=data)
    cfg.train.init_from = str(folder)
    fit(cfg, data=data, force=True)
    a, _ = load_model(folder)
    b, _ = load_model(tmp_path / "two" / "model")
    for k, v in a.state_dict().items():               # lr 0: the weights it started from, unchanged
        assert torch.equal(v, b.state_dict()[k]), k
