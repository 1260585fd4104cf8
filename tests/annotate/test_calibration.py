"""Calibrated probabilities: calibration.json in the model folder, fitted by fit_calibration / `kgemo calibrate`,
applied by the annotator to every probability it shows (a temperature never changes a label; class offsets do, and
the label is then the shown probabilities' argmax)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from annotate_data import CONVERSATION, save_tiny

from kgemo.annotate import Annotator, Calibration, fit_calibration
from kgemo.annotate.calibration import CALIBRATION_FILE, calibrate_probabilities
from kgemo.checksums import sha256_file
from kgemo.data import as_conversation, label_space
from kgemo.errors import KgemoError


def _annotator(model_dir, tiny_encoder, tiny_atomic, **kw):
    return Annotator.from_pretrained(model_dir, device="cpu", encoder=tiny_encoder, events=tiny_atomic, **kw)


def _softened(p: dict[str, float], t: float) -> dict[str, float]:
    logp = np.log(np.array(list(p.values())))
    q = np.exp(logp / t - (logp / t).max())
    return dict(zip(p, q / q.sum()))


def test_calibrate_probabilities_is_softmax_of_scaled_logits():
    z = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]])
    p = torch.softmax(z, -1)
    assert torch.allclose(calibrate_probabilities(p, 2.5), torch.softmax(z.double() / 2.5, -1), atol=1e-7)
    assert calibrate_probabilities(p, 1.0) is p                       # T = 1: untouched, not recomputed
    with pytest.raises(KgemoError, match="positive"):
        Calibration({"emotion": 0.0})


def test_temperature_softens_every_probability_shown_and_never_changes_the_label(ket_model_dir, tiny_encoder,
                                                                                   tiny_atomic):
    plain = _annotator(ket_model_dir, tiny_encoder, tiny_atomic, calibration=None).annotate(CONVERSATION)
    ann = _annotator(ket_model_dir, tiny_encoder, tiny_atomic, calibration={"emotion": 3.0})
    res = ann.annotate(CONVERSATION)
    assert res.labels() == plain.labels()
    for u, v in zip(res, plain):
        expected = _softened(v.probabilities["emotion"], 3.0)
        assert u.probabilities["emotion"] == pytest.approx(expected, abs=2e-5)
        assert u.probability() < v.probability()                     # T > 1: less sure
        assert sum(u.probabilities["emotion"].values()) == pytest.approx(1.0, abs=1e-5)
    # The table, JSON, HTML and RDF show the calibrated numbers.
    table = res.to_table(width=160)
    for u in res:
        assert f"{u.emotion} {u.probability():.2f}" in table
    assert f"{plain[0].emotion} {plain[0].probability():.2f}" not in table
    d = json.loads(res.to_json())
    assert [x["probabilities"] for x in d["utterances"]] == [u.probabilities for u in res]
    assert d["model"]["calibration"] == {"temperatures": {"emotion": 3.0}, "split": "given"}
    html = res.to_html()
    assert str(round(res[0].probabilities["emotion"][res[0].emotion], 3)) in html
    from kgemo.knowledge.rdf import KG

    values = sorted(float(o) for o in res.to_graph().objects(None, KG.emotionProbability))
    assert values == pytest.approx(sorted(u.probability() for u in res))


def test_temperature_one_leaves_the_probabilities_unchanged(ket_model_dir, tiny_encoder, tiny_atomic):
    plain = _annotator(ket_model_dir, tiny_encoder, tiny_atomic, calibration=None).annotate(CONVERSATION)
    one = _annotator(ket_model_dir, tiny_encoder, tiny_atomic, calibration={"emotion": 1.0}).annotate(CONVERSATION)
    assert one.to_dict()["utterances"] == plain.to_dict()["utterances"]   # concepts' occlusion effects included


def test_occlusion_effects_are_drops_of_the_calibrated_probability(ket_model_dir, tiny_encoder, tiny_atomic):
    from kgemo.annotate.occlusion import concept_edges, drop_edges, occlusion_effects

    ann = _annotator(ket_model_dir, tiny_encoder, tiny_atomic, calibration={"emotion": 2.0})
    conv = as_conversation(CONVERSATION)
    g = ann.pipeline.graphs([conv], {}, features=ann._encode([conv])[0], progress=False)[0]
    src, _, utt, ok = concept_edges(g)
    i = int(np.bincount(utt[ok], minlength=len(CONVERSATION)).argmax())
    nodes = np.unique(src[ok & (utt == i)])
    assert len(nodes) >= 2
    batch = drop_edges(g, [np.zeros(len(src), bool)])                     # the whole graph, as one batch
    batch = ann.transform(batch) if ann.transform is not None else batch
    with torch.no_grad():
        z = ann.model(batch)["emotion"].double()
    p_full = torch.softmax(z / 2.0, -1)
    effects = occlusion_effects(ann.model, g, ann.transform, "emotion", p_full, {i: nodes}, utt, src, ok,
                                temperature=2.0)[i]
    y = int(z[i].argmax())
    for c, e in zip(nodes, effects):
        b = drop_edges(g, [ok & (utt == i) & (src == c)])
        b = ann.transform(b) if ann.transform is not None else b
        with torch.no_grad():
            q = torch.softmax(ann.model(b)["emotion"].double() / 2.0, -1)
        assert e == pytest.approx(float(p_full[i, y] - q[i, y]), abs=1e-6)


def test_class_offsets_change_labels_to_the_argmax_of_what_is_shown(ket_model_dir, tiny_encoder, tiny_atomic):
    from kgemo.annotate.occlusion import concept_edges, drop_edges, occlusion_effects

    z = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, 1.0]])
    b = [0.0, -4.0, 1.0]
    assert torch.allclose(calibrate_probabilities(torch.softmax(z, -1), 2.0, b),
                          torch.softmax((z.double() + torch.tensor(b, dtype=torch.float64)) / 2.0, -1), atol=1e-7)
    names = list(label_space("meld", "emotion").labels)
    plain = _annotator(ket_model_dir, tiny_encoder, tiny_atomic, calibration=None).annotate(CONVERSATION)
    offsets = [0.0] * len(names)
    offsets[names.index("fear")] = 30.0                                   # large enough to win everywhere
    cal = Calibration({"emotion": 1.5}, "given", biases={"emotion": offsets})
    assert cal.changes_labels and Calibration.from_dict(cal.to_dict()).biases == {"emotion": offsets}
    ann = _annotator(ket_model_dir, tiny_encoder, tiny_atomic, calibration=cal)
    res = ann.annotate(CONVERSATION)
    assert res.labels() == ["fear"] * len(CONVERSATION) != plain.labels()
    for u, v in zip(res, plain):
        logp = np.log(np.array(list(v.probabilities["emotion"].values()))) + np.array(offsets)
        q = np.exp(logp / 1.5 - (logp / 1.5).max())
        assert list(u.probabilities["emotion"].values()) == pytest.approx(list(q / q.sum()), abs=2e-5)
        assert max(u.probabilities["emotion"], key=u.probabilities["emotion"].get) == u.emotion
    assert res.to_dict()["model"]["calibration"]["biases"] == {"emotion": offsets}
    # Occlusion effects are drops of the shown (offset, scaled) probability of the shown label.
    conv = as_conversation(CONVERSATION)
    g = ann.pipeline.graphs([conv], {}, features=ann._encode([conv])[0], progress=False)[0]
    src, _, utt, ok = concept_edges(g)
    i = int(np.bincount(utt[ok], minlength=len(CONVERSATION)).argmax())
    nodes = np.unique(src[ok & (utt == i)])
    shift = torch.tensor(offsets, dtype=torch.float64)
    full = drop_edges(g, [np.zeros(len(src), bool)])
    with torch.no_grad():
        p_full = torch.softmax((ann.model(ann.transform(full) if ann.transform else full)["emotion"].double()
                                + shift) / 1.5, -1)
    effects = occlusion_effects(ann.model, g, ann.transform, "emotion", p_full, {i: nodes}, utt, src, ok,
                                temperature=1.5, bias=offsets)[i]
    y = names.index("fear")
    for c, e in zip(nodes, effects):
        d = drop_edges(g, [ok & (utt == i) & (src == c)])
        with torch.no_grad():
            q = torch.softmax((ann.model(ann.transform(d) if ann.transform else d)["emotion"].double() + shift)
                              / 1.5, -1)
        assert e == pytest.approx(float(p_full[i, y] - q[i, y]), abs=1e-6)
    with pytest.raises(KgemoError, match="finite"):
        Calibration({"emotion": 1.0}, biases={"emotion": [float("nan")] * len(names)})
    with pytest.raises(KgemoError, match="3 class offsets.*refit"):
        Calibration({"emotion": 1.0}, biases={"emotion": [0.0, 1.0, 2.0]}).apply("emotion", torch.full((1, 7), 1 / 7))


def test_a_temperature_only_file_of_the_first_format_still_loads(ket_model_dir):
    old = {"format": "kgemo-calibration/1", "temperatures": {"emotion": 1.3}, "split": "dev", "datasets": ["meld"]}
    cal = Calibration.from_dict(old)
    assert cal.temperatures == {"emotion": 1.3} and cal.biases == {} and not cal.changes_labels
    with pytest.raises(KgemoError, match="unknown format"):
        Calibration.from_dict({**old, "format": "kgemo-calibration/9"})


def test_from_pretrained_loads_the_folders_calibration(ket_model_dir, tiny_encoder, tiny_atomic):
    Calibration({"emotion": 2.0}, "dev", ["meld"], sha256_file(ket_model_dir / "model.safetensors")).save(
        ket_model_dir)
    ann = _annotator(ket_model_dir, tiny_encoder, tiny_atomic)
    assert ann.calibration.temperatures == {"emotion": 2.0} and ann.info["calibration"]["split"] == "dev"
    assert _annotator(ket_model_dir, tiny_encoder, tiny_atomic, calibration=None).calibration is None
    # Fitted for other weights: ignored, with a warning saying how to refit.
    Calibration({"emotion": 2.0}, "dev", ["meld"], "0" * 64).save(ket_model_dir)
    with pytest.warns(UserWarning, match="fitted for other weights.*kgemo calibrate"):
        assert _annotator(ket_model_dir, tiny_encoder, tiny_atomic).calibration is None
    assert Calibration.load(ket_model_dir.parent) is None                     # no file: none


@pytest.fixture
def overconfident_dir(tmp_path, tiny_encoder):
    """A tiny no-knowledge model whose emotion head is scaled ×30: random predictions, said with near certainty."""
    return _scaled_model(tmp_path / "hot", tiny_encoder, 30.0)


@pytest.fixture
def hesitant_dir(tmp_path, tiny_encoder):
    """The same model with its head scaled ×0.1: logits so close that class offsets decide the labels."""
    return _scaled_model(tmp_path / "cold", tiny_encoder, 0.1)


def _scaled_model(path, tiny_encoder, scale):
    from kgemo.graphs import get_builder
    from kgemo.models import NoKnowledge, NoKnowledgeConfig
    from kgemo.pipeline import InputPipeline

    pipe = InputPipeline(get_builder("conversation", window=2), tiny_encoder, {}, {}, "tiny")
    torch.manual_seed(0)
    model = NoKnowledge(NoKnowledgeConfig(input_dim=tiny_encoder.dim, hidden=16, heads=2, context_layers=1),
                        {"emotion": label_space("meld", "emotion")}).eval()
    with torch.no_grad():
        model.heads["emotion"].weight.mul_(scale)
        model.heads["emotion"].bias.mul_(scale)
    folder = save_tiny(model, pipe, path, ["emotion"])
    (folder / "README.md").write_text("# a tiny model\n\nIts card.\n", encoding="utf-8")
    return folder


def _chats(tmp_path, n=24, seed=0):
    """A file dataset in MELD's emotion labels: random turns, random labels, every split."""
    rng = np.random.default_rng(seed)
    labels = label_space("meld", "emotion").labels
    words = "happy sad dog job exam cry smile work fail joy pet money".split()
    lines = []
    for k in range(n):
        turns = [{"speaker": "AB"[i % 2], "text": " ".join(rng.choice(words, 4)), "emotion": str(rng.choice(labels))}
                 for i in range(5)]
        lines.append(json.dumps({"id": str(k), "split": ("train", "dev", "test")[k % 3], "turns": turns}))
    (tmp_path / "chats.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "chats.yaml").write_text("name: chats\ntasks:\n  emotion: {labels: meld/emotion}\nsplits: given\n",
                                         encoding="utf-8")
    return str(tmp_path / "chats.jsonl")


def test_fit_calibration_softens_an_overconfident_model_and_writes_folder_and_card(overconfident_dir, tiny_encoder,
                                                                                  tmp_path):
    data = _chats(tmp_path)
    cal = fit_calibration(overconfident_dir, "dev", [data], encoder=tiny_encoder)
    t = cal.temperatures["emotion"]
    dev, test = cal.scores["dev"][data]["emotion"], cal.scores["test"][data]["emotion"]
    assert t > 3.0 and dev["utterances"] == 40 and test["utterances"] == 40
    assert dev["nll_after"] < dev["nll_before"] - 1.0 and dev["ece_after"] < dev["ece_before"]
    assert test["nll_after"] < test["nll_before"]
    saved = json.loads((overconfident_dir / CALIBRATION_FILE).read_text())
    assert saved["temperatures"] == {"emotion": t} and saved["split"] == "dev" and saved["datasets"] == [data]
    assert saved["weights_sha256"] == sha256_file(overconfident_dir / "model.safetensors")
    card = (overconfident_dir / "README.md").read_text()
    assert card.startswith("# a tiny model\n\nIts card.\n") and f"T = {t:.4g}" in card
    assert f"| test | {data} | emotion | 40 | {test['ece_before']:.3f} | {test['ece_after']:.3f} |" in card
    # A refit replaces the section instead of adding a second one; --dry-run (write=False) writes nothing.
    fit_calibration(overconfident_dir, "dev", [data], encoder=tiny_encoder)
    assert (overconfident_dir / "README.md").read_text().count("## Calibration") == 1
    (overconfident_dir / CALIBRATION_FILE).unlink()
    fit_calibration(overconfident_dir, "dev", [data], encoder=tiny_encoder, write=False)
    assert not (overconfident_dir / CALIBRATION_FILE).exists()


def test_calibrate_cli_is_thin_over_fit_calibration(overconfident_dir, tiny_encoder, tmp_path, monkeypatch, capsys):
    import kgemo.annotate.calibrate as calibrate
    from kgemo.cli import main

    original = calibrate.fit_calibration
    monkeypatch.setattr(calibrate, "fit_calibration", lambda *a, **k: original(*a, **k, encoder=tiny_encoder))
    data = _chats(tmp_path)
    assert main(["calibrate", str(overconfident_dir), "--dataset", data]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["temperatures"]["emotion"] > 3.0 and out["command"].startswith(f"kgemo calibrate {overconfident_dir}")
    assert json.loads((overconfident_dir / CALIBRATION_FILE).read_text()) == out


def test_fit_calibration_with_class_bias_raises_the_fit_splits_metric_and_records_it(hesitant_dir, tiny_encoder,
                                                                                     tmp_path, monkeypatch, capsys):
    import kgemo.annotate.calibrate as calibrate
    from kgemo.cli import main

    data = _chats(tmp_path, n=36)
    cal = fit_calibration(hesitant_dir, "dev", [data], encoder=tiny_encoder, class_bias=True)
    b = cal.biases["emotion"]
    assert len(b) == 7 and any(x != 0 for x in b) and abs(sum(b)) < 1e-3
    dev = cal.scores["dev"][data]["emotion"]
    assert dev["metric"] == "weighted_f1" and dev["metric_after"] > dev["metric_before"]   # coordinate ascent
    assert "accuracy_after" in dev and cal.command.endswith("--class-bias")
    saved = json.loads((hesitant_dir / CALIBRATION_FILE).read_text())
    assert saved["format"] == "kgemo-calibration/2" and saved["biases"] == {"emotion": b}
    card = (hesitant_dir / "README.md").read_text()
    assert "softmax((logits + b) / T)" in card and "b = [" in card and "| weighted_f1 |" in card
    # The CLI passes the flag through.
    original = calibrate.fit_calibration
    monkeypatch.setattr(calibrate, "fit_calibration", lambda *a, **k: original(*a, **k, encoder=tiny_encoder))
    assert main(["calibrate", str(hesitant_dir), "--dataset", data, "--class-bias", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["biases"] == {"emotion": b}
