#!/usr/bin/env python
"""Picture of an annotation and its evidence: utterances, predicted labels, top concepts and ATOMIC events.

    python scripts/plot_evidence.py                       # examples/conversation.json -> docs/evidence.png
    python scripts/plot_evidence.py conv.json --model runs/x/seed0/model --out evidence.png --top-k 4

One row per utterance: the speaker and text with the predicted emotion (and its probability) on the left; the
top ConceptNet concepts (labelled "word → concept", coloured by the concept's valence) as bars of their occlusion
effect — how much the predicted label's probability drops without the concept, the annotator's default ranking;
those under ``kgemo.annotate.result.MIN_EFFECT`` are left out, as in the CLI table
(``UtteranceAnnotation.shown_concepts``) — or, for an annotator ranking by attention, of their utterance weight
w_c = Σ_t β_t α_{c,t}; and, when the annotator shows ATOMIC events (a model that reads them, or a match at
``min_event_similarity`` or above; none for the default, see docs/annotate.md), the inferences of the matched
ATOMIC event (relation: tail, with that event and its similarity) on the right.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: One colour per Ekman-7 emotion (other labels get grey).
COLOURS = {"neutral": "#9e9e9e", "joy": "#f4b400", "surprise": "#ab47bc", "anger": "#e53935",
           "sadness": "#1e88e5", "disgust": "#43a047", "fear": "#6d4c41"}
RELATION_TEXT = {"xReact": "speaker feels", "oReact": "others feel", "xIntent": "speaker wants",
                 "xWant": "speaker then wants", "xAttr": "speaker is seen as", "xEffect": "effect on speaker",
                 "oEffect": "effect on others", "oWant": "others then want", "xNeed": "speaker needed"}


def plot(result, out: Path, top_k: int = 4, title: str | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import colors

    n = len(result)
    # The ATOMIC column only when the annotator shows events (a model that reads them, or a close enough match).
    show_events = any(u.events for u in result)
    ratios = [4.0, 2.8, 3.6] if show_events else [4.0, 3.4]
    fig = plt.figure(figsize=(15 if show_events else 12, 1.25 * n + 1.1), dpi=110)
    gs = fig.add_gridspec(n, len(ratios), width_ratios=ratios, wspace=0.62, hspace=0.35,
                          left=0.01, right=0.99, top=1 - 0.75 / (1.25 * n + 1.1), bottom=0.02)
    norm = colors.Normalize(0.0, 1.0)
    cmap = matplotlib.colormaps["RdYlGn"]
    by_effect = any(c.effect is not None for u in result for c in u.concepts)
    xmax = max([v for u in result for _, v in u.shown_concepts(top_k)] + [0.05]) * 1.05
    for i, u in enumerate(result):
        # Left: utterance and label.
        ax = fig.add_subplot(gs[i, 0])
        ax.axis("off")
        label = u.labels.get("emotion") or next(iter(u.labels.values()))
        task = "emotion" if "emotion" in u.labels else next(iter(u.labels))
        colour = COLOURS.get(label, "#9e9e9e")
        ax.add_patch(plt.Rectangle((0, 0.08), 0.012, 0.84, color=colour, transform=ax.transAxes))
        text = "\n".join(textwrap.wrap(u.text, 58)[:3])
        ax.text(0.03, 0.92, f"{u.index + 1}. {u.speaker}", weight="bold", fontsize=10, va="top",
                transform=ax.transAxes)
        ax.text(0.03, 0.66, text, fontsize=9.5, va="top", transform=ax.transAxes)
        others = "  ".join(f"{t}: {u.labels[t]}" for t in u.labels if t != task)
        ax.text(0.99, 0.92, f"{label} {u.probability(task):.2f}", ha="right", va="top", fontsize=10,
                weight="bold", color="white", transform=ax.transAxes,
                bbox={"boxstyle": "round,pad=0.3", "fc": colour, "ec": "none"})
        if others:
            ax.text(0.99, 0.55, others, ha="right", va="top", fontsize=8.5, transform=ax.transAxes)

        # Middle: concept bars, "word → concept" on the left, the effect (or weight) at the end of the bar.
        ax = fig.add_subplot(gs[i, 1])
        bars = u.shown_concepts(top_k)[::-1]
        if bars:
            ys = list(range(len(bars)))
            ax.barh(ys, [v for _, v in bars], color=[cmap(norm(c.vad[0])) if c.vad_known else "#cfd8dc"
                                                     for c, _ in bars], height=0.72)
            ax.set_yticks(ys, [textwrap.shorten(f"{c.token} → {c.concept.replace('_', ' ')}", 34, placeholder="…")
                               for c, _ in bars], fontsize=8.5)
            for y, (c, v) in zip(ys, bars):
                ax.text(v + xmax * 0.015, y, f"{'+' if by_effect else ''}{v:.2f}", va="center", fontsize=8,
                        color="#455a64")
            ax.set_ylim(-0.6, top_k - 0.4)
        else:
            ax.set_yticks([])
            none = "no concept moved the label" if by_effect and u.concepts else "no ConceptNet concept"
            ax.text(0.5, 0.5, none, ha="center", va="center", fontsize=8.5, color="#78909c",
                    transform=ax.transAxes)
        ax.set_xlim(0, xmax * 1.15)
        ax.set_xticks([])
        ax.tick_params(axis="y", length=0)
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
        if i == 0:
            what = ("effect: drop of the label's probability without the concept" if by_effect else
                    "weight Σ_t β_t α_c,t")
            ax.set_title(f"top ConceptNet concepts (word → concept),{' ' if show_events else chr(10)}{what}\n"
                         "bar colour: valence (red negative, green positive, grey unknown)", fontsize=9)

        # Right: ATOMIC events.
        if not show_events:
            continue
        ax = fig.add_subplot(gs[i, 2])
        ax.axis("off")
        # Only the inferences of the best-matched event, so that the "matched:" line below is true of each (the
        # annotator walks further heads for a relation the nearest one lacks).
        events = [e for e in u.events if e.head == u.events[0].head][:3] if u.events else []
        lines = [f"{RELATION_TEXT.get(e.relation, e.relation)}: {e.tail.rstrip('.')}  ({e.score:.2f})"
                 for e in events]
        ax.text(0.02, 0.92, "\n".join(textwrap.shorten(x, 62, placeholder="…") for x in lines) or "-", va="top",
                fontsize=8.5, transform=ax.transAxes, linespacing=1.5)
        if u.events:
            head = textwrap.shorten(u.events[0].head, 60, placeholder="…")
            ax.text(0.02, 0.08, f"matched: {head}", fontsize=7.5, color="#78909c", transform=ax.transAxes)
        if i == 0:
            ax.set_title("ATOMIC inferences (retrieval similarity)", fontsize=9.5)
    fig.suptitle(title or f"kgemo annotate — model: {result.model.get('name', '?')}", fontsize=12, x=0.01,
                 ha="left", y=1 - 0.2 / (1.25 * n + 1.1))
    out.parent.mkdir(parents=True, exist_ok=True)
    from kgemo.storage import atomic_write

    with atomic_write(out, "wb") as fh:
        fig.savefig(fh, format="png")
    plt.close(fig)
    return out


def main(argv=None) -> int:
    from kgemo.annotate import Annotator, read_conversations

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", nargs="?", default=str(ROOT / "examples" / "conversation.json"))
    p.add_argument("--model", default="default")
    p.add_argument("--out", default=str(ROOT / "docs" / "evidence.png"))
    p.add_argument("--top-k", type=int, default=4)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    conv = read_conversations(args.input)[0]
    ann = Annotator.from_pretrained(args.model, device=args.device, top_k=args.top_k)
    out = plot(ann.annotate(conv), Path(args.out), args.top_k)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
