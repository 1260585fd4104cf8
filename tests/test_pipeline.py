"""The input pipeline and the typed settings around it: specs old and new, widths from the pipeline, refusals."""
from __future__ import annotations

import dataclasses
import warnings

import pytest
import yaml
from fake_kb import FakeKB

from kgemo.annotate import Annotator
from kgemo.annotate.annotator import DEFAULT_MODEL_DIR
from kgemo.data import label_space
from kgemo.errors import KgemoError
from kgemo.graphs import ConceptGraphSettings, get_builder
from kgemo.knowledge import ConceptNetSettings
from kgemo.models import KET, KETConfig, NoKnowledge, NoKnowledgeConfig
from kgemo.pipeline import InputPipeline, PipelineSpec
from kgemo.storage import read_json
from kgemo.training import ExperimentConfig, load_config

SPACES = {"emotion": label_space("meld", "emotion")}

OLD_SPEC = {  # as models saved before settings were typed record it
    "encoder": "default", "encoder_id": "sentence:x@1:max128", "encoder_dim": 384,
    "builder": {"name": "concept", "version": "3", "params": {"window": 8, "past_only": False, "k": 8,
                                                              "max_tokens": 32}},
    "knowledge": {"conceptnet": "default"}, "knowledge_checksums": {"conceptnet": "abc"},
    "data": {"datasets": ["meld"], "tasks": ["emotion"], "label_space": None, "metrics": {"emotion": "weighted_f1"}},
}


def test_old_spec_reads_typed_and_round_trips_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a saved model cannot be edited: no deprecation warning for it
        spec = PipelineSpec.from_dict(OLD_SPEC)
    assert spec.graph == ConceptGraphSettings(window=8, past_only=False, concepts_per_token=8, max_tokens=32)
    assert spec.knowledge == {"conceptnet": ConceptNetSettings(path="default")}
    again = PipelineSpec.from_dict(spec.to_dict())
    assert again == spec and again.to_dict()["builder"]["params"]["concepts_per_token"] == 8


def test_the_shipped_default_model_spec_loads():
    spec = PipelineSpec.from_dict(read_json(DEFAULT_MODEL_DIR / "config.json")["pipeline"])
    assert spec.builder == "concept" and spec.graph.concepts_per_token == 8
    assert spec.knowledge["conceptnet"].path == "default" and spec.encoder_dim == 384


def test_spec_refuses_unknown_builder_options_by_name():
    bad = {**OLD_SPEC, "builder": {"name": "concept", "params": {"concepts_per_tokens": 3}}}
    with pytest.raises(KgemoError, match="model.json: unknown builder params option 'concepts_per_tokens'"):
        PipelineSpec.from_dict(bad, source="model.json")
    with pytest.raises(KgemoError, match="no input pipeline recorded"):
        PipelineSpec.from_dict({"encoder": "default"})


def _ket_pipeline(encoder_class, dim=16):
    enc = encoder_class(dim)
    return InputPipeline(get_builder("concept", concepts_per_token=2), enc, {"conceptnet": FakeKB()},
                         {"conceptnet": "fake"}, "tiny")


def test_widths_come_from_the_pipeline_and_a_model_refuses_other_widths(tiny_encoder):
    pipe = _ket_pipeline(type(tiny_encoder), 16)
    config = pipe.fill_widths(KETConfig(hidden=8, heads=2))
    assert (config.input_dim, config.concept_dim) == (16, 16)
    model = KET(config, SPACES)
    pipe.check_model(model)                      # same widths: fine
    other = _ket_pipeline(type(tiny_encoder), 32)
    with pytest.raises(KgemoError, match="input_dim=16, but the input pipeline gives 32"):
        other.check_model(model)
    with pytest.raises(KgemoError, match="input_dim=16, but the input pipeline gives 32"):
        Annotator(model, other, events=None, device="cpu")
    with pytest.raises(KgemoError, match=r"needs \['input_dim', 'concept_dim'\] from the input pipeline"):
        KET(KETConfig(hidden=8, heads=2), SPACES)


def test_from_spec_refuses_an_encoder_of_another_width(tiny_encoder):
    TinyEncoder = type(tiny_encoder)
    spec = dataclasses.replace(_ket_pipeline(TinyEncoder, 16).spec(), encoder_dim=384, knowledge={})
    spec = dataclasses.replace(spec, builder="conversation", graph=None)
    with pytest.raises(KgemoError, match="trained on 384-d features of 'tiny', but encoder 'tiny' gives 16-d"):
        InputPipeline.from_spec(spec, encoder=TinyEncoder(16))
    pipe = InputPipeline.from_spec(dataclasses.replace(spec, encoder_dim=16), encoder=TinyEncoder(16))
    pipe.check_model(NoKnowledge(NoKnowledgeConfig(input_dim=16, hidden=8, heads=2), SPACES))


def test_config_refuses_widths_unknown_keys_and_missing_knowledge(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("model: {name: ket, input_dim: 384}\nknowledge: {conceptnet: default}\n")
    with pytest.raises(KgemoError, match=r"exp.yaml: model option\(s\) \['input_dim'\] are set from the input"):
        load_config(path)
    path.write_text("model: {name: ket}\ngraph: {windw: 3}\nknowledge: {conceptnet: default}\n")
    with pytest.raises(KgemoError, match="exp.yaml: unknown graph option 'windw'"):
        load_config(path)
    path.write_text("model: {name: ket}\n")
    with pytest.raises(KgemoError, match=r"exp.yaml: model 'ket' builds 'concept' graphs, which need knowledge "
                                         r"\['conceptnet'\]"):
        load_config(path)
    path.write_text("model: {name: ket}\nknowledge: {conceptnet: {paht: x}}\n")
    with pytest.raises(KgemoError, match="exp.yaml: unknown knowledge.conceptnet option 'paht'"):
        load_config(path)
    path.write_text("model: {name: no_knowledge}\ndata: {datasets: [meld], tasks: [act]}\n")
    with pytest.raises(KgemoError, match="exp.yaml: dataset 'meld' has no \\['act'\\] labels"):
        load_config(path)


def test_old_option_name_in_a_config_still_loads_with_a_warning(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("model: {name: ket}\ngraph: {k: 5}\nknowledge: {conceptnet: default}\n")
    with pytest.warns(DeprecationWarning, match="old.yaml: graph option 'k' is now called 'concepts_per_token'"):
        cfg = load_config(path)
    assert cfg.graph.concepts_per_token == 5
    path.write_text("model: {name: ket}\ngraph: {k: 5, concepts_per_token: 6}\nknowledge: {conceptnet: default}\n")
    with pytest.raises(KgemoError, match="'k' and 'concepts_per_token' are the same option"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            load_config(path)


def test_config_round_trips_through_yaml(tmp_path):
    cfg = ExperimentConfig(name="x", model={"name": "ckenet", "hidden": 64}, graph={"concepts_per_token": 4},
                           knowledge={"conceptnet": "default"}, train={"epochs": 2})
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    again = load_config(path)
    assert again.to_dict() == cfg.to_dict()
    assert again.pipeline_spec().to_dict() == cfg.pipeline_spec().to_dict()


def test_config_file_errors_name_the_file(tmp_path):
    with pytest.raises(KgemoError, match="is a folder, not a YAML config file"):
        load_config(tmp_path)
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(KgemoError, match="latin1.yaml: not UTF-8 text"):
        load_config(bad)


def test_a_config_extends_another_key_by_key(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "name: base\nseed: 3\ndata: {datasets: [meld], tasks: [emotion]}\n"
        "model: {name: ket, hidden: 64, dropout: 0.2}\nknowledge: {conceptnet: default}\n"
        "train: {epochs: 4, lr: 1.0e-3}\ntags: {context: past}\n")
    (tmp_path / "mid.yaml").write_text("extends: base.yaml\nmodel: {hidden: 128}\ntrain: {epochs: 2}\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "child.yaml").write_text("extends: ../mid.yaml\ndata: {datasets: [meld, dailydialog], "
                                    "label_space: ekman7}\n")
    child = load_config(sub / "child.yaml", ["train.lr=5e-4"])
    assert child.name == "child"                                  # never the base's name
    assert child.seed == 3 and child.model.name == "ket"          # inherited
    assert child.model.hidden == 128 and child.model.dropout == 0.2   # merged key by key through two levels
    assert child.data.datasets == ["meld", "dailydialog"]         # a list replaced whole
    assert child.data.tasks == ["emotion"] and child.train.epochs == 2 and child.train.lr == 5e-4
    # The same options written out in one file resolve to the same config (what provenance compares).
    flat = tmp_path / "child.yaml"
    flat.write_text(yaml.safe_dump(child.to_dict()))
    assert load_config(flat).to_dict() == child.to_dict()


def test_extends_refuses_cycles_missing_files_and_non_paths(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(KgemoError, match=r"extends makes a cycle \(.*a\.yaml -> .*b\.yaml -> .*a\.yaml\)"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(KgemoError, match="c.yaml: extends 'nowhere.yaml', but .* is not a file"):
        load_config(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("extends: [a.yaml, b.yaml]\n")
    with pytest.raises(KgemoError, match="d.yaml: extends must name one config file"):
        load_config(tmp_path / "d.yaml")


def test_atomic_write_gives_the_mode_an_ordinary_write_would(tmp_path):
    import os

    from kgemo.storage import atomic_write

    umask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "f.txt", "w") as fh:
            fh.write("x")
        assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(umask)


def test_an_encoder_inside_the_model_folder_resolves_against_it(tmp_path):
    spec = PipelineSpec.from_dict({**OLD_SPEC, "encoder": "./minilm-lora"}, base_dir=tmp_path / "model")
    assert spec.encoder == str(tmp_path / "model" / "minilm-lora")
    assert PipelineSpec.from_dict({**OLD_SPEC, "encoder": "./minilm-lora"}).encoder == "./minilm-lora"
    assert PipelineSpec.from_dict(OLD_SPEC, base_dir=tmp_path).encoder == "default"
