"""train.init_from with a new or mapped label set: output rows by class name or train.label_map, fresh rows for new
classes; the embedded default annotator as a starting point; refusals."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from tiny_data import tiny_prepared

from kgemo.data import LabelSpace, label_space
from kgemo.errors import KgemoError
from kgemo.models import KET, NoKnowledge, NoKnowledgeConfig, load_model
from kgemo.training import ExperimentConfig, PreparedData, TrainConfig, class_rows, fit, init_weights, load_config

ROOT = Path(__file__).resolve().parents[2]
MINE = LabelSpace("mine/emotion", ("happy", "neutral", "bored", "sad"), neutral="neutral")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny no-knowledge model trained on meld/emotion (7 classes) and its data."""
    from tiny_encoder import TinyEncoder

    tmp = tmp_path_factory.mktemp("source")
    data = tiny_prepared(TinyEncoder(), "conversation", sizes=(8, 4, 4))
    cfg = ExperimentConfig(name="src", model={"name": "no_knowledge", "hidden": 16, "heads": 2},
                           train=TrainConfig(epochs=1, batch_size=4, progress=False), output_dir=str(tmp / "src"))
    fit(cfg, data=data)
    return data, tmp / "src" / "model"


def new_model(spaces) -> NoKnowledge:
    torch.manual_seed(123)
    return NoKnowledge(NoKnowledgeConfig(input_dim=16, hidden=16, heads=2), spaces)


def test_mapped_rows_equal_the_source_rows_and_new_classes_start_fresh(source):
    data, folder = source
    old, _ = load_model(folder)
    model = new_model({"emotion": MINE})
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    info = init_weights(model, folder, data.pipeline, {"emotion": {"happy": "joy", "sad": "sadness"}})
    assert info["rows"] == {"emotion": {"happy": "joy", "neutral": "neutral", "sad": "sadness"}}
    assert info["fresh"] == {"emotion": ["bored"]}
    meld = label_space("meld", "emotion")
    w_old, b_old = old.heads["emotion"].weight, old.heads["emotion"].bias
    w, b = model.heads["emotion"].weight, model.heads["emotion"].bias
    for new, src in (("happy", "joy"), ("neutral", "neutral"), ("sad", "sadness")):
        i, j = MINE.index(new), meld.index(src)
        assert torch.equal(w[i], w_old[j]) and torch.equal(b[i], b_old[j]), new
    k = MINE.index("bored")                                          # unmapped: its own fresh initialisation,
    assert torch.equal(w[k], fresh["heads.emotion.weight"][k])         # unlike every row of the source
    assert all(not torch.equal(w[k], w_old[j]) for j in range(len(meld)))
    for name, value in old.state_dict().items():                       # everything else comes whole
        if not name.startswith("heads."):
            assert torch.equal(model.state_dict()[name], value), name


def test_rows_follow_names_not_positions(source):
    data, folder = source
    old, _ = load_model(folder)
    meld = label_space("meld", "emotion")
    shuffled = LabelSpace("shuffled/emotion", meld.labels[::-1], neutral="neutral")  # 7 classes, other order
    model = new_model({"emotion": shuffled})
    info = init_weights(model, folder, data.pipeline)
    assert info["fresh"] == {"emotion": []}
    for i, lab in enumerate(shuffled.labels):
        assert torch.equal(model.heads["emotion"].weight[i], old.heads["emotion"].weight[meld.index(lab)])
    # an explicit null gives a class a fresh row even where the names match
    model = new_model({"emotion": shuffled})
    info = init_weights(model, folder, data.pipeline, {"emotion": {"joy": None, "fear": "joy"}})
    assert info["fresh"] == {"emotion": ["joy"]} and info["rows"]["emotion"]["fear"] == "joy"


def test_the_same_label_set_loads_whole_as_before(source):
    data, folder = source
    model = new_model(data.label_spaces)
    info = init_weights(model, folder, data.pipeline)
    assert "heads.emotion.weight" in info["loaded"] and info["rows"] == {}


def test_bad_label_maps_are_refused(source):
    data, folder = source
    with pytest.raises(KgemoError, match="'joyful' is not a class of the new label set"):
        init_weights(new_model({"emotion": MINE}), folder, data.pipeline, {"emotion": {"joyful": "joy"}})
    with pytest.raises(KgemoError, match=r"label_map.emotion.happy: 'glee' is not a class of the model started"):
        init_weights(new_model({"emotion": MINE}), folder, data.pipeline, {"emotion": {"happy": "glee"}})
    with pytest.raises(KgemoError, match="task 'act' is not one of this model's tasks"):
        init_weights(new_model({"emotion": MINE}), folder, data.pipeline, {"act": {"x": "y"}})


def test_class_rows_with_aliases():
    ekman = label_space("ekman7", "emotion")
    # "happy" and "sad" are aliases of joy and sadness in the old space: they keep those rows without a map
    rows = class_rows(ekman, MINE)
    assert rows == {0: ekman.index("joy"), 1: ekman.index("neutral"), 3: ekman.index("sadness")}


def test_init_from_the_embedded_default_annotator():
    """A KET with the default annotator's sizes and EmoryNLP's label set starts from the shipped weights."""
    default, _ = _default()
    emory = label_space("emorynlp", "emotion")
    model = KET(dataclasses.replace(default.config), {"emotion": emory})
    mapping = {"Neutral": "neutral", "Joyful": "joy", "Scared": "fear", "Mad": "anger", "Sad": "sadness"}
    info = init_weights(model, "default", None, {"emotion": mapping})
    assert info["fresh"] == {"emotion": ["Peaceful", "Powerful"]} and not info["kept"]
    ekman = default.label_spaces["emotion"]
    for new, old in mapping.items():
        assert torch.equal(model.heads["emotion"].weight[emory.index(new)],
                           default.heads["emotion"].weight[ekman.index(old)])
    for name, value in default.state_dict().items():
        if not name.startswith("heads."):
            assert torch.equal(model.state_dict()[name], value), name

    class OtherEncoder:
        id = "tiny-hash-16"

    class Pipe:
        encoder = OtherEncoder()

    with pytest.raises(KgemoError, match="made with encoder sentence:.*this run encodes with tiny-hash-16"):
        init_weights(KET(dataclasses.replace(default.config), {"emotion": emory}), "default", Pipe())


def test_the_example_config_starts_from_the_embedded_annotator():
    """configs/example_own_data.yaml (docs/your-data.md) is the shipped default's model, graph and encoder
    (data.encoder: default-annotator), so init_from: default carries every weight but the output rows over."""
    from kgemo.encoders import SentenceEncoder

    cfg = load_config(ROOT / "configs" / "example_own_data.yaml")
    default, spec = _default()
    assert cfg.train.init_from == "default"
    assert SentenceEncoder(cfg.data.encoder).id == spec["encoder_id"]
    assert dataclasses.replace(cfg.model, input_dim=None, concept_dim=None) == dataclasses.replace(
        default.config, input_dim=None, concept_dim=None)
    assert dataclasses.asdict(cfg.graph) == spec["builder"]["params"]


def _default():
    from kgemo.annotate import DEFAULT_MODEL_DIR

    return load_model(DEFAULT_MODEL_DIR)


def test_fit_starts_a_new_label_set_from_a_saved_model(source, tmp_path):
    """lr 0: the saved model's rows are exactly those it started from (mapped) and the fresh one."""
    data, folder = source
    rename = {"joy": "happy", "sadness": "sad", "neutral": "neutral"}
    graphs, convs = {}, {}
    for split, cs in data.conversations.items():
        convs[split] = [dataclasses.replace(c, utterances=[dataclasses.replace(
            u, labels={"emotion": rename[u.labels["emotion"]]}) for u in c]) for c in cs]
        graphs[split] = data.pipeline.graphs(convs[split], {"emotion": MINE})
    mine = PreparedData(data.pipeline, {"emotion": MINE}, {"emotion": "weighted_f1"}, graphs, convs)
    cfg = ExperimentConfig(name="mine", model={"name": "no_knowledge", "hidden": 16, "heads": 2},
                           train=TrainConfig(epochs=1, batch_size=4, progress=False, lr=0.0, warmup_epochs=0,
                                             init_from=str(folder.parent), label_map={"happy": "joy", "sad": "sadness"}),
                           output_dir=str(tmp_path / "mine"))
    fit(cfg, data=mine)
    old, _ = load_model(folder)
    new, _ = load_model(tmp_path / "mine" / "model")
    meld = label_space("meld", "emotion")
    assert new.label_spaces["emotion"] == MINE
    for lab, src in (("happy", "joy"), ("neutral", "neutral"), ("sad", "sadness")):
        assert torch.equal(new.heads["emotion"].weight[MINE.index(lab)], old.heads["emotion"].weight[meld.index(src)])
    assert all(not torch.equal(new.heads["emotion"].weight[MINE.index("bored")], old.heads["emotion"].weight[j])
               for j in range(len(meld)))


def test_config_label_map(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data: {datasets: [meld], tasks: [emotion]}\nmodel: {name: no_knowledge}\n"
                    "train: {init_from: default, label_map: {joyful: joy}}\n")
    assert load_config(path).train.label_map == {"emotion": {"joyful": "joy"}}   # one task: the flat form
    assert load_config(path).to_dict()["train"]["label_map"] == {"emotion": {"joyful": "joy"}}
    with pytest.raises(KgemoError, match="label_map says which old class .* needs train.init_from"):
        load_config(path, ["train.init_from=null"])
    with pytest.raises(KgemoError, match="with several tasks"):
        load_config(path, ["data.tasks=[emotion, sentiment]"])
    with pytest.raises(KgemoError, match="names task 'act', which is not in data.tasks"):
        load_config(path, ["train.label_map={act: {x: y}}"])
    # unused, it is left out of the resolved config: the checksum every results row records does not move
    assert "label_map" not in load_config(ROOT / "configs" / "ket_meld.yaml").to_dict()["train"]
