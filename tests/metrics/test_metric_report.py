"""classification_report, format_report, confusion_matrix and confusion_matrix_png."""
from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import precision_recall_fscore_support

from kgemo.data.labels import label_space
from kgemo.errors import DataFormatError
from kgemo.metrics import (classification_report, confusion_matrix, confusion_matrix_png, format_report,
                           micro_f1_no_neutral)

DD_EMO = label_space("dailydialog", "emotion")
MAST_SENT = label_space("mastodon", "sentiment")
Y_TRUE = [0, 0, 0, 0, 4, 4, 1, 5, -1]
Y_PRED = [0, 0, 0, 4, 4, 0, 1, 1, 3]


def test_report_per_class_and_dataset_metric():
    rep = classification_report(Y_TRUE, Y_PRED, DD_EMO)
    assert rep["label_space"] == "dailydialog/emotion"
    assert rep["metric"] == "micro_f1_no_neutral"
    assert rep["score"] == pytest.approx(50.0)  # see test_micro_f1_no_neutral_excludes_neutral
    assert rep["support"] == 8 and rep["ignored"] == 1
    # neutral: pred at 0,1,2,5 -> 4, tp=3, gold=4: P = R = 75.
    assert rep["classes"]["neutral"] == {"precision": 75.0, "recall": 75.0, "f1": 75.0, "support": 4,
                                         "predicted": 4}
    # fear: in the label space, never gold, predicted only at the ignored position -> all zero.
    assert rep["classes"]["fear"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "predicted": 0}
    p, r, f, s = precision_recall_fscore_support(Y_TRUE[:-1], Y_PRED[:-1], labels=range(7), zero_division=0)
    for i, name in enumerate(DD_EMO.labels):
        assert rep["classes"][name]["precision"] == pytest.approx(100 * p[i])
        assert rep["classes"][name]["recall"] == pytest.approx(100 * r[i])
        assert rep["classes"][name]["f1"] == pytest.approx(100 * f[i])
        assert rep["classes"][name]["support"] == s[i]
    assert rep["averages"]["accuracy"] == pytest.approx(62.5)
    json.dumps(rep)  # serialisable as is


def test_report_metric_override_and_setting():
    assert classification_report(Y_TRUE, Y_PRED, DD_EMO, setting="joint")["metric"] == "macro_f1"
    rep = classification_report(Y_TRUE, Y_PRED, DD_EMO, metric="accuracy")
    assert rep["metric"] == "accuracy" and rep["score"] == pytest.approx(62.5)
    with pytest.raises(KeyError):
        classification_report(Y_TRUE, Y_PRED, DD_EMO, metric="f2")


def test_format_report_table():
    text = format_report(classification_report(Y_TRUE, Y_PRED, DD_EMO))
    lines = text.splitlines()
    assert lines[0].startswith("dailydialog/emotion: micro_f1_no_neutral = 50.00")
    assert "(8 labelled, 1 ignored)" in lines[0]
    row = next(line for line in lines if line.split()[0] == "neutral")
    assert row.split() == ["neutral", "75.00", "75.00", "75.00", "4", "4"]
    assert any(line.split()[:2] == ["accuracy", "62.50"] for line in lines)
    assert all(name in text for name in DD_EMO.labels)


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"])
def test_confusion_matrix_matches_sklearn(normalize):
    got = confusion_matrix(Y_TRUE, Y_PRED, DD_EMO, normalize=normalize)
    want = sk_confusion_matrix(Y_TRUE[:-1], Y_PRED[:-1], labels=range(7), normalize=normalize)
    np.testing.assert_allclose(got, want)
    assert got.shape == (7, 7)


def test_confusion_matrix_counts_by_hand():
    cm = confusion_matrix([0, 0, 1, 2, -1], [0, 1, 1, 1, 2], MAST_SENT)
    # rows gold, columns predicted: gold 0 -> pred 0 and 1; gold 1 -> 1; gold 2 -> 1; the -1 position dropped.
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]
    with pytest.raises(ValueError, match="normalize"):
        confusion_matrix([0], [0], MAST_SENT, normalize="rows")


def _png_chunks(data: bytes):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


def test_confusion_matrix_png_is_a_valid_png(tmp_path):
    out = confusion_matrix_png(Y_TRUE, Y_PRED, DD_EMO, tmp_path / "plots" / "cm.png", dpi=50)
    assert out == tmp_path / "plots" / "cm.png"
    chunks = _png_chunks(out.read_bytes())
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert width > 100 and height > 100
    # Written atomically: no temporary file left beside it.
    assert sorted(p.name for p in out.parent.iterdir()) == ["cm.png"]
    # Counts instead of shares, and the image decodes.
    import matplotlib.image
    out2 = confusion_matrix_png(Y_TRUE, Y_PRED, DD_EMO, tmp_path / "counts.png", normalize=None, title="t", dpi=50)
    img = matplotlib.image.imread(out2)
    assert img.ndim == 3 and img.shape[0] > 100


def test_confusion_matrix_png_bad_input_leaves_no_file(tmp_path):
    with pytest.raises(DataFormatError, match="3 classes"):
        confusion_matrix_png([0, 9], [0, 1], MAST_SENT, tmp_path / "cm.png")
    assert not any(tmp_path.iterdir())


def test_report_metric_agrees_with_function():
    rep = classification_report(Y_TRUE, Y_PRED, DD_EMO)
    assert rep["score"] == micro_f1_no_neutral(Y_TRUE, Y_PRED, DD_EMO)
