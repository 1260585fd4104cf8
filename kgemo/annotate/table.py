"""A plain-text table of annotations for a terminal: utterance, labels, top concepts and the top ATOMIC event."""
from __future__ import annotations

import shutil
import textwrap
from typing import Iterable, Sequence

__all__ = ["format_table"]


def _fmt_labels(u, tasks: Sequence[str]) -> list[str]:
    return [f"{u.labels[t]} {u.probabilities[t][u.labels[t]]:.2f}" for t in tasks]


def _ranked_by_effect(res) -> bool:
    """Whether the concepts were ranked by occlusion (then the table shows each one's effect, not its weight)."""
    return any(c.effect is not None for u in res.utterances for c in u.concepts)


def _fmt_concepts(u, top: int, effect: bool) -> str:
    number = "{:+.2f}" if effect else "{:.2f}"  # an effect is a signed drop of the label's probability
    return ", ".join(f"{c.concept.replace('_', ' ')} {number.format(v)}" for c, v in u.shown_concepts(top)) or "-"


def _fmt_event(u) -> str:
    if not u.events:
        return "-"
    e = max(u.events, key=lambda e: (e.relation == "xReact", e.score))  # how the speaker feels reads best
    # The ATOMIC event the inference belongs to, so a reader can judge the match (a COMET tail's head is the
    # utterance itself: nothing to add).
    matched = f" (≈ {e.head})" if e.head and e.head != u.text else ""
    return f"{e.relation}: {e.tail}{matched}"


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


def format_table(results: Iterable, width: int | None = None, top: int = 3) -> str:
    """Annotations as an aligned text table, one block of lines per utterance.

    Columns: ``#``, speaker, utterance (wrapped), one column per task (``label prob``), the top ``top``
    concepts with their effects (occlusion ranking: how much the predicted label's probability drops without the
    concept) or their utterance weights (attention ranking), and one ATOMIC event (the best ``xReact`` if any, with
    the ATOMIC head it was matched to: ``xReact: relieved (≈ PersonX gets the job)``);
    the evidence columns only when a conversation has such evidence. Long cells wrap within their column, so the
    table fits ``width`` (default: the terminal's, at least 80).

    Args:
        results: :class:`~kgemo.annotate.AnnotationResult` objects; each conversation gets a header line when
            there are several.
        width: total width in characters.
        top: concepts shown per utterance.
    """
    results = list(results)
    width = max(80, width or shutil.get_terminal_size((120, 24)).columns)
    out: list[str] = []
    for k, res in enumerate(results):
        tasks = list(res.tasks) or (list(res.utterances[0].labels) if res.utterances else [])
        # Evidence columns only when there is evidence (a model without ConceptNet knowledge has no concepts).
        show_concepts = any(u.concepts for u in res.utterances)
        show_events = any(u.events for u in res.utterances)
        by_effect = _ranked_by_effect(res)
        head = ["#", "speaker", "utterance", *tasks]
        share = {2: 0.45}                                          # the flexible columns' shares of the free width
        if show_concepts:
            share[len(head)] = 0.33
            head.append("concepts (effect)" if by_effect else "concepts (weight)")
        if show_events:
            share[len(head)] = 0.22
            head.append("ATOMIC event")
        rows = []
        for u in res.utterances:
            row = [str(u.index + 1), u.speaker, u.text, *_fmt_labels(u, tasks)]
            row += [_fmt_concepts(u, top, by_effect)] if show_concepts else []
            row += [_fmt_event(u)] if show_events else []
            rows.append(row)
        n_cols = len(head)
        # Fixed columns take their natural width (capped); the utterance, concept and event columns share the
        # rest, the utterance getting the largest part.
        nat = [max(len(head[c]), *(len(r[c]) for r in rows)) if rows else len(head[c]) for c in range(n_cols)]
        fixed = {0: nat[0], 1: min(nat[1], 14)}
        for c in range(3, 3 + len(tasks)):
            fixed[c] = min(nat[c], 20)
        gaps = 2 * (n_cols - 1)
        total = sum(share.values())
        flex = {c: v / total for c, v in share.items()}
        minimum = {c: 16 if c == 2 else len(head[c]) for c in flex}
        avail = max(sum(minimum.values()), width - gaps - sum(fixed.values()))
        alloc = {c: max(minimum[c], min(nat[c], int(avail * f))) for c, f in flex.items()}
        for c in flex:  # over budget (minimums won): take it back from the widest share down to the minimums
            over = sum(alloc.values()) - avail
            if over > 0:
                alloc[c] -= min(over, alloc[c] - minimum[c])
        # What a short column does not need goes to the others that want more, the utterance first.
        for c in flex:
            spare = avail - sum(alloc.values())
            if spare <= 0:
                break
            alloc[c] += max(0, min(spare, nat[c] - alloc[c]))
        widths = [fixed.get(c, alloc.get(c, 0)) for c in range(n_cols)]
        if len(results) > 1:
            if k:
                out.append("")
            out.append(f"conversation {res.conversation_id}")
        out.append("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
        out.append("  ".join("-" * w for w in widths))
        for r in rows:
            cells = [_wrap(cell, w) for cell, w in zip(r, widths)]
            for line in range(max(len(c) for c in cells)):
                out.append("  ".join((c[line] if line < len(c) else "").ljust(w)
                                     for c, w in zip(cells, widths)).rstrip())
    return "\n".join(out) + "\n"
