"""The embedded default model: shipped folder, offline annotation of the example, and its test score."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from kgemo.annotate import DEFAULT_MODEL_DIR, Annotator

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "conversation.json"
RESULTS = ROOT / "docs" / "results_default.json"
# The user's cache location as it was before the per-test KGEMO_HOME fixture replaced it (see the margin test).
_USER_KGEMO_HOME = os.environ.get("KGEMO_HOME")


def test_shipped_folder_is_small_and_names_offline_inputs():
    from kgemo.pipeline import PipelineSpec
    from kgemo.storage import read_json

    for name in ("config.json", "labels.json", "model.safetensors", "README.md"):
        assert (DEFAULT_MODEL_DIR / name).is_file(), name
    assert (DEFAULT_MODEL_DIR / "model.safetensors").stat().st_size < 3_000_000
    cfg = read_json(DEFAULT_MODEL_DIR / "config.json")
    spec = cfg["pipeline"]
    knowledge = {k: s.path for k, s in PipelineSpec.from_dict(spec).knowledge.items()}
    assert knowledge == {"conceptnet": "default"}
    if spec["encoder"] != "default":  # a LoRA adapter on the packaged MiniLM, shipped inside the folder
        assert spec["encoder"].startswith("./")
        adapter = DEFAULT_MODEL_DIR / spec["encoder"][2:]
        meta = read_json(adapter / "encoder.json")
        assert meta["mode"] == "lora" and meta["base"]["model"] == "default"
        assert (adapter / "adapter" / "adapter_model.safetensors").is_file()
    # Everything shipped beyond the MiniLM package (head, adapter, tokenizer, card) stays under 10 MB.
    assert sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.rglob("*") if p.is_file()) < 10_000_000
    assert all(p.stat().st_mode & 0o444 == 0o444 for p in DEFAULT_MODEL_DIR.rglob("*"))  # readable by everyone
    assert cfg["model"] == "ket" and cfg["tasks"] == ["emotion"]
    assert spec["data"]["datasets"] == ["meld", "dailydialog"] and spec["data"]["label_space"] == "ekman7"
    labels = read_json(DEFAULT_MODEL_DIR / "labels.json")
    assert labels["emotion"]["name"] == "ekman7/emotion"


def test_shipped_calibration_is_for_the_shipped_weights_and_documented():
    """calibration.json (kgemo calibrate default) was fitted for these weights on dev, and the model card and
    docs/annotate.md give its test ECE."""
    from kgemo.annotate import Calibration

    cal = Calibration.load(DEFAULT_MODEL_DIR)   # None (with a warning) if fitted for other weights
    assert cal is not None and cal.split == "dev" and cal.datasets == ["meld", "dailydialog"]
    assert 0.5 < cal.temperatures["emotion"] < 2.0
    card = (DEFAULT_MODEL_DIR / "README.md").read_text()
    docs = (ROOT / "docs" / "annotate.md").read_text()
    assert f"T = {cal.temperatures['emotion']:.4g}" in card and cal.command in card
    for ds, name in (("meld", "MELD"), ("dailydialog", "DailyDialog")):
        s = cal.scores["test"][ds]["emotion"]
        assert f"| test | {ds} | emotion | {s['utterances']:,} | {s['ece_before']:.3f} | {s['ece_after']:.3f} |" in card
        assert f"| {name} | {s['utterances']:,} | {s['ece_before']:.3f} | {s['ece_after']:.3f} |" in docs
        # The class offsets change labels: the metric after them is the one the docs give.
        assert f"{s['metric_before']:.2f} → {s['metric_after']:.2f} |" in docs
    offsets = cal.bias("emotion")
    assert offsets is not None and "--class-bias" in cal.command
    assert "b = [" + ", ".join(f"{x:+.2f}" for x in offsets) + "]" in card


@pytest.fixture(scope="module")
def default_annotator():
    return Annotator.from_pretrained("default", device="cpu")


@pytest.mark.slow
def test_default_annotates_the_example_offline(default_annotator):
    conv = json.loads(EXAMPLE.read_text())
    res = default_annotator.annotate(conv)
    assert res.conversation_id == "job-news" and len(res) == len(conv["utterances"]) == 8
    space = default_annotator.model.label_spaces["emotion"].labels
    assert all(u.emotion in space for u in res)
    # Concepts are chosen by relatedness to the conversation (none under 0.2), so a turn may have none beyond its
    # own words ("No way! That's amazing, congratulations!"); the word's own concept is never listed.
    assert all(sum(c.weight for c in u.concepts) <= 1 + 1e-6 for u in res)
    assert sum(bool(u.concepts) for u in res) >= 4
    assert not any(c.concept == c.token for u in res for c in u.concepts)
    # KET does not read ATOMIC and no similarity made the nearest event's inferences clearly better than a random
    # event's on dev data (docs/annotate.md): no ATOMIC event is shown.
    assert all(u.events == [] for u in res)
    # Calibrated probabilities (calibration.json: class offsets, then a temperature), the label their argmax.
    raw = Annotator.from_pretrained("default", device="cpu", calibration=None, evidence="attention").annotate(conv)
    cal = default_annotator.calibration
    assert "calibration" not in raw.model and res.model["calibration"]["temperatures"] == cal.temperatures
    for u, v in zip(res, raw):
        shown = cal.apply("emotion", torch.tensor([list(v.probabilities["emotion"].values())], dtype=torch.float64))
        assert list(u.probabilities["emotion"].values()) == pytest.approx(shown[0].tolist(), abs=1e-5)
        assert u.emotion == max(u.probabilities["emotion"], key=u.probabilities["emotion"].get)
    # Same input, same output.
    assert default_annotator.annotate(conv).to_json() == res.to_json()
    # Clear cases come out as expected.
    assert res[1].emotion in ("joy", "surprise")       # "No way! That's amazing, congratulations!"
    assert res[2].emotion == "fear"                     # "I start Monday. I'm a little scared I'll mess it up"
    assert res[5].emotion == "sadness"                  # "Yeah, that makes me really sad. I'm going to miss you."


@pytest.mark.slow
def test_default_warns_naming_a_long_utterance(default_annotator):
    from kgemo.encoders import TruncationWarning

    long = " ".join(["I love this place and I am so happy here"] * 40)  # ~400 tokens > 128
    with pytest.warns(TruncationWarning, match=r"conversation input: utterance\(s\) 2 are longer than the sentence "
                                               r"encoder's 128 tokens"):
        res = default_annotator.annotate([("A", "hi"), ("B", long), ("A", "ok")])
    assert [u.truncated for u in res] == [False, True, False]


@pytest.mark.slow
def test_cli_prints_the_table_for_the_example(capsys):
    from kgemo.cli import main

    assert main(["annotate", str(EXAMPLE), "--width", "120"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["#", "speaker", "utterance", "emotion"]
    assert sum(line[:2].strip().isdigit() for line in lines) == 8
    assert "Guess what?" in out and "ATOMIC" not in out and "xReact" not in out   # see the example test
    assert "concepts (effect)" in lines[0]   # occlusion ranking by default


def test_cli_evidence_attention_ranks_by_weight(capsys):
    from kgemo.cli import main

    assert main(["annotate", str(EXAMPLE), "--width", "120", "--evidence", "attention", "--format", "json"]) == 0
    res = json.loads(capsys.readouterr().out)
    concepts = [c for u in res["utterances"] for c in u["concepts"]]
    assert concepts and all(c["effect"] is None for c in concepts)
    assert main(["annotate", str(EXAMPLE), "--width", "120", "--evidence", "attention"]) == 0
    assert "concepts (weight)" in capsys.readouterr().out.splitlines()[0]


@pytest.mark.slow
@pytest.mark.integration
def test_test_split_score_within_margin_of_docs(data_root, monkeypatch):
    """The shipped weights score what docs/results_default.json (written from the training run) reports, on the
    same test splits with the same metric, within its stated margin (0.5 points: fp noise from another BLAS/CPU
    may flip a few argmaxes; nothing else may change). Uses the user's kgemo cache (features, concept embeddings
    are verified on load and rebuilt if missing), so it costs encoding only on a cold machine."""
    from kgemo.training import evaluate

    if _USER_KGEMO_HOME is None:
        monkeypatch.delenv("KGEMO_HOME", raising=False)
    else:
        monkeypatch.setenv("KGEMO_HOME", _USER_KGEMO_HOME)
    recorded = json.loads(RESULTS.read_text())
    margin = recorded["margin"]
    result = evaluate(DEFAULT_MODEL_DIR, "test", root=str(data_root))
    assert result["datasets"] == ["meld", "dailydialog"]
    assert result["scores"]["emotion"] == pytest.approx(recorded["test"]["emotion"], abs=margin)
    # docs/results.md shows the same recorded number (scripts/evaluate.py --all renders it from the JSON).
    results_md = (RESULTS.parent / "results.md").read_text()
    assert f"| test (both datasets) | macro_f1 | {recorded['test']['emotion']:.2f} |" in results_md
