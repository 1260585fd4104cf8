"""HTML pages without a browser: script-safe JSON, the page's shape (CSP, no network, text only as data), the
compact payload, ``AnnotationResult.to_html`` and ``kgemo annotate --html``.

The results are built by hand (no model), so these run in milliseconds; the browser tests
(test_html_browser.py, test_report_gallery.py) import the builders from here.
"""
from __future__ import annotations

import json
import re

import pytest

from kgemo.annotate import AnnotationResult, ConceptEvidence, EventEvidence, UtteranceAnnotation
from kgemo.annotate.html_page import CSP, FORMAT, conversation_page, encode_results, json_for_script, render_page
from kgemo.data.labels import EKMAN7

#: Strings that would run script if a page treated them as markup.
XSS = ("<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "</script>")


def concept(name, token, weight, attention, beta, valence=0.5, known=True, relation="RelatedTo", direction="out"):
    return ConceptEvidence(name, token, relation, direction, weight, attention, beta, 1.0, (valence, 0.5, 0.5),
                           known)


def event(head, relation, tail, score):
    return EventEvidence(head, relation, tail, score)


def probabilities(label: str, p: float, labels=EKMAN7) -> dict[str, float]:
    rest = round((1.0 - p) / (len(labels) - 1), 6)
    return {name: (p if name == label else rest) for name in labels}


def utterance(i, speaker, text, label, p, concepts=(), events=()):
    return UtteranceAnnotation(i, speaker, text, {"emotion": label}, {"emotion": probabilities(label, p)},
                               list(concepts), list(events))


#: (speaker, text, label, p, concepts, events) of a four-turn conversation; concepts in weight order.
TURNS = [
    ("Anna", "I got the job!", "joy", 0.812,
     [concept("work", "job", 0.5, 0.6, 0.833, 0.7), concept("employment", "job", 0.333, 0.4, 0.833, 0.62),
      concept("celebrate", "get", 0.1, 1.0, 0.1, 0.9, relation="Causes")],
     [event("I got the job", "xReact", "proud", 0.91), event("I got the job", "oReact", "happy for them", 0.88)]),
    ("Ben", "My dog is so happy too.", "joy", 0.655,
     [concept("pet", "dog", 0.4, 0.8, 0.5, 0.75, relation="IsA"), concept("joy", "happy", 0.35, 0.7, 0.5, 0.98),
      concept("smile", "happy", 0.15, 0.3, 0.5, 0.96, relation="Causes"),
      concept("animal_shelter", "dog", 0.1, 0.2, 0.5, 0.5, known=False, direction="in", relation="AtLocation")],
     [event("PersonX walks the dog", "xIntent", "to exercise", 0.42)]),
    ("Anna", "But I failed my exam.", "sadness", 0.583,
     [concept("sad", "fail", 0.7, 0.7, 1.0, 0.052, relation="Causes"), concept("cry", "fail", 0.3, 0.3, 1.0, 0.1)],
     [event("I failed my exam", "xReact", "sad", 0.95)]),
    ("Ben", "Oh no.", "neutral", 0.402, [], []),
]


def hand_result(conversation_id: str = "talk-1", turns=TURNS) -> AnnotationResult:
    """An :class:`AnnotationResult` built without a model (what the annotator returns, by hand)."""
    utts = [utterance(i, *t) for i, t in enumerate(turns)]
    return AnnotationResult(conversation_id, utts, {"name": "hand", "model": "ket", "graph": "concept"}, ["emotion"])


def xss_result() -> AnnotationResult:
    """A conversation whose id, speakers, texts, concept names, words and events are markup / script."""
    a, b, c = XSS
    turns = [
        (b, f"{a} hello {c}", "anger", 0.7,
         [concept(a, b, 0.6, 1.0, 0.6, 0.2), concept(c, b, 0.3, 0.5, 0.6, 0.8, known=False), concept(b, c, 0.1, 1.0,
                                                                                                     0.1, 0.5)],
         [event(a, "xReact", f"{c}<img src=x onerror=alert(2)>", 0.5)]),
        (a, b, "fear", 0.5, [concept("safe", c, 0.9, 1.0, 0.9, 0.6)], []),
        (c, "plain & simple <b>bold</b> \u2028line", "neutral", 0.6, [], []),
    ]
    res = hand_result(f"{c}<script>alert('id')</script>", turns)
    res.model = {"name": "<img src=x onerror=alert(3)>", "model": a}
    return res


def embedded_data(page: str) -> dict:
    """The JSON block of a page, parsed."""
    m = re.search(r'<script type="application/json" id="kgemo-data">(.*?)</script>', page, re.S)
    assert m, "no data block"
    return json.loads(m.group(1))


# -- script-safe JSON ---------------------------------------------------------------------------------------
def test_json_for_script_escapes_what_could_end_the_element_and_parses_back():
    data = {"text": "</script><!-- a & b > c \u2028 \u2029", "list": [XSS[0], XSS[1]], "n": 0.5}
    out = json_for_script(data)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in out
    assert "\\u003c/script\\u003e" in out
    assert json.loads(out) == data


def test_json_for_script_refuses_nan():
    with pytest.raises(ValueError):
        json_for_script({"p": float("nan")})


# -- the page -----------------------------------------------------------------------------------------------
def test_to_html_writes_one_self_contained_page(tmp_path):
    res = hand_result()
    out = tmp_path / "conv.html"
    text = res.to_html(out)
    assert out.read_text(encoding="utf-8") == text
    assert text.startswith("<!DOCTYPE html>")
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in text
    assert "default-src 'none'" in CSP
    # No fetch of anything: no src/href attributes, no URL but the SVG namespace name.
    assert not re.search(r"\s(src|href)\s*=", text)
    assert set(re.findall(r"https?://[^\s\"')]+", text)) <= {"http://www.w3.org/2000/svg"}
    # Exactly our two scripts: the JSON data block and the code.
    assert text.count("<script") == 2 and text.count("</script>") == 2
    assert "<title>kgemo: talk-1</title>" in text


def test_page_data_holds_the_result():
    res = hand_result()
    data = embedded_data(conversation_page([res]))
    assert data["format"] == FORMAT and data["page"] == "conversation"
    assert data["tasks"] == ["emotion"] and data["labels"]["emotion"] == list(EKMAN7)
    assert data["conversations"] == [["talk-1", None, 0, 4]]
    s = data["strings"]
    rows = data["utterances"]
    assert [r[3] for r in rows] == [t[1] for t in TURNS]
    assert [s[r[2]] for r in rows] == [t[0] for t in TURNS]
    assert [EKMAN7[r[4][0]] for r in rows] == [t[2] for t in TURNS]
    assert rows[0][5][0][EKMAN7.index("joy")] == 0.812
    assert [s[c[0]] for c in rows[1][8]] == ["pet", "joy", "smile", "animal_shelter"]
    shelter = rows[1][8][3]
    assert s[shelter[1]] == "dog" and s[shelter[2]] == "AtLocation" and shelter[3] == 1 and shelter[11] == 0
    assert [(s[e[1]], s[e[2]], e[3]) for e in rows[0][9]] == [("xReact", "proud", 0.91), ("oReact", "happy for them",
                                                                                          0.88)]
    assert rows[0][6] == [] and rows[0][7] == []           # no gold on a conversation page


def test_payload_is_compact_rounded_interned_and_trimmed():
    res = hand_result()
    res.utterances[0].concepts[0] = concept("work", "job", 0.123456, 0.654321, 0.833333, 0.7)
    data = encode_results([res, hand_result("talk-2")], top_concepts=2, top_events=1)
    assert data["utterances"][0][8][0][4:7] == [0.123, 0.654, 0.833]
    assert all(len(r[8]) <= 2 and len(r[9]) <= 1 for r in data["utterances"])
    assert len(data["strings"]) == len(set(data["strings"]))    # each string once, for both conversations
    assert data["conversations"][1] == ["talk-2", None, 4, 4]
    naive = json.dumps([res.to_dict(), hand_result("talk-2").to_dict()])
    assert len(json_for_script(encode_results([res, hand_result("talk-2")]))) < 0.6 * len(naive)


def test_several_conversations_in_one_page():
    data = embedded_data(conversation_page([hand_result("a"), hand_result("b")]))
    assert [c[0] for c in data["conversations"]] == ["a", "b"]
    assert len(data["utterances"]) == 8 and data["utterances"][4][:2] == [1, 0]


def test_markup_in_the_data_never_reaches_the_markup():
    page = xss_result().to_html()
    assert "<img" not in page and "onerror=alert(1)>" not in page and "<script>alert" not in page
    assert page.count("</script>") == 2                       # only the closing tags of our two scripts
    # The title is the one place text enters the markup: HTML-escaped.
    assert "<title>kgemo: &lt;/script&gt;&lt;script&gt;alert(&#x27;id&#x27;)&lt;/script&gt;</title>" in page
    data = embedded_data(page)                                # ... and the JSON gives the exact strings back
    assert data["conversations"][0][0] == "</script><script>alert('id')</script>"
    assert data["utterances"][0][3] == f"{XSS[0]} hello {XSS[2]}"
    assert data["strings"][data["utterances"][0][2]] == XSS[1]
    assert data["utterances"][2][3] == "plain & simple <b>bold</b> \u2028line"


def test_unknown_page_kind_and_empty_input_are_errors():
    with pytest.raises(ValueError, match="unknown page kind"):
        render_page("slides", "t", {})
    with pytest.raises(ValueError, match="no annotation results"):
        conversation_page([])


# -- with the annotator (tiny model) -------------------------------------------------------------------------
def test_annotator_result_to_html(ket_annotator):
    from annotate_data import CONVERSATION

    res = ket_annotator.annotate(CONVERSATION)
    data = embedded_data(res.to_html())
    rows = data["utterances"]
    assert [r[3] for r in rows] == [t for _, t in CONVERSATION]
    s = data["strings"]
    for u, r in zip(res, rows):
        assert [s[c[0]] for c in r[8]] == [c.concept for c in u.concepts]
        assert data["labels"]["emotion"][r[4][0]] == u.emotion
        assert r[5][0] == [round(p, 3) for p in u.probabilities["emotion"].values()]


def test_cli_annotate_html(tmp_path, ket_model_dir, monkeypatch, tiny_encoder, tiny_atomic, capsys):
    from annotate_data import CONVERSATION

    from kgemo.annotate import Annotator
    from kgemo.cli import main

    original = Annotator.from_pretrained.__func__

    def fake(cls, name_or_path="default", device=None, **kwargs):  # the saved spec names an unloadable encoder
        kwargs.pop("events")
        return original(cls, name_or_path, "cpu", encoder=tiny_encoder, events=tiny_atomic, **kwargs)

    monkeypatch.setattr(Annotator, "from_pretrained", classmethod(fake))
    conv = tmp_path / "conv.json"
    conv.write_text(json.dumps({"id": "c1", "utterances": [{"speaker": s, "text": t} for s, t in CONVERSATION]}))
    out = tmp_path / "out.html"
    assert main(["annotate", str(conv), "--model", str(ket_model_dir), "--html", str(out), "--width", "100"]) == 0
    captured = capsys.readouterr()
    assert "I got the job" in captured.out                      # the table is still printed
    assert f"wrote {out}" in captured.err
    data = embedded_data(out.read_text(encoding="utf-8"))
    assert data["conversations"][0][0] == "c1" and len(data["utterances"]) == 4
