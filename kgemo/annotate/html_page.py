"""Self-contained HTML pages of annotations: one file each, no network at view time.

* :func:`conversation_page` — a conversation as chat turns with the predicted label per task and a confidence
  bar; clicking a turn opens its evidence subgraph (utterance → words → ConceptNet concepts coloured by valence,
  ATOMIC events coloured by relation; the model's weights as edge thickness, the numbers on hover). What
  :meth:`AnnotationResult.to_html <kgemo.annotate.AnnotationResult.to_html>` and ``kgemo annotate --html`` write.
* :func:`gallery_page` — a whole split: predicted vs gold per utterance, filters, the confusion matrix and
  per-class F1 (built by :class:`kgemo.annotate.split_report.SplitReport`, ``kgemo report``).
* :func:`encode_results` — the compact JSON both pages embed; :func:`json_for_script` — JSON that is safe inside
  ``<script>``.

**The page** (:func:`render_page`; docs/report.md). Text is data, never markup: the annotations travel as JSON in a
``<script type="application/json">`` block with ``<``, ``>``, ``&``, U+2028 and U+2029 escaped, and the page's
script puts them on screen with ``textContent``; the only text written into the markup itself is the
``<title>`` (HTML-escaped). The Content-Security-Policy (:data:`CSP`) allows inline styles and scripts and
``data:`` images only — nothing is fetched — and the CSS / JS are kgemo's own files (``kgemo/resources/html/``)
copied into the page.

**The data** (:func:`encode_results`). A page for a whole test split holds thousands of utterances, each with its
class probabilities, concepts and events; as :meth:`AnnotationResult.to_dict
<kgemo.annotate.AnnotationResult.to_dict>` objects that is mostly repeated keys and 6-decimal floats. Here every
record is a fixed-position array, every speaker, concept, word, relation and ATOMIC string is stored once in
``strings`` and referred to by index, and every float is rounded to ``digits`` (3) decimals — enough for a bar or
a tooltip.

Layout (``format`` ``"kgemo-html/1"``; the page's script, ``evidence.js``, reads it back)::

    {"format": "kgemo-html/1", "tasks": ["emotion"], "labels": {"emotion": ["neutral", "joy", ...]},
     "model": {...}, "strings": ["Maya", "guess", ...],
     "conversations": [[id, dataset or null, first utterance row, n utterances], ...],
     "utterances": [[conversation row, index, speaker, text, [pred id per task], [[p per label] per task],
                     [gold id per task, -1 = none], [error code per task], [concept...], [event...],
                     truncated 0/1], ...]}

    concept: [concept, token, relation, direction 0 = out / 1 = in, weight, attention, token_weight,
              confidence, valence, arousal, dominance, vad_known 0/1, source]      (strings as indices)
    event:   [head, relation, tail, score, source, provider]                       (strings as indices)
"""
from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

__all__ = ["conversation_page", "gallery_page", "render_page", "json_for_script", "encode_results", "CSP",
           "FORMAT"]

FORMAT = "kgemo-html/1"


class _Strings:
    """An interning table: each distinct string gets one index in order of first use."""

    def __init__(self):
        self.items: list[str] = []
        self._ids: dict[str, int] = {}

    def __call__(self, s: str) -> int:
        i = self._ids.get(s)
        if i is None:
            i = self._ids[s] = len(self.items)
            self.items.append(s)
        return i


def _task_labels(results: Sequence[Any], tasks: Sequence[str]) -> dict[str, list[str]]:
    """Each task's label names in the model's order (the order of the probability tables)."""
    for res in results:
        for u in res.utterances:
            return {t: list(u.probabilities[t]) for t in tasks}
    return {t: [] for t in tasks}


def encode_results(results: Iterable[Any], *, tasks: Sequence[str] | None = None,
                   labels: Mapping[str, Sequence[str]] | None = None,
                   gold: Sequence[Sequence[Sequence[int]]] | None = None,
                   errors: Sequence[Sequence[Sequence[int]]] | None = None,
                   datasets: Sequence[str | None] | None = None, top_concepts: int | None = None,
                   top_events: int | None = None, digits: int = 3) -> dict[str, Any]:
    """Annotation results as the pages' compact JSON (see the module docstring for the layout).

    Args:
        results: :class:`~kgemo.annotate.AnnotationResult` objects (one per conversation).
        tasks: tasks to show (default: the first result's ``tasks``).
        labels: task → label names in id order (default: the order of the probability tables).
        gold: per result, per utterance, the gold label id of each task (-1 = unlabelled); ``None``: no gold.
        errors: per result, per utterance, an error-type code per task (the gallery's, see
            :mod:`kgemo.annotate.split_report`); ``None``: none.
        datasets: per result, the dataset it came from (``None`` for user input).
        top_concepts, top_events: keep at most this many concepts / events per utterance (default: all the
            result has).
        digits: decimals kept for every float.

    Returns:
        A dict of plain JSON types.
    """
    results = list(results)
    tasks = list(tasks if tasks is not None else (results[0].tasks if results else []))
    if not tasks and results and results[0].utterances:
        tasks = list(results[0].utterances[0].labels)
    label_lists = {t: list(v) for t, v in labels.items()} if labels is not None else _task_labels(results, tasks)
    label_ids = {t: {name: i for i, name in enumerate(label_lists[t])} for t in tasks}
    s = _Strings()

    def r(x: float) -> float:
        return round(float(x), digits)

    conversations, rows = [], []
    for k, res in enumerate(results):
        conversations.append([str(res.conversation_id), datasets[k] if datasets is not None else None, len(rows),
                              len(res.utterances)])
        for j, u in enumerate(res.utterances):
            concepts = u.concepts if top_concepts is None else u.concepts[:top_concepts]
            events = u.events if top_events is None else u.events[:top_events]
            rows.append([
                k, int(u.index), s(u.speaker), u.text,
                [label_ids[t][u.labels[t]] for t in tasks],
                [[r(u.probabilities[t].get(name, 0.0)) for name in label_lists[t]] for t in tasks],
                list(gold[k][j]) if gold is not None else [],
                list(errors[k][j]) if errors is not None else [],
                [[s(c.concept), s(c.token), s(c.relation), 1 if c.direction == "in" else 0, r(c.weight),
                  r(c.attention), r(c.token_weight), r(c.confidence), r(c.vad[0]), r(c.vad[1]), r(c.vad[2]),
                  1 if c.vad_known else 0, s(c.source)] for c in concepts],
                [[s(e.head), s(e.relation), s(e.tail), r(e.score), s(e.source), s(e.provider)] for e in events],
                1 if u.truncated else 0,
            ])
    model = dict(results[0].model) if results else {}
    return {"format": FORMAT, "tasks": tasks, "labels": label_lists, "model": model, "strings": s.items,
            "conversations": conversations, "utterances": rows}


# -- the page ----------------------------------------------------------------------------------------------
#: The page's Content-Security-Policy: no fetch, frame, font or remote image; inline style and script only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
ASSETS = Path(__file__).resolve().parent.parent / "resources" / "html"
#: Scripts of each page kind, in order (evidence.js holds what both pages share).
_SCRIPTS = {"conversation": ("evidence.js", "conversation.js"), "gallery": ("evidence.js", "gallery.js")}

# In a <script> element the HTML parser ends the element at the first "</script" and treats "<!--" specially,
# whatever the JSON means; JavaScript (before ES2019) ends string literals at U+2028/9. Escaping these characters
# as JSON \u escapes keeps the JSON equal and the element closed only by its own end tag.
_SCRIPT_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                              "\u2029": "\\u2029"})


def json_for_script(data: Any) -> str:
    """``data`` as compact JSON safe to place between ``<script type="application/json">`` tags.

    ``<``, ``>``, ``&``, U+2028 and U+2029 become ``\\u003c``-style escapes (only string contents can hold them,
    so ``JSON.parse`` gives back the same text); NaN and infinities are refused.

    Example:
        >>> json_for_script({"text": "</script><b>hi</b>"})
        '{"text":"\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003ehi\\\\u003c/b\\\\u003e"}'
    """
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).translate(_SCRIPT_SAFE)


@lru_cache(maxsize=None)
def _asset(name: str) -> str:
    text = (ASSETS / name).read_text(encoding="utf-8")
    # An asset is copied into a <style>/<script> element verbatim; these would end it early.
    if re.search(r"</(script|style)|<!--", text, re.IGNORECASE):
        raise ValueError(f"{ASSETS / name}: contains '</script', '</style' or '<!--', which would break the page")
    return text


def render_page(kind: str, title: str, data: Mapping[str, Any]) -> str:
    """A complete HTML document of page ``kind`` (``"conversation"`` or ``"gallery"``) showing ``data``."""
    if kind not in _SCRIPTS:
        raise ValueError(f"unknown page kind {kind!r}; known: {sorted(_SCRIPTS)}")
    from .. import __version__

    script = "\n".join(_asset(name) for name in _SCRIPTS[kind])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<meta name=\"generator\" content=\"kgemo {html.escape(__version__)}\">\n"
        f"<title>{html.escape(title)}</title>\n<style>\n{_asset('kgemo.css')}</style>\n</head>\n"
        f"<body data-page=\"{kind}\">\n<noscript>This page needs JavaScript to show the annotations.</noscript>\n"
        "<div id=\"app\"></div>\n"
        f"<script type=\"application/json\" id=\"kgemo-data\">{json_for_script(data)}</script>\n"
        f"<script>\n{script}</script>\n</body>\n</html>\n"
    )


def conversation_page(results: Iterable[Any], title: str | None = None, *, top_concepts: int | None = None,
                      top_events: int | None = None) -> str:
    """The chat view of one or more annotated conversations (a selector switches between several).

    Args:
        results: :class:`~kgemo.annotate.AnnotationResult` objects.
        title: the page title (default: ``kgemo: <conversation id>``).
        top_concepts, top_events: evidence kept per utterance (default: all the results hold).
    """
    results = list(results)
    if not results:
        raise ValueError("no annotation results to show")
    data = encode_results(results, top_concepts=top_concepts, top_events=top_events)
    data["page"] = "conversation"
    if title is None:
        title = f"kgemo: {results[0].conversation_id}" + (f" and {len(results) - 1} more" if len(results) > 1 else "")
    return render_page("conversation", title, data)


def gallery_page(data: Mapping[str, Any], title: str) -> str:
    """The split gallery for ``data`` (:func:`encode_results` output with gold labels and error codes, plus
    ``split``, ``datasets``, ``errors`` and ``scores``; see :class:`kgemo.annotate.split_report.SplitReport`)."""
    return render_page("gallery", title, {**data, "page": "gallery"})
