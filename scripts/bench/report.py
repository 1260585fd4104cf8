"""HTML report pages: file size and time to first render in headless chromium, MELD test with the default model.

Builds the split gallery that ``kgemo report default --dataset meld --split test --html OUT`` writes (280
conversations, 2,610 utterances, 5 concepts and one ATOMIC event per relation for each) and opens it in Debian's
headless chromium (selenium + chromedriver; fresh profile, no network):

* file size of the page, of its embedded JSON, and gzip-compressed; beside it the size the same results take as
  plain ``AnnotationResult.to_dict`` JSON (6-decimal floats, every key repeated) — the naive embedding;
* time to first render, read from the page itself: ``performance.now()`` (milliseconds since navigation start)
  when the script has built the first view (``rendered``) and in the frame after the one that drew it
  (``painted``), and the browser's first-contentful-paint (all content is drawn by the script, so this is the first
  paint of the view); median of ``--repeat`` fresh loads;
* the same page with every row rendered at once (``#size=all``) — the baseline the pagination is measured against;
* interactions, timed in the page (``performance.now()`` around the event and a forced layout): a filter change,
  the next page, a confusion-matrix cell, opening a row's conversation and evidence graph;
* the conversation page of examples/conversation.json for scale.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

# Timed in the page: the handler runs synchronously inside dispatchEvent / click; reading offsetHeight forces the
# layout the change causes, so the time covers DOM work and layout (not the paint after it).
_INTERACT = """
const t0 = performance.now();
const what = arguments[0];
if (what === 'filter') { const s = document.getElementById('f-error'); s.value = 'errors';
  s.dispatchEvent(new Event('change')); }
else if (what === 'reset') { document.getElementById('f-reset').click(); }
else if (what === 'next') { document.getElementById('next').click(); }
else if (what === 'cell') { document.querySelector('#confusion td[data-gold="fear"][data-pred="sadness"]').click(); }
else if (what === 'row') { document.querySelector('#rows tr.row').click(); }
void document.body.offsetHeight;
return performance.now() - t0;
"""


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="default", help="model or run folder (default: the shipped model)")
    parser.add_argument("--dataset", default="meld")
    parser.add_argument("--split", default="test")
    parser.add_argument("--repeat", type=int, default=5, help="page loads per variant; the median is reported")
    parser.add_argument("--keep", type=Path, help="also write the gallery page here")


def _median(values):
    return round(statistics.median(values), 1)


def _load(driver, page: Path, fragment: str, repeat: int) -> dict:
    from screenshot_report import open_page

    runs = []
    for _ in range(repeat):
        timing = open_page(driver, page, fragment)
        fcp, deadline = None, time.time() + 5
        while fcp is None and time.time() < deadline:  # the paint entry is queued a little after the frame
            fcp = driver.execute_script("const e = performance.getEntriesByName('first-contentful-paint'); "
                                        "return e.length ? e[0].startTime : null")
            if fcp is None:
                time.sleep(0.02)
        nodes = driver.execute_script("return document.getElementsByTagName('*').length")
        runs.append({**timing, "fcp": fcp, "nodes": nodes})
    fcp = [r["fcp"] for r in runs if r["fcp"] is not None]
    return {"parsed_ms": _median([r["parsed"] for r in runs]), "rendered_ms": _median([r["rendered"] for r in runs]),
            "painted_ms": _median([r["painted"] for r in runs]), "fcp_ms": _median(fcp) if fcp else None,
            "dom_elements": runs[-1]["nodes"], "rows_in_dom": runs[-1].get("rows")}


def _interact(driver, page: Path, repeat: int) -> dict[str, float]:
    from screenshot_report import open_page

    out: dict[str, list[float]] = {}
    for _ in range(repeat):
        open_page(driver, page)
        for what in ("filter", "reset", "next", "cell", "row"):
            out.setdefault(what, []).append(driver.execute_script(_INTERACT, what))
    return {k: _median(v) for k, v in out.items()}


def _sizes(page: Path, results) -> dict:
    text = page.read_text(encoding="utf-8")
    data = re.search(r'<script type="application/json" id="kgemo-data">(.*?)</script>', text, re.S).group(1)
    naive = json.dumps([r.to_dict() for r in results], ensure_ascii=False)
    raw = text.encode("utf-8")
    return {"file_mb": round(len(raw) / 1e6, 3), "json_mb": round(len(data.encode("utf-8")) / 1e6, 3),
            "gzip_mb": round(len(gzip.compress(raw, 6)) / 1e6, 3),
            "naive_json_mb": round(len(naive.encode("utf-8")) / 1e6, 3)}


def run(args) -> dict:
    from screenshot_report import chromium

    from kgemo import Annotator
    from kgemo.annotate import read_conversations
    from kgemo.annotate.split_report import SplitReport

    load_before = os.getloadavg()
    t = time.perf_counter()
    report = SplitReport.from_model(args.model, args.split, datasets=[args.dataset], progress=False)
    annotate_s = time.perf_counter() - t
    n = report.num_utterances
    with tempfile.TemporaryDirectory() as tmp:
        gallery = Path(tmp) / "gallery.html"
        t = time.perf_counter()
        report.to_html(gallery)
        write_s = time.perf_counter() - t
        if args.keep:
            args.keep.write_bytes(gallery.read_bytes())
        conv_res = Annotator.from_pretrained(args.model).annotate(
            read_conversations(ROOT / "examples" / "conversation.json")[0])
        conv = Path(tmp) / "conversation.html"
        conv_res.to_html(conv)
        sizes = _sizes(gallery, report.results)
        conv_sizes = _sizes(conv, [conv_res])
        with chromium() as driver:
            browser = driver.capabilities.get("browserVersion", "?")
            _load(driver, gallery, "", 1)                          # warm-up: browser caches, code cache
            paged = _load(driver, gallery, "", args.repeat)
            every = _load(driver, gallery, "#size=all", args.repeat)
            conv_timing = _load(driver, conv, "#turn=3", args.repeat)
            interactions = _interact(driver, gallery, args.repeat)

    load_after = os.getloadavg()
    rows = [
        {"page": f"gallery, {args.dataset} {args.split}, 50 rows per page (kgemo report)", "utterances": n, **sizes,
         **paged, "painted_vs_all_rows": round(paged["painted_ms"] / every["painted_ms"], 3)},
        {"page": "same page, all rows rendered at once (#size=all; baseline)", "utterances": n, **sizes, **every,
         "painted_vs_all_rows": 1.0},
        {"page": "conversation page, examples/conversation.json (turn 3 open)", "utterances": len(conv_res),
         **conv_sizes, **conv_timing},
    ]
    labels = {"filter": "error-type filter 'any error'", "reset": "reset filters", "next": "next page",
              "cell": "confusion cell fear→sadness", "row": "open a row (conversation + evidence graph)"}
    rows += [{"page": f"  interaction: {labels[k]}", "interaction_ms": v} for k, v in interactions.items()]
    paint_ratio = every["painted_ms"] / paged["painted_ms"]
    return {
        "description": (__doc__ or "").strip().splitlines()[0],
        "rows": rows,
        "notes": [
            f"{n} utterances in {len(report.results)} conversations; model {args.model}; annotating the split took "
            f"{annotate_s:.1f} s (model load and first-use caches included), writing the page {write_s:.2f} s.",
            f"Page {sizes['file_mb']:.2f} MB ({sizes['gzip_mb']:.2f} MB gzipped); its embedded JSON "
            f"{sizes['json_mb']:.2f} MB is {sizes['naive_json_mb'] / sizes['json_mb']:.1f}x smaller than the same "
            f"results as AnnotationResult.to_dict JSON ({sizes['naive_json_mb']:.2f} MB): arrays instead of keyed "
            "objects, strings interned, floats to 3 decimals.",
            f"Time to first render (median of {args.repeat} loads, ms from navigation start, file:// URL): the "
            f"first view is built at {paged['rendered_ms']:.0f} ms and painted by {paged['painted_ms']:.0f} ms "
            f"(first contentful paint {paged['fcp_ms'] or float('nan'):.0f} ms); rendering every row instead takes "
            f"{every['painted_ms']:.0f} ms ({paint_ratio:.1f}x) and {every['dom_elements']} DOM elements instead of "
            f"{paged['dom_elements']}.",
            "Interactions (median ms, DOM work + layout): " + ", ".join(
                f"{labels[k]} {v:.1f}" for k, v in interactions.items()) + ".",
            f"Browser: Debian chromium {browser}, headless, --disable-gpu; selenium + chromedriver. Load average "
            f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (2-core machine shared with other work).",
        ],
    }
