"""``kgemo annotate FILE|-`` — label every utterance of a conversation file and show the evidence.

Reads JSON / JSONL / CSV (``speaker,text``), see :mod:`kgemo.annotate.inputs`; prints a table (default), JSON
(one object per conversation; a list when there are several) or JSONL (one utterance per line); ``--html OUT``
also writes the interactive page (:func:`kgemo.annotate.html_page.conversation_page`).
"""
from __future__ import annotations

import json
import os
import sys

from .argtypes import count as _count, output_file, positive as _positive

__all__ = ["add_parser", "run"]


def _similarity(text: str) -> float:
    """A cosine similarity in [-1, 1] (argparse type)."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is not a cosine similarity (between -1 and 1)")
    return value


def add_parser(sub) -> None:
    p = sub.add_parser("annotate", help="annotate a conversation file (JSON, JSONL or CSV of speaker,text; - = stdin)",
                       description="Label each utterance (emotion; sentiment/act for joint models) with the "
                                   "ConceptNet concepts and ATOMIC events behind it. Works offline with the "
                                   "embedded default model.")
    p.add_argument("input", metavar="FILE", help="conversation file (.json, .jsonl, .csv) or - for standard input")
    p.add_argument("--model", default="default", help="'default' (embedded) or a model/run folder "
                                                     "(default: %(default)s)")
    p.add_argument("--format", choices=["table", "json", "jsonl"], default="table",
                   help="output: a terminal table, JSON, or JSONL with one utterance per line (default: table)")
    p.add_argument("--input-format", choices=["json", "jsonl", "csv"],
                   help="input format (default: from the suffix, else guessed)")
    p.add_argument("--top-k", type=_count, default=5, help="concepts per utterance (default: %(default)s; the table "
                   "shows up to 3)")
    p.add_argument("--events", type=_count, default=1, help="ATOMIC events per relation (0 = none; default: 1)")
    p.add_argument("--min-event-similarity", type=_similarity, default=None, metavar="S",
                   help="for a model that does not read ATOMIC (KET, the default), show the inferences of the nearest "
                   "ATOMIC event when the utterance's cosine similarity to it is at least S (default: none shown; "
                   "no similarity made them clearly better than a random event's on dev data, see docs/annotate.md)")
    p.add_argument("--evidence", choices=["occlusion", "attention"], default="occlusion",
                   help="rank concepts by occlusion (what removing each does to the label; default) or by the "
                   "model's attention weights (one forward pass: faster on large inputs)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    p.add_argument("--batch-size", type=_positive, default=16, help="conversations per batch (default: %(default)s)")
    p.add_argument("--width", type=_positive, help="table width (default: the terminal's)")
    p.add_argument("-o", "--output", type=output_file, help="write to this file instead of standard output")
    p.add_argument("--html", metavar="OUT", type=output_file, help="also write an interactive page (chat turns, "
                   "labels, evidence graphs; one self-contained file) to OUT")
    p.set_defaults(func=run)


def _write_results(results, args, out) -> None:
    from kgemo.annotate import format_table

    if args.format == "jsonl":
        for res in results:  # streamed: each conversation is written as soon as it is annotated
            for u in res.utterances:
                out.write(json.dumps({"conversation_id": res.conversation_id, **u.to_dict()},
                                     ensure_ascii=False) + "\n")
            out.flush()
        return
    results = list(results)
    if args.format == "json":
        payload = results[0].to_dict() if len(results) == 1 else [r.to_dict() for r in results]
        out.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(format_table(results, width=args.width))


def run(args) -> int:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("always", UserWarning)  # every cut utterance / missing speaker, not just the first
        warnings.showwarning = _show_warning
        return _run(args)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    # One readable line per warning, not Python's file:line form.
    print(f"kgemo: warning: {message}", file=sys.stderr)


def _quiet_loaders(verbose: bool) -> None:
    """Keep the terminal for the table: no faiss CPU-feature probing lines, no weight-loading progress bar."""
    import logging

    if verbose:
        return
    logging.getLogger("faiss").setLevel(logging.WARNING)
    # transformers reads this when (and only if) it is imported: the packaged encoder runs without it, and
    # importing it just to silence it would cost a second of start-up.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _run(args) -> int:
    from kgemo.annotate import Annotator, read_conversations
    from kgemo.storage import atomic_write

    _quiet_loaders(getattr(args, "verbose", False))

    # Read and validate the whole input before loading the model: a bad file fails in a second.
    conversations = read_conversations(args.input, args.input_format)
    ann = Annotator.from_pretrained(args.model, device=args.device, top_k=args.top_k, top_events=args.events,
                                    events="default" if args.events > 0 else None, batch_size=args.batch_size,
                                    evidence=args.evidence, min_event_similarity=args.min_event_similarity)
    results = ann.annotate_many(conversations, batch_size=args.batch_size)
    if args.html:
        results = list(results)  # the page needs them all; the text output below then reads the list
    if args.output:
        with atomic_write(args.output, "w", encoding="utf-8") as fh:
            _write_results(results, args, fh)
    else:
        _write_results(results, args, sys.stdout)
    if args.html:
        from kgemo.annotate.html_page import conversation_page

        with atomic_write(args.html, "w", encoding="utf-8") as fh:
            fh.write(conversation_page(results))
        print(f"kgemo: wrote {args.html}", file=sys.stderr)
    return 0
