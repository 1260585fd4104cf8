"""The fine-tuning stage and the encoder folder it writes, on a tiny random BERT and a made-up dataset.

The inputs (speaker + past turns, truncation), the folder round trip (identical features after merging the
adapter), the ids that key the feature cache, the refusals (bad base, mismatched base, bad config) and resuming.
"""
from __future__ import annotations

import csv
import json
import random
import shutil

from pathlib import Path

import numpy as np
import pytest

from kgemo.data import Conversation, Utterance, as_conversation
from kgemo.encoders import FeatureCache, FinetunedEncoder, SentenceEncoder, texts_sha256
from kgemo.encoders.encoder_inputs import ContextFormat, InputTokenizer, conversation_inputs, inputs_sha256
from kgemo.errors import DataNotFoundError, KgemoError

ROOT = Path(__file__).resolve().parents[2]
POS = ["i love it", "so happy", "good day", "i love you", "very good", "what a good day"]
NEG = ["i hate it", "so sad", "bad day", "i hate that", "very bad", "this is not good"]


def made_up(n: int, seed: int) -> list[Conversation]:
    """Conversations whose emotion (joy / sadness) is readable from the words: a model can learn it fast."""
    rng = random.Random(seed)
    convs = []
    for i in range(n):
        utts = []
        for _ in range(5):
            label = rng.choice(["joy", "sadness"])
            utts.append(Utterance(rng.choice(POS if label == "joy" else NEG), rng.choice(["ann", "bob"]),
                                  {"emotion": label}))
        convs.append(Conversation(f"{seed}-{i}", utts))
    return convs


DATA = {"train": made_up(40, 0), "dev": made_up(8, 1), "test": made_up(8, 2)}


def tiny_config(tmp_path, base, name="tiny", **sections):
    from kgemo.training.finetune import FinetuneConfig

    raw = {"name": name, "seed": 0, "encoder": {"base": str(base), "max_length": 32},
           "train": {"epochs": 2, "batch_size": 8, "lr": 3e-3, "progress": False, "val_check_interval": 0.5,
                     "patience": 10},
           "output_dir": str(tmp_path / "encoders" / "{name}"), "run_dir": str(tmp_path / "runs" / "{name}")}
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    return FinetuneConfig.from_dict(raw, source="test.yaml")


# -- inputs ----------------------------------------------------------------------------------------------------
def test_context_is_past_only_n_turns_with_speakers():
    conv = as_conversation([("Ann", "Hi!"), ("Bob", "Hello."), ("Ann", "How are you?"), ("Bob", "Fine.")])
    assert conversation_inputs(conv, ContextFormat(past_turns=2)) == [
        "Ann: Hi!",
        ("Bob: Hello.", "Ann: Hi!"),
        ("Ann: How are you?", "Ann: Hi! Bob: Hello."),
        ("Bob: Fine.", "Bob: Hello. Ann: How are you?"),   # oldest first; never a later turn
    ]
    assert conversation_inputs(conv, ContextFormat(past_turns=0)) == ["Ann: Hi!", "Bob: Hello.", "Ann: How are you?",
                                                                      "Bob: Fine."]
    assert conversation_inputs(conv, ContextFormat(speaker_prefix=False, past_turns=1))[1] == ("Hello.", "Hi!")
    with pytest.raises(ValueError, match="past_turns"):
        ContextFormat(past_turns=-1)


def test_truncation_cuts_the_oldest_context_never_the_target(tiny_bert_dir):
    from transformers import AutoTokenizer

    tok = InputTokenizer(AutoTokenizer.from_pretrained(str(tiny_bert_dir)), max_length=10)
    vocab = {v: k for k, v in AutoTokenizer.from_pretrained(str(tiny_bert_dir)).get_vocab().items()}
    words = lambda ids: [vocab[i] for i in ids]  # noqa: E731

    (ids, types), = tok([("i love it", "so sad . very bad . not happy")])
    # [CLS] target [SEP] context [SEP] in 10 tokens: the target whole, the context's newest words kept.
    assert words(ids) == ["[CLS]", "i", "love", "it", "[SEP]", "bad", ".", "not", "happy", "[SEP]"]
    assert types == [0] * 5 + [1] * 5
    # Short enough: nothing is cut.
    (ids, _), = tok([("i love it", "so sad")])
    assert words(ids) == ["[CLS]", "i", "love", "it", "[SEP]", "so", "sad", "[SEP]"]
    # A target that leaves no room for context is encoded alone; one over the limit is cut (and counted).
    tok.targets_cut = 0
    (ids, types), = tok([("i love it so very very good day", "so sad")])
    assert words(ids)[:9] == ["[CLS]", "i", "love", "it", "so", "very", "very", "good", "day"] and set(types) == {0}
    (ids, _), = tok(["i love it so very very good day that is good"])
    assert len(ids) == 10 and words(ids)[-1] == "[SEP]" and tok.targets_cut == 1
    # Which turns are cut themselves (the annotator's warning): 8 words + [CLS] [SEP] fit in 10, 9 do not.
    assert tok.target_too_long(["i love it so very very good day", "i love it so very very good day that",
                                "i love it"]) == [False, True, False]
    batch = tok.pad(tok(["i love it", ("so sad", "i hate it")]))
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 8)
    assert batch["attention_mask"][0].tolist() == [1] * 5 + [0] * 3


def test_pairs_hash_apart_and_plain_texts_hash_as_before():
    texts = ["Okay.", "Yeah, right!"]
    assert inputs_sha256(texts) == texts_sha256(texts)  # plain-encoder cache files stay valid
    digests = {inputs_sha256(x) for x in ([("a", "b")], ["a", "b"], [("ab", "")], [("a", "b"), "c"],
                                          [("a", "bc")], ["ab"])}
    assert len(digests) == 6


def test_plain_encoder_reads_texts_only(tiny_bert_dir):
    enc = SentenceEncoder(tiny_bert_dir, device="cpu")
    assert type(enc) is SentenceEncoder
    conv = DATA["dev"][0]
    assert enc.conversation_inputs(conv) == conv.texts
    feats = enc.encode_conversations(DATA["dev"][:3])
    assert [f.shape for f in feats] == [(5, 32)] * 3
    np.testing.assert_allclose(feats[1], enc.encode(DATA["dev"][1].texts), atol=1e-6)


# -- the stage and its folder ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_tiny_bert):
    """One LoRA run of 2 epochs on the made-up data: (run, config, base folder, tmp folder)."""
    from kgemo.training.finetune import finetune

    tmp = tmp_path_factory.mktemp("finetune")
    base = make_tiny_bert(tmp / "base")
    config = tiny_config(tmp, base)
    return finetune(config, DATA, resume=False), config, base, tmp


@pytest.mark.slow
def test_loss_falls_over_two_epochs(trained):
    run, config, _, _ = trained
    rows = list(csv.DictReader(open(next((config.work_dir / "logs").glob("version_*/metrics.csv")))))
    epoch_loss = [float(r["train_loss_epoch"]) for r in rows if r.get("train_loss_epoch")]
    assert len(epoch_loss) == 2 and epoch_loss[1] < 0.8 * epoch_loss[0]
    assert run.metrics["complete"] and run.metrics["steps"] == 2 * 25
    assert set(run.metrics["dev"]) == set(run.metrics["test"]) == {"emotion"}


@pytest.mark.slow
def test_folder_describes_itself_and_loads_to_identical_features(trained):
    run, config, base, _ = trained
    folder = run.encoder_dir
    meta = json.loads((folder / "encoder.json").read_text())
    assert meta["format"] == "kgemo-encoder/1" and meta["mode"] == "lora" and meta["dim"] == 32
    assert meta["base"]["model"] == str(base) and len(meta["base"]["weights_sha256"]) == 64
    assert meta["input"] == {"context": {"speaker_prefix": True, "past_turns": 2}, "max_length": 32,
                             "segments": meta["input"]["segments"]}
    assert meta["lora"]["target_modules"] == ["query", "value"] and meta["training"]["seed"] == 0
    assert set(meta["scores"]) == {"dev", "test"} and "in-memory" in meta["data"]["files_sha256"]
    for name in ("adapter/adapter_model.safetensors", "adapter/adapter_config.json", "heads.safetensors",
                 "labels.json", "README.md", "tokenizer/tokenizer.json", "metrics.json"):
        assert (folder / name).is_file(), name
    assert not list(folder.parent.glob(".*tmp*"))  # the temporary build folder is gone

    enc = SentenceEncoder(folder)        # the entry point every experiment config uses
    assert isinstance(enc, FinetunedEncoder) and enc.dim == 32
    assert enc.conversation_inputs(DATA["test"][0]) == conversation_inputs(DATA["test"][0], ContextFormat())
    loaded = enc.encode_conversations(DATA["test"])
    in_memory = run.module.encode_conversations(DATA["test"])
    for a, b in zip(loaded, in_memory):
        assert a.shape == (5, 32) and a.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-5)   # merged adapter == base + adapter
    np.testing.assert_allclose(np.linalg.norm(loaded[0], axis=1), 1.0, atol=1e-5)
    assert not np.allclose(loaded[0], SentenceEncoder(base).encode_conversations(DATA["test"][:1])[0], atol=1e-3)
    assert enc.encode(["i love it"]).shape == (1, 32)  # plain strings still work (knowledge texts)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["model"] == "encoder_linear_head" and metrics["encoder"] == "tiny"
    assert metrics["context"] == "past2" and metrics["mode"] == "lora" and metrics["datasets"] == ["meld"]


@pytest.mark.slow
def test_cache_key_follows_the_adapter(trained, tmp_path):
    from safetensors.torch import load_file, save_file

    run, _, _, _ = trained
    enc = SentenceEncoder(run.encoder_dir)
    sha = json.loads((run.encoder_dir / "encoder.json").read_text())["weights"]["sha256"]
    assert f"@{sha[:12]}:" in enc.id and enc.id.endswith(":max32:past2")

    cache = FeatureCache(tmp_path / "features")
    first = cache.conversation_features(enc, DATA["dev"], key="made-up/dev")
    path = cache.path_for(enc.id, "made-up/dev")
    meta = json.loads(path.read_bytes()[8:8 + int.from_bytes(path.read_bytes()[:8], "little")])["__metadata__"]
    flat = [x for c in DATA["dev"] for x in enc.conversation_inputs(c)]
    assert meta["texts_sha256"] == inputs_sha256(flat) != texts_sha256([t for c in DATA["dev"] for t in c.texts])

    # Another adapter in a copy of the folder: a new id, so the cached features are not reused.
    other = tmp_path / "other"
    shutil.copytree(run.encoder_dir, other)
    adapter = other / "adapter" / "adapter_model.safetensors"
    tensors = {k: v + 0.5 for k, v in load_file(str(adapter)).items()}
    save_file(tensors, str(adapter), metadata={"format": "pt"})
    # Edited without updating encoder.json: refused, naming the file.
    with pytest.raises(KgemoError, match="adapter_model.safetensors.*changed after training"):
        SentenceEncoder(other).encode(["i love it"])
    meta = json.loads((other / "encoder.json").read_text())
    from kgemo.storage import sha256_file

    meta["weights"]["sha256"] = sha256_file(adapter)
    (other / "encoder.json").write_text(json.dumps(meta))
    changed = SentenceEncoder(other)
    assert changed.id.split("@")[1] != enc.id.split("@")[1]
    second = cache.conversation_features(changed, DATA["dev"], key="made-up/dev")
    assert cache.path_for(changed.id, "made-up/dev") != path
    assert not np.allclose(first[0], second[0], atol=1e-3)


@pytest.mark.slow
def test_adapter_on_another_base_is_refused(trained, tmp_path, make_tiny_bert):
    run, _, _, _ = trained
    folder = tmp_path / "moved"
    shutil.copytree(run.encoder_dir, folder)
    meta = json.loads((folder / "encoder.json").read_text())
    meta["base"]["model"] = meta["base"]["path"] = str(make_tiny_bert(tmp_path / "other-base", seed=7))
    (folder / "encoder.json").write_text(json.dumps(meta))
    enc = SentenceEncoder(folder)
    with pytest.raises(KgemoError, match=r"moved/encoder.json: the adapter was trained on base .* weights sha256"):
        enc.encode(["i love it"])


@pytest.mark.slow
def test_full_mode_saves_whole_weights(tmp_path, tiny_bert_dir):
    from kgemo.training.finetune import finetune

    config = tiny_config(tmp_path, tiny_bert_dir, name="full", encoder={"mode": "full", "head_input": "normalized"},
                         train={"epochs": 1, "lr": 1e-3})
    run = finetune(config, {"train": DATA["train"], "dev": DATA["dev"]})
    assert (run.encoder_dir / "model" / "model.safetensors").is_file()
    assert not (run.encoder_dir / "adapter").exists() and run.metrics["test"] is None
    enc = SentenceEncoder(run.encoder_dir)
    assert enc.meta["lora"] is None and enc.meta["mode"] == "full" and enc.meta["head_input"] == "normalized"
    assert "times sqrt(dim)" in enc.meta["heads"]["input"]
    for a, b in zip(enc.encode_conversations(DATA["dev"]), run.module.encode_conversations(DATA["dev"])):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.slow
def test_resume_after_a_kill_continues_with_the_same_batches(tmp_path, tiny_bert_dir):
    import hashlib

    import lightning as L

    from kgemo.training.finetune import finetune

    class Record(L.Callback):
        def __init__(self, kill_at=None):
            self.seen, self.kill_at = [], kill_at

        def on_train_batch_start(self, trainer, module, batch, i):
            self.seen.append(hashlib.sha1(batch["input_ids"].numpy().tobytes()).hexdigest())

        def on_train_batch_end(self, trainer, module, outputs, batch, i):
            if self.kill_at is not None and trainer.global_step == self.kill_at:
                raise RuntimeError("killed")

    whole = Record()
    finetune(tiny_config(tmp_path, tiny_bert_dir, name="whole"), DATA, callbacks=[whole])
    killed, resumed = Record(kill_at=30), Record()
    with pytest.raises(RuntimeError, match="killed"):
        finetune(tiny_config(tmp_path, tiny_bert_dir, name="cut"), DATA, callbacks=[killed])
    assert (tmp_path / "runs" / "cut" / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "encoders" / "cut").exists()
    run = finetune(tiny_config(tmp_path, tiny_bert_dir, name="cut"), DATA, callbacks=[resumed])
    # The last checkpoint was written at the dev evaluation after step 24 (mid-epoch 2 would be 37): the resumed run
    # trains exactly the batches the uninterrupted run trained after it.
    assert resumed.seen == whole.seen[24:] and run.metrics["steps"] == 50
    # A finished run is not trained again.
    again = finetune(tiny_config(tmp_path, tiny_bert_dir, name="cut"), DATA)
    assert again.module is None and again.metrics["steps"] == 50
    # force trains again from the first step, not from the finished run's last checkpoint.
    forced = Record()
    finetune(tiny_config(tmp_path, tiny_bert_dir, name="cut"), DATA, force=True, callbacks=[forced])
    assert forced.seen == whole.seen


# -- refusals -------------------------------------------------------------------------------------------------------
def test_a_base_that_is_not_an_encoder_is_refused_before_writing(tmp_path):
    from kgemo.training.finetune import finetune

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    config = tiny_config(tmp_path, empty)
    with pytest.raises(DataNotFoundError, match="not-a-model: not a Hugging Face encoder folder"):
        finetune(config, DATA)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        finetune(tiny_config(tmp_path, tmp_path / "missing"), DATA)
    decoder = tmp_path / "gpt"
    decoder.mkdir()
    (decoder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 1}))
    with pytest.raises(KgemoError, match="gpt/config.json: model type 'gpt2' is not a bidirectional encoder"):
        finetune(tiny_config(tmp_path, decoder), DATA)
    assert not (tmp_path / "encoders").exists() and not (tmp_path / "runs").exists()


def test_config_errors_name_the_file_and_key(tmp_path):
    from kgemo.training.finetune import load_finetune_config

    path = tmp_path / "finetune_bad.yaml"
    path.write_text("data: {dataset: meld, tasks: [act]}\n")
    with pytest.raises(KgemoError, match=r"finetune_bad.yaml: dataset 'meld' has no task 'act'"):
        load_finetune_config(path)
    path.write_text("data: {dataset: meld}\ntrain: {learning_rate: 0.1}\n")
    with pytest.raises(KgemoError, match=r"finetune_bad.yaml: unknown train option 'learning_rate'; known: \["):
        load_finetune_config(path)
    path.write_text("encoder: {mode: half}\n")
    with pytest.raises(KgemoError, match="finetune_bad.yaml: encoder.mode='half'"):
        load_finetune_config(path)
    path.write_text("train: {lr: 4e-5}\n")  # YAML 1.1 reads this as a string; the config wants a number
    config = load_finetune_config(path, ["seed=3"])
    assert config.train.lr == 4e-5 and config.seed == 3 and config.name == "finetune_bad"
    assert config.origin["overrides"] == ["seed=3"] and config.origin["file"].endswith("finetune_bad.yaml")


# The same option errors as an experiment config (tests/training/test_trainer.py), from the same loader.
@pytest.mark.parametrize("overrides, message", [
    (["train.lr=fast"], r"finetune_bad.yaml: train.lr='fast': expected a number \(float\)"),
    (["train.epochs=2.5"], r"finetune_bad.yaml: train.epochs=2.5: expected a number \(int\)"),
    (["lora.rank=true"], r"finetune_bad.yaml: lora.rank=True: expected a number \(int\)"),
    (["encoder.max_lenght=64"], r"finetune_bad.yaml: unknown encoder option 'max_lenght'; known: \["),
    (["train=[1, 2]"], r"finetune_bad.yaml: train must be a mapping of options, got list"),
    (["train.monitor=act"], r"finetune_bad.yaml: train.monitor='act'; expected first, mean or one of \['emotion'\]"),
    (["train.class_weights=sqrt"], r"finetune_bad.yaml: train.class_weights='sqrt'; expected one of"),
    (["encoder.past_turns=-1"], r"finetune_bad.yaml: encoder.past_turns must be an integer >= 0, got -1"),
    (["trian.lr=0.1"], r"finetune_bad.yaml: unknown top-level key\(s\) \['trian'\]"),
    (["train.lr"], r"override 'train.lr' is not key=value"),
    (["data.max_train_conversations=0"], r"finetune_bad.yaml: data.max_train_conversations=0; expected a whole"),
])
def test_option_errors_name_the_file_and_option(tmp_path, overrides, message):
    from kgemo.training.finetune import load_finetune_config

    path = tmp_path / "finetune_bad.yaml"
    path.write_text("data: {dataset: meld}\n")
    with pytest.raises(KgemoError, match=message) as info:
        load_finetune_config(path, overrides)
    assert "\n" not in str(info.value)


def test_the_file_itself_is_checked_like_an_experiment_config(tmp_path):
    from kgemo.training import load_config
    from kgemo.training.finetune import load_finetune_config

    folder = tmp_path / "a-folder.yaml"
    folder.mkdir()
    bad_bytes = tmp_path / "latin1.yaml"
    bad_bytes.write_bytes(b"name: caf\xe9\n")
    for path, message in ((tmp_path / "missing.yaml", "config file not found"), (folder, "is a folder"),
                          (bad_bytes, "not UTF-8 text"), (tmp_path / "list.yaml", "a config must be a mapping")):
        if path.name == "list.yaml":
            path.write_text("- 1\n")
        for load in (load_finetune_config, load_config):
            with pytest.raises(KgemoError, match=f"{path.name}: {message}"):
                load(path)


def test_numbers_as_given_stay_as_given():
    """The resolved config (and the checksum every results row records) keeps ints as ints: a step interval
    stays a step count, ``alpha: 16`` stays 16."""
    from kgemo.training.finetune import FinetuneConfig

    config = FinetuneConfig.from_dict({"lora": {"alpha": 16}, "train": {"val_check_interval": 4, "lr": "5e-4",
                                                                        "max_steps": "8"}})
    assert type(config.lora.alpha) is int and type(config.train.val_check_interval) is int
    assert config.train.lr == 5e-4 and config.train.max_steps == 8 and type(config.train.max_steps) is int


def test_shipped_configs_load():
    from kgemo.training.finetune import load_finetune_config

    for name, tasks in (("meld", ["emotion"]), ("emorynlp", ["emotion"]), ("dailydialog", ["emotion"]),
                        ("mastodon", ["act", "sentiment"])):
        config = load_finetune_config(f"configs/finetune_{name}.yaml")
        assert config.data.dataset == name and config.data.tasks == tasks


def test_cli_reports_a_bad_config_in_one_line(tmp_path, capsys):
    from kgemo.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text("nope: 1\n")
    assert main(["finetune", str(path)]) == 2
    assert "bad.yaml: unknown top-level key(s) ['nope']" in capsys.readouterr().err


# -- the real data --------------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.integration
def test_lora_steps_on_a_meld_subset(data_root, tmp_path):
    from kgemo.training.finetune import finetune, load_finetune_config

    config = load_finetune_config("configs/finetune_meld.yaml", [
        "data.max_conversations=3", "train.max_steps=2", "train.batch_size=8", "train.val_check_interval=1",
        "train.progress=false", f"data.root={data_root}", f"output_dir={tmp_path}/enc", f"run_dir={tmp_path}/run"])
    run = finetune(config)
    enc = SentenceEncoder(run.encoder_dir)
    assert isinstance(enc, FinetunedEncoder) and enc.meta["base"]["model"] == "default"
    from kgemo.data import load_dataset

    convs = load_dataset("meld", "test", root=data_root)[:2]
    feats = enc.encode_conversations(convs)
    assert [f.shape for f in feats] == [(len(c), 384) for c in convs]
    assert run.metrics["steps"] == 2 and set(enc.meta["data"]["files_sha256"]) >= {"train_sent_emo.csv"}
    # The packaged base with a plain LoRA loads in plain torch (no transformers / peft), with the same features
    # as peft's merged model.
    import subprocess
    import sys

    from kgemo.encoders import finetuned_encoder

    assert type(enc.model).__name__ == "_PooledBert"
    real, finetuned_encoder._plain_torch_bert = finetuned_encoder._plain_torch_bert, lambda *a, **k: None
    try:
        via_peft = SentenceEncoder(run.encoder_dir).encode_conversations(convs)
    finally:
        finetuned_encoder._plain_torch_bert = real
    for a, b in zip(feats, via_peft):
        np.testing.assert_allclose(a, b, atol=1e-5)
    code = (f"import sys; from kgemo.encoders import SentenceEncoder; "
            f"SentenceEncoder({str(run.encoder_dir)!r}).encode(['hi there']); "
            f"print('transformers' in sys.modules, 'peft' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# -- several datasets in one run ---------------------------------------------------------------------------------
def write_dataset(folder, name, labels, metric, conversations_by_split, rename=None):
    """A dataset file of one's own (JSON Lines + header) holding the given conversations, labels renamed."""
    rename = rename or {}
    (folder / f"{name}.yaml").write_text(
        f"name: {name}\ntasks:\n  emotion:\n    labels: {labels}\n    metric: {metric}\n    neutral: neutral\n"
        "splits: given\n")
    with open(folder / f"{name}.jsonl", "w") as fh:
        for split, convs in conversations_by_split.items():
            for c in convs:
                turns = [{"speaker": u.speaker, "text": u.text,
                          "emotion": rename.get(u.labels["emotion"], u.labels["emotion"])} for u in c]
                fh.write(json.dumps({"id": f"{name}-{c.id}", "split": split, "turns": turns}) + "\n")
    return folder / f"{name}.jsonl"


def all_neutral(n: int, seed: int) -> list[Conversation]:
    rng = random.Random(seed)
    return [Conversation(f"n{seed}-{i}", [Utterance(rng.choice(["ok", "fine", "see you", "right"]), "ann",
                                                    {"emotion": "neutral"}) for _ in range(3)]) for i in range(n)]


@pytest.mark.slow
def test_several_datasets_train_together_in_a_shared_label_space(tmp_path, make_tiny_bert):
    """Two files whose label sets differ (joy / happiness) train in ekman7; each test split is scored on its own
    with its own metric; neutral_share drops the all-neutral train conversations; both files' checksums are kept."""
    from kgemo.checksums import sha256_file
    from kgemo.training.finetune import finetune

    a = write_dataset(tmp_path, "a", "[neutral, joy, sadness]", "weighted_f1", DATA)
    b = write_dataset(tmp_path, "b", "[neutral, happiness, sadness]", "micro_f1_no_neutral",
                      {"train": made_up(20, 3) + all_neutral(6, 0), "dev": made_up(4, 4), "test": made_up(6, 5)},
                      rename={"joy": "happiness"})
    base = make_tiny_bert(tmp_path / "base")
    with pytest.raises(KgemoError, match="test.yaml: .*set data.label_space"):
        tiny_config(tmp_path, base, data={"datasets": [str(a), str(b)]})
    with pytest.raises(KgemoError, match="test.yaml: data.neutral_share=2"):
        tiny_config(tmp_path, base, data={"datasets": [str(a), str(b)], "label_space": "ekman7", "neutral_share": 2})
    config = tiny_config(tmp_path, base, name="both", data={"datasets": [str(a), str(b)], "label_space": "ekman7",
                                                            "neutral_share": 0.0},
                         train={"epochs": 1, "max_steps": 4})
    assert config.to_dict()["data"]["label_space"] == "ekman7"
    run = finetune(config, resume=False)
    metrics = run.metrics
    assert metrics["datasets"] == [str(a), str(b)]
    assert metrics["train_utterances"] == 5 * (40 + 20)            # the six all-neutral conversations left out
    assert set(metrics["per_dataset"]["test"]) == {str(a), str(b)}
    assert metrics["metrics"] == {"emotion": "weighted_f1"}        # the union is scored by weighted F1 ...
    meta = json.loads((config.encoder_dir / "encoder.json").read_text())
    assert meta["tasks"]["emotion"]["label_space"] == "ekman7/emotion"
    assert meta["data"]["utterances"] == {"train": 300, "dev": 60, "test": 70}
    files = metrics["provenance"]["inputs"]["data"]
    assert files[str(a)]["a.jsonl"] == sha256_file(a) and files[str(b)]["b.jsonl"] == sha256_file(b)
    # ... and each dataset by its own metric on its own utterances: b's test is micro F1 without neutral.
    from kgemo.data import LABEL_SPACES, load_dataset
    from kgemo.metrics import score
    from kgemo.training.utterance_batches import UtteranceSet, eval_loader

    module = run.module
    space = {"emotion": LABEL_SPACES["ekman7/emotion"]}
    own = UtteranceSet(load_dataset(str(b), "test"), module.tokenizer, config.context, space)
    assert len(own) == 30
    (gold, pred), = module.predict_split(eval_loader(own, module.tokenizer, 8)).values()
    expected = round(score("micro_f1_no_neutral", gold, pred, space["emotion"]), 4)
    assert metrics["per_dataset"]["test"][str(b)]["emotion"] == expected
    # The union's score is weighted F1 over both test splits' predictions.
    own_a = UtteranceSet(load_dataset(str(a), "test"), module.tokenizer, config.context, space)
    (gold_a, pred_a), = module.predict_split(eval_loader(own_a, module.tokenizer, 8)).values()
    union = score("weighted_f1", np.concatenate([gold_a, gold]), np.concatenate([pred_a, pred]), space["emotion"])
    assert metrics["test"]["emotion"] == round(union, 4)


def test_single_dataset_configs_resolve_as_before():
    """The options for several datasets are left out of a config that does not use them, so every fine-tuned
    encoder row's recorded resolved-config checksum still holds (evaluate.py --check)."""
    from kgemo.training.finetune import load_finetune_config

    data = load_finetune_config(ROOT / "configs" / "finetune_meld.yaml").to_dict()["data"]
    assert set(data) == {"dataset", "tasks", "root", "max_conversations", "strict"}


def test_a_dataset_left_out_of_datasets_is_refused_not_ignored(tmp_path):
    """`datasets` replaces `dataset`; a `dataset` naming something else would train without it, unsaid."""
    with pytest.raises(KgemoError, match=r"test.yaml: data.dataset 'emorynlp' is not one of data.datasets "
                                         r"\['meld', 'dailydialog'\]"):
        tiny_config(tmp_path, "unused", data={"dataset": "emorynlp", "datasets": ["meld", "dailydialog"],
                                              "label_space": "ekman7"})
    config = tiny_config(tmp_path, "unused", data={"dataset": "meld", "datasets": ["meld", "dailydialog"],
                                                   "label_space": "ekman7"})
    assert config.data.names == ["meld", "dailydialog"]


def test_max_train_conversations_cuts_train_only(tmp_path):
    """The subsample of a large train split (data.max_train_conversations) is its first N conversations; dev and
    test stay whole, and the option is left out of configs that do not use it (their rows' checksums)."""
    from kgemo.training.finetune import _load_splits

    a = write_dataset(tmp_path, "a", "[neutral, joy, sadness]", "weighted_f1", DATA)
    config = tiny_config(tmp_path, "unused", data={"dataset": str(a), "max_train_conversations": 3})
    convs, _ = _load_splits(config)
    whole, _ = _load_splits(tiny_config(tmp_path, "unused", data={"dataset": str(a)}))
    assert [len(convs[s][str(a)]) for s in ("train", "dev", "test")] == [3] + [len(whole[s][str(a)])
                                                                              for s in ("dev", "test")]
    assert [c.id for c in convs["train"][str(a)]] == [c.id for c in whole["train"][str(a)][:3]]
    assert config.to_dict()["data"]["max_train_conversations"] == 3
    assert "max_train_conversations" not in tiny_config(tmp_path, "unused", data={"dataset": str(a)}).to_dict()["data"]


@pytest.mark.slow
def test_dev_is_not_predicted_again_when_the_best_evaluation_was_the_last(tmp_path, tiny_bert_dir, monkeypatch):
    """One evaluation, at the end: the final dev score is that evaluation's, and dev is predicted only for test."""
    from kgemo.training.finetune import finetune
    from kgemo.training.finetune_module import FinetuneModule

    calls = []
    original = FinetuneModule.predict_split
    monkeypatch.setattr(FinetuneModule, "predict_split", lambda self, loader: calls.append(len(loader.dataset))
                        or original(self, loader))
    config = tiny_config(tmp_path, tiny_bert_dir, train={"epochs": 1, "val_check_interval": 1.0})
    run = finetune(config, DATA, resume=False)
    n_test = sum(len(c) for c in DATA["test"])
    assert calls == [n_test]                                           # test only
    assert run.metrics["dev"]["emotion"] == pytest.approx(run.metrics["best_dev_score"], abs=1e-3)
    # Evaluated twice and best at the first: the best weights are reloaded and dev is predicted again.
    calls.clear()
    config = tiny_config(tmp_path, tiny_bert_dir, name="twice", train={"epochs": 2, "val_check_interval": 1.0,
                                                                       "lr": 0.0})
    run = finetune(config, DATA, resume=False)
    assert run.metrics["best_step"] < run.metrics["steps"] and len(calls) == 2
