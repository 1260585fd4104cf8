"""Encoders by architecture, on tiny random models of each family (tests/tiny_families.py): LoRA targets, the
plain-torch fast path against the transformers / sentence-transformers reference, token features, and each family
through fine-tuning (LoRA and full); RoBERTa, DeBERTa-v2 and MPNet on to a trained graph model and the annotator."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
from tiny_families import FAMILIES, save_tiny_family, sentence_transformers_folder

from kgemo.data import Conversation, Utterance
from kgemo.encoders import FinetunedEncoder, SentenceEncoder, TokenEncoder
from kgemo.encoders.architectures import LORA_TARGETS, describe, fast_path, lora_target_modules
from kgemo.encoders.bert_sentence import BertSentenceModel, can_load
from kgemo.errors import KgemoError

TEXTS = ["i love it!", "what a bad day.", "i can't believe that", "so very very happy " * 20, "?", "Ann: okay"]
pytestmark = pytest.mark.filterwarnings("ignore::kgemo.encoders.TruncationWarning")

FAST = ("bert", "roberta", "xlm-roberta", "electra")          # the plain-torch BERT computes these exactly
REFERENCE_ONLY = ("mpnet", "deberta-v2")                     # transformers computes these


@pytest.fixture(scope="module")
def family_dir(tmp_path_factory):
    """``family_dir(family, **options)``: a tiny random model of the family, saved once per module."""
    made = {}

    def make(family, **options):
        key = (family, tuple(sorted(options.items())))
        if key not in made:
            name = family + "".join(f"-{k}{v}" for k, v in sorted(options.items()))
            made[key] = save_tiny_family(family, tmp_path_factory.mktemp("families") / name, seed=3, **options)
        return made[key]
    return make


# -- LoRA targets -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_lora_targets_are_each_familys_query_and_value_projections(family, family_dir):
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(family_dir(family)))
    targets = lora_target_modules(model)
    assert targets == list(LORA_TARGETS[family])
    assert targets == {"bert": ["query", "value"], "roberta": ["query", "value"], "xlm-roberta": ["query", "value"],
                       "electra": ["query", "value"], "mpnet": ["q", "v"],
                       "deberta-v2": ["query_proj", "value_proj"]}[family]
    linear = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(targets) <= linear
    assert lora_target_modules(model, ["dense"]) == ["dense"]             # the config overrides the table
    with pytest.raises(KgemoError, match=r"lora.target_modules \['nope'\] are not modules of the base model"):
        lora_target_modules(model, ["nope"])


def test_lora_targets_of_an_unknown_family_are_found_by_name():
    from torch import nn

    class Attention(nn.Module):
        def __init__(self, names):
            super().__init__()
            for n in names:
                setattr(self, n, nn.Linear(4, 4))

    class Model(nn.Module):
        def __init__(self, names):
            super().__init__()
            self.config = type("Config", (), {"model_type": "somebert"})()
            self.layer = nn.ModuleList([Attention(names), Attention(names)])

    assert lora_target_modules(Model(["q_proj", "k_proj", "v_proj", "out_proj"])) == ["q_proj", "v_proj"]
    assert lora_target_modules(Model(["Wqkv", "Wo"])) == ["Wqkv"]                     # a fused projection
    with pytest.raises(KgemoError, match=r"model type 'somebert': no attention projection found.*\['a', 'b'\]"):
        lora_target_modules(Model(["a", "b"]))


def test_fast_path_covers_bert_math_families_only():
    base = {"hidden_size": 32, "hidden_act": "gelu", "pad_token_id": 1}
    assert fast_path({**base, "model_type": "bert", "pad_token_id": 0}).position_offset == 0
    assert fast_path({**base, "model_type": "roberta"}).position_offset == 2                 # padding_idx + 1
    assert not fast_path({**base, "model_type": "roberta"}).segment_ids
    assert fast_path({**base, "model_type": "electra", "embedding_size": 32}) is not None
    assert fast_path({**base, "model_type": "electra", "embedding_size": 16}) is None       # embedding projection
    assert fast_path({**base, "model_type": "bert", "hidden_act": "gelu_new"}) is None
    assert fast_path({**base, "model_type": "bert", "position_embedding_type": "relative_key"}) is None
    for kind in ("mpnet", "deberta-v2", "deberta", "distilbert", "albert"):
        assert fast_path({**base, "model_type": kind}) is None, kind
    assert describe({**base, "model_type": "mpnet", "num_hidden_layers": 2})["plain_torch"] is False


# -- sentence features: the fast path and the reference path ------------------------------------------------------
@pytest.mark.parametrize("family,options", [("bert", {}), ("roberta", {}), ("roberta", {"prefix": True}),
                                            ("xlm-roberta", {}), ("electra", {})])
def test_fast_path_gives_the_reference_features(family, options, family_dir, tmp_path):
    import shutil

    from sentence_transformers import SentenceTransformer

    folder = tmp_path / family
    shutil.copytree(family_dir(family, **options), folder)
    sentence_transformers_folder(folder)
    assert can_load(folder)
    ours = BertSentenceModel(folder)
    theirs = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    assert ours.max_seq_length == theirs.max_seq_length == 16  # the long text is cut at 16 tokens by both
    np.testing.assert_allclose(ours.encode(TEXTS, batch_size=2), theirs.encode(TEXTS, batch_size=2), atol=1e-5)
    assert ours.tokenizer(TEXTS)["input_ids"] == theirs.tokenizer(TEXTS)["input_ids"]

    enc = SentenceEncoder(folder, device="cpu", max_length=16)          # what every config line gets
    assert type(enc.model) is BertSentenceModel
    np.testing.assert_allclose(enc.encode(TEXTS), theirs.encode(TEXTS), atol=1e-5)


@pytest.mark.parametrize("family,options", [("mpnet", {}), ("deberta-v2", {}), ("electra", {"embedding_size": 16})])
def test_other_families_use_the_reference_path(family, options, family_dir, tmp_path):
    import shutil

    from sentence_transformers import SentenceTransformer

    folder = tmp_path / family
    shutil.copytree(family_dir(family, **options), folder)
    sentence_transformers_folder(folder)
    assert not can_load(folder)
    with pytest.raises(ValueError, match="not computed by the plain-torch BERT"):
        BertSentenceModel(folder)
    enc = SentenceEncoder(folder, device="cpu", max_length=16)
    features = enc.encode(TEXTS)
    assert isinstance(enc.model, SentenceTransformer) and features.shape == (len(TEXTS), 32)
    theirs = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    np.testing.assert_allclose(features, theirs.encode(TEXTS), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_plain_model_folder_of_any_family_gives_sentence_features(family, family_dir):
    enc = SentenceEncoder(family_dir(family), device="cpu")
    features = enc.encode(TEXTS)
    assert features.shape == (len(TEXTS), 32) and features.dtype == np.float32 and np.isfinite(features).all()
    assert enc.id.startswith(f"sentence:{family}@")


# -- token features (KET's word states) ------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_word_states_are_the_sub_word_means_of_running_text(family, family_dir):
    enc = TokenEncoder(family_dir(family), device="cpu")
    words = ["so", "sad", "i", "love", "it"]
    # A byte-level BPE (RoBERTa) reads a word list with a space before each word, as running text after a space.
    text = (" " if family == "roberta" else "") + " ".join(words)
    states = enc.encode([text])[0]
    assert states.states.shape == (len(states.tokens), 32) and states.tokens[0] in ("[CLS]", "<s>")
    ids = np.array([-1 if w is None else w for w in states.word_ids])
    expected = np.stack([states.states[ids == j].mean(0) for j in range(len(words))])
    got = enc.encode_words([words, ["okay"]])
    assert [g.shape for g in got] == [(5, 32), (1, 32)]
    np.testing.assert_allclose(got[0], expected, atol=1e-5)
    assert (enc.word_tokenizer is enc.tokenizer) == (family != "roberta")


# -- fine-tuning: every family, LoRA and full ------------------------------------------------------------------------
POS = ["i love it", "so happy", "what a good day", "very very happy", "i love you"]
NEG = ["i hate it", "so sad", "what a bad day", "this is not good", "i hate that"]


def made_up(n: int, seed: int) -> list[Conversation]:
    rng = random.Random(seed)
    convs = []
    for i in range(n):
        utts = []
        for _ in range(4):
            label = rng.choice(["joy", "sadness"])
            utts.append(Utterance(rng.choice(POS if label == "joy" else NEG), rng.choice(["ann", "bob"]),
                                  {"emotion": label}))
        convs.append(Conversation(f"{seed}-{i}", utts, dataset="tiny", split=("train", "dev", "test")[seed]))
    return convs


DATA = {"train": made_up(8, 0), "dev": made_up(3, 1), "test": made_up(3, 2)}


def finetune_tiny(tmp_path, base, mode: str, name: str, steps: int = 2):
    from kgemo.training.finetune import FinetuneConfig, finetune

    config = FinetuneConfig.from_dict({
        "name": name, "encoder": {"base": str(base), "mode": mode, "max_length": 24},
        "train": {"epochs": 1, "max_steps": steps, "batch_size": 8, "lr": 1e-3, "progress": False,
                  "val_check_interval": 1, "accelerator": "cpu"},
        "output_dir": str(tmp_path / "encoders" / "{name}"), "run_dir": str(tmp_path / "runs" / "{name}")},
        source="test.yaml")
    return finetune(config, DATA, resume=False)


def check_folder(run, family: str, mode: str):
    """The folder records its architecture and loads to the features the trained module computes."""
    folder = run.encoder_dir
    meta = json.loads((folder / "encoder.json").read_text())
    assert meta["architecture"]["model_type"] == family and meta["architecture"]["hidden_size"] == 32
    assert meta["architecture"]["plain_torch"] == (family in FAST)
    assert meta["training"]["lora"]["target_modules"] is None          # null in the config: chosen by architecture
    if mode == "lora":
        assert meta["lora"]["target_modules"] == sorted(LORA_TARGETS[family])
        assert (folder / "adapter" / "adapter_model.safetensors").is_file()
    else:
        assert meta["lora"] is None and (folder / "model" / "model.safetensors").is_file()
    enc = SentenceEncoder(folder, device="cpu")
    assert isinstance(enc, FinetunedEncoder) and enc.architecture == meta["architecture"]
    loaded = enc.encode_conversations(DATA["test"])
    for a, b in zip(loaded, run.module.encode_conversations(DATA["test"])):
        assert a.shape == (4, 32)
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert f"a {family} model" in (folder / "README.md").read_text()
    return enc, loaded


@pytest.mark.slow
@pytest.mark.parametrize("family", ["xlm-roberta", "electra"])
@pytest.mark.parametrize("mode", ["lora", "full"])
def test_lora_and_full_finetuning_of_more_families(family, mode, family_dir, tmp_path):
    run = finetune_tiny(tmp_path, family_dir(family), mode, f"{family}-{mode}", steps=1)
    enc, _ = check_folder(run, family, mode)
    assert type(enc.model).__name__ == "_PooledBert"      # both are BERT math: the plain-torch path


def reference_features(folder, conversations, monkeypatch):
    """Features of a fine-tuned folder through transformers / peft (the plain-torch path switched off)."""
    from kgemo.encoders import finetuned_encoder

    with monkeypatch.context() as m:
        m.setattr(finetuned_encoder, "_plain_torch_bert", lambda *a, **k: None)
        enc = SentenceEncoder(folder, device="cpu")
        features = enc.encode_conversations(conversations)
        assert type(enc.model).__name__ == "PooledTransformer"
    return features


@pytest.mark.slow
@pytest.mark.parametrize("family", ["roberta", "deberta-v2", "mpnet"])
def test_features_finetune_train_annotate(family, family_dir, tmp_path, monkeypatch):
    """A tiny random model of the family through the whole chain: features → fine-tune (LoRA and full) → a graph
    model trained on the fine-tuned encoder's features → the annotator, which rebuilds that encoder from the
    saved spec."""
    import torch

    from kgemo.annotate import Annotator
    from kgemo.data import label_space
    from kgemo.graphs import get_builder
    from kgemo.pipeline import InputPipeline
    from kgemo.training import ExperimentConfig, PreparedData, TrainConfig, fit

    base = family_dir(family)
    plain = SentenceEncoder(base, device="cpu").encode_conversations(DATA["dev"])   # features of the base
    assert [f.shape for f in plain] == [(4, 32)] * 3

    full = finetune_tiny(tmp_path, base, "full", f"{family}-full", steps=1)
    check_folder(full, family, "full")
    lora = finetune_tiny(tmp_path, base, "lora", f"{family}-lora", steps=2)
    enc, loaded = check_folder(lora, family, "lora")
    # The plain-torch path is taken exactly where it computes the family, and equals the reference there.
    assert (type(enc.model).__name__ == "_PooledBert") == (family == "roberta")
    for a, b in zip(loaded, reference_features(lora.encoder_dir, DATA["test"], monkeypatch)):
        np.testing.assert_allclose(a, b, atol=1e-5)

    # A graph model on the fine-tuned encoder, one epoch.
    spaces = {"emotion": label_space("meld", "emotion")}
    pipe = InputPipeline(get_builder("conversation", window=2), enc, {}, {}, str(lora.encoder_dir))
    graphs = {split: pipe.graphs(convs, spaces) for split, convs in DATA.items()}
    data = PreparedData(pipe, spaces, {"emotion": "weighted_f1"}, graphs, dict(DATA))
    config = ExperimentConfig(name=f"{family}-graph", model={"name": "no_knowledge", "hidden": 16, "heads": 2},
                              train=TrainConfig(epochs=1, batch_size=4, patience=10, progress=False,
                                                accelerator="cpu"),
                              output_dir=str(tmp_path / "graph"))
    torch.manual_seed(0)
    metrics = fit(config, data=data)
    assert metrics["complete"] and metrics["encoder_id"] == enc.id and "emotion" in metrics["test"]

    annotator = Annotator.from_pretrained(tmp_path / "graph" / "model", device="cpu")
    assert isinstance(annotator.pipeline.encoder, FinetunedEncoder)
    assert annotator.pipeline.encoder.id == enc.id
    result = annotator.annotate([("ann", "i love it"), ("bob", "so sad"), ("ann", "what a good day")])
    assert len(result) == 3 and all(u.emotion in spaces["emotion"].labels for u in result)
