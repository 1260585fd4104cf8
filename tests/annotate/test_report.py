"""``SplitReport`` and ``kgemo report``: gold vs predicted, scores from kgemo.metrics, error types, the gallery's
data; the CLI. The tiny KET annotator stands in for a trained model; one slow test runs the default model on the
real MELD test split."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_html_page import embedded_data

from kgemo.annotate.split_report import ERROR_TYPES, SplitReport, _gold_label, error_type
from kgemo.data import Conversation, Utterance
from kgemo.data.labels import LABEL_SPACES, label_space
from kgemo.errors import KgemoError
from kgemo.metrics import classification_report, confusion_matrix

MELD = label_space("meld", "emotion")
ROOT = Path(__file__).resolve().parents[2]


def labelled(cid: str, rows, dataset: str = "meld") -> Conversation:
    return Conversation(cid, [Utterance(text, speaker, {"emotion": label} if label else {})
                              for speaker, text, label in rows], dataset=dataset, split="test")


CONVS = [
    labelled("d1", [("Anna", "I got the job", "joy"), ("Ben", "my dog is happy too", "joy"),
                    ("Anna", "I failed my exam", "sadness"), ("Ben", "so sad, I could cry", "sadness")]),
    labelled("d2", [("Cleo", "it is an exam", "neutral"), ("Dan", "I am happy", "joy"), ("Cleo", "ok", None)]),
]
GOLD = ["joy", "joy", "sadness", "sadness", "neutral", "joy", None]


@pytest.fixture
def report(ket_annotator) -> SplitReport:
    return SplitReport.from_conversations(ket_annotator, CONVS, "test", "meld", progress=False)


@pytest.mark.parametrize("gold, pred, neutral, expected", [
    (1, 1, 0, "correct"), (1, 0, 0, "missed"), (0, 3, 0, "false_alarm"), (1, 3, 0, "wrong_class"),
    (-1, 2, 0, "unlabelled"), (0, 3, None, "wrong_class"), (2, 2, None, "correct"),
])
def test_error_type(gold, pred, neutral, expected):
    assert error_type(gold, pred, neutral) == expected


def test_gold_and_predictions_line_up(report, ket_annotator):
    assert report.num_utterances == 7 and report.tasks == ["emotion"] and report.split == "test"
    assert report.gold_ids("emotion").tolist() == [-1 if g is None else MELD.index(g) for g in GOLD]
    direct = [u.emotion for c in CONVS for u in ket_annotator.annotate(c)]
    assert report.pred_ids("emotion").tolist() == [MELD.index(p) for p in direct]
    assert [r.conversation_id for r in report.results] == ["d1", "d2"]


def test_scores_come_from_kgemo_metrics(report):
    gold, pred = report.gold_ids("emotion"), report.pred_ids("emotion")
    s = report.scores()["all"]["emotion"]
    assert report.metrics == {"emotion": "weighted_f1"}            # meld/emotion's metric
    assert s["report"] == classification_report(gold, pred, MELD, metric="weighted_f1")
    assert s["confusion"] == confusion_matrix(gold, pred, MELD).tolist()
    cm = np.array(s["confusion"])
    assert cm.sum() == 6 and s["report"]["support"] == 6            # the unlabelled utterance is not scored
    expected = [error_type(int(g), int(p), MELD.neutral_index) for g, p in zip(gold, pred)]
    assert report.error_types("emotion") == expected
    assert s["errors"] == {name: expected.count(name) for name in ERROR_TYPES}
    assert s["errors"]["correct"] == int(np.trace(cm)) and s["errors"]["unlabelled"] == 1
    summary = report.summary()
    assert summary["utterances"] == 7 and summary["conversations"] == 2 and summary["datasets"] == ["meld"]
    assert summary["scores"]["all"]["emotion"]["score"] == round(s["report"]["score"], 2)
    json.dumps(summary)


def test_one_scope_per_dataset_with_its_own_metric(ket_annotator):
    rep = SplitReport.from_conversations(ket_annotator, CONVS, "test", ["meld", "dailydialog"], progress=False,
                                         metrics={"emotion": "macro_f1"})
    assert rep.scopes() == ["all", "meld", "dailydialog"]
    scores = rep.scores()
    assert scores["all"]["emotion"]["report"]["metric"] == "macro_f1"
    assert scores["meld"]["emotion"]["report"]["metric"] == "weighted_f1"
    assert scores["dailydialog"]["emotion"]["report"]["metric"] == "micro_f1_no_neutral"
    assert scores["meld"]["emotion"]["report"]["support"] == 4
    assert scores["dailydialog"]["emotion"]["report"]["support"] == 2
    assert rep.gold_ids("emotion", "dailydialog").tolist() == [MELD.index("neutral"), MELD.index("joy"), -1]


def test_gold_labels_are_mapped_into_the_model_space_or_refused(ket_annotator):
    assert _gold_label("happiness", LABEL_SPACES["ekman7/emotion"], "dailydialog", "7") == "joy"
    assert _gold_label(None, MELD, "meld", "1") is None
    bad = [labelled("x9", [("A", "I am happy", "happiness")], dataset="dailydialog")]
    with pytest.raises(KgemoError, match=r"dailydialog conversation x9: gold label 'happiness' is not in the "
                                         r"model's label space meld/emotion"):
        SplitReport.from_conversations(ket_annotator, bad, "test", "dailydialog", progress=False)


def test_gallery_page_data(report):
    page = report.to_html(title="<b>t</b>")
    assert "<title>&lt;b&gt;t&lt;/b&gt;</title>" in page
    data = embedded_data(page)
    assert data["page"] == "gallery" and data["split"] == "test" and data["datasets"] == ["meld"]
    assert data["labels"]["emotion"] == list(MELD.labels) and data["neutral"] == {"emotion": 0}
    assert [e[0] for e in data["errors"]] == list(ERROR_TYPES)
    rows = data["utterances"]
    assert [r[6][0] for r in rows] == report.gold_ids("emotion").tolist()
    assert [ERROR_TYPES[r[7][0]] for r in rows] == report.error_types("emotion")
    assert [c[1] for c in data["conversations"]] == ["meld", "meld"]
    page_scores = data["scores"]["all"]["emotion"]
    assert page_scores["confusion"] == report.scores()["all"]["emotion"]["confusion"]
    assert page_scores["classes"]["joy"]["support"] == 3


# -- from a model folder and the CLI -------------------------------------------------------------------------
@pytest.fixture
def fake_split(monkeypatch):
    """``load_dataset`` returns CONVS (and records what it was asked for)."""
    import kgemo.data

    calls = []

    def load(name, split, root=None, strict=True, **kw):
        calls.append((name, split, root))
        return list(CONVS)

    monkeypatch.setattr(kgemo.data, "load_dataset", load)
    return calls


def test_from_model_reads_the_datasets_from_the_model_folder(ket_model_dir, ket_annotator, fake_split, tmp_path):
    rep = SplitReport.from_model(ket_model_dir, "dev", annotator=ket_annotator, max_conversations=1, progress=False)
    assert fake_split == [("meld", "dev", None)]
    assert rep.datasets == ["meld"] and len(rep.results) == 1 and rep.split == "dev"
    run = tmp_path / "runs" / "x" / "seed0"                 # a run folder holding model/
    shutil.copytree(ket_model_dir, run / "model")
    rep = SplitReport.from_model(run, annotator=ket_annotator, progress=False)
    assert len(rep.results) == 2
    cfg = json.loads((run / "model" / "config.json").read_text())
    del cfg["pipeline"]["data"]
    (run / "model" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(KgemoError, match="records no datasets"):
        SplitReport.from_model(run, annotator=ket_annotator, progress=False)


def test_cli_report(ket_model_dir, fake_split, monkeypatch, tiny_encoder, tiny_atomic, tmp_path, capsys):
    from kgemo.annotate import Annotator
    from kgemo.cli import main

    original = Annotator.from_pretrained.__func__
    seen = []

    def fake(cls, name_or_path="default", device=None, **kwargs):  # the saved spec names an unloadable encoder
        seen.append(kwargs)
        kwargs.pop("events")
        return original(cls, name_or_path, "cpu", encoder=tiny_encoder, events=tiny_atomic, **kwargs)

    monkeypatch.setattr(Annotator, "from_pretrained", classmethod(fake))
    out = tmp_path / "report.html"
    assert main(["report", str(ket_model_dir), "--split", "dev", "--html", str(out), "--top-k", "2"]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["split"] == "dev" and summary["utterances"] == 7
    assert f"wrote {out}" in captured.err
    assert seen[0]["top_k"] == 2 and fake_split == [("meld", "dev", None)]
    data = embedded_data(out.read_text(encoding="utf-8"))
    assert len(data["utterances"]) == 7 and all(len(r[8]) <= 2 for r in data["utterances"])


def test_cli_report_errors(tmp_path, capsys):
    from kgemo.cli import main

    assert main(["report", str(tmp_path / "nope"), "--html", str(tmp_path / "r.html")]) == 2
    assert "no such model folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report", str(tmp_path)])                      # --html is required


@pytest.mark.slow
@pytest.mark.integration
def test_default_model_report_on_meld_test_matches_the_documented_scores(data_root, tmp_path, capsys):
    """The report goes through the annotator — with the folder's calibration.json, whose class offsets change labels —
    so it must give the scores scripts/score_annotator.py recorded through the same public API
    (docs/default_scores.json), within docs/results_default.json's margin."""
    from kgemo.cli import main

    out = tmp_path / "meld_test.html"
    assert main(["report", "default", "--dataset", "meld", "--split", "test", "--html", str(out),
                 "--root", str(data_root), "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    margin = json.loads((ROOT / "docs" / "results_default.json").read_text())["margin"]
    meld = json.loads((ROOT / "docs" / "default_scores.json").read_text())["datasets"]["meld"]
    got = summary["scores"]["all"]["emotion"]["averages"]
    assert summary["utterances"] == meld["utterances"] == 2610
    for name, value in ((meld["metric"], meld["score"]), ("macro_f1", meld["macro_f1"])):
        assert abs(got[name] - value) <= margin, (name, got[name], value)
    assert out.stat().st_size < 3_000_000                     # compact enough to open quickly (see the benchmark)
