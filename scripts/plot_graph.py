#!/usr/bin/env python
"""Draw the graph a builder makes for a small conversation: ``python scripts/plot_graph.py concept -o graphs/concept.png``.

The pictures in ``graphs/*.md`` come from this script (default KB, packaged encoder, offline).
"""
from __future__ import annotations

import argparse
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402

from kgemo.data import Conversation, Utterance, label_space  # noqa: E402
from kgemo.graphs import get_builder, to_networkx  # noqa: E402

SAMPLE = Conversation("sample", [
    Utterance("I finally got the job!", "Ann", {"emotion": "joy", "act": "inform"}),
    Utterance("Wow, really? When do you start?", "Bob", {"emotion": "surprise", "act": "question"}),
    Utterance("Monday. I am a bit scared though.", "Ann", {"emotion": "fear", "act": "inform"}),
], reply_to=[(0, 0), (1, 1), (2, 2), (0, 2)])

COLORS = {"utterance": "#4c72b0", "speaker": "#dd8452", "token": "#55a868", "concept": "#c44e52",
          "act": "#8172b3", "sentiment": "#937860", "event": "#da8bc3", "topic": "#8c8c8c", "centre": "#ccb974"}


def attach_example_centres(g, space) -> list[str]:
    """Add to ``g`` what the cluster-graph model attaches per batch (kgemo.adapt.centre_graph): each utterance's
    nearest centre of its own domain and of the other one. Features and centres are random here (the picture shows
    the schema); only the centres that get an edge are drawn. Returns the centre names."""
    import torch

    from kgemo.adapt import ClassCentres, centre_graph

    gen = torch.Generator().manual_seed(0)
    centres = ClassCentres(dim=4, num_classes=len(space))
    centres.centres.copy_(torch.randn(centres.centres.shape, generator=gen))
    h = torch.randn(g["utterance"].num_nodes, 4, generator=gen)
    cg = centre_graph(h, g["utterance"].domain, centres, own=1, cross=1)
    relations = [("centre", r, "utterance") for r in ("own_domain", "cross_domain")]
    used = torch.unique(torch.cat([cg[r].edge_index[0] for r in relations]))
    new_id = {int(c): i for i, c in enumerate(used)}
    g["centre"].num_nodes = len(used)
    g["centre"].domain = cg["centre"].domain[used]
    for r in relations:
        ei = cg[r].edge_index.clone()
        ei[0] = torch.tensor([new_id[int(c)] for c in ei[0]])
        g[r].edge_index = ei
    dom, cls = cg["centre"].domain[used].tolist(), cg["centre"].cls[used].tolist()
    return [f"{'source' if d == 0 else 'target'} {space.labels[c]}" for d, c in zip(dom, cls)]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("builder", help="conversation, concept, co_interactive, event, cross_domain")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--k", type=int, default=2, help="concepts per token (concept graph)")
    args = p.parse_args(argv)
    params, knowledge, spaces = {"window": 1}, {}, {"emotion": label_space("meld", "emotion")}
    if args.builder == "concept":
        from kgemo.knowledge import ConceptNetKB

        params["concepts_per_token"], knowledge = args.k, {"conceptnet": ConceptNetKB.load("default")}
    if args.builder == "co_interactive":
        params = {}
        spaces = {"act": label_space("dailydialog", "act"), "emotion": label_space("dailydialog", "emotion")}
        SAMPLE.utterances[:] = [Utterance(u.text, u.speaker, {"act": u.labels["act"],
                                                              "emotion": {"joy": "happiness"}.get(
                                                                  u.labels["emotion"], u.labels["emotion"])})
                                for u in SAMPLE.utterances]
    feats = np.zeros((len(SAMPLE), 4), np.float32)
    if args.builder == "event":
        # ATOMIC is searched with the utterances' own sentence embeddings, so this one needs the real encoder.
        from kgemo.encoders import SentenceEncoder
        from kgemo.knowledge import AtomicRetriever

        encoder = SentenceEncoder("default")
        feats = encoder.encode(SAMPLE.texts)
        params.update(tails_per_relation=1, relations=["xIntent", "xReact", "oReact"])
        knowledge = {"atomic": AtomicRetriever.load("default", encoder=encoder)}
    if args.builder == "cross_domain":
        params["source"], spaces = ["dailydialog"], {"emotion": label_space("ekman7", "emotion")}
    g = get_builder(args.builder, **params)(SAMPLE, feats, spaces, knowledge)
    names = {"utterance": [f"u{i}: {u.text[:22]}" for i, u in enumerate(SAMPLE)],
             "speaker": sorted(set(SAMPLE.speakers), key=SAMPLE.speakers.index)}
    if args.builder == "cross_domain":
        names["centre"] = attach_example_centres(g, spaces["emotion"])
    if "token" in g.node_types:
        kb = knowledge["conceptnet"]
        names["token"] = [kb.concepts[i] for i in g["token"].kid.tolist()]
        names["concept"] = [kb.concepts[i] for i in g["concept"].kid.tolist()]
    if "event" in g.node_types:
        names["event"] = [knowledge["atomic"].table.tails[i] for i in g["event"].tid.tolist()]
        names["topic"] = ["topic"]
    nxg = to_networkx(g, names)
    pos = nx.kamada_kawai_layout(nx.Graph(nxg))
    fig, ax = plt.subplots(figsize=(11, 7))
    for nt in g.node_types:
        nodes = [n for n in nxg if n[0] == nt]
        nx.draw_networkx_nodes(nxg, pos, nodelist=nodes, node_color=COLORS.get(nt, "#999"), node_size=260,
                               label=nt, ax=ax)
    styles = ["solid", "dashed", "dotted", "dashdot"]
    for k, et in enumerate(g.edge_types):
        edges = [(u, v) for u, v, d in nxg.edges(data=True) if d["type"] == et[1] and u[0] == et[0]
                 and v[0] == et[2] and u != v]
        nx.draw_networkx_edges(nxg, pos, edgelist=edges, style=styles[k % 4], alpha=0.5, arrows=True, ax=ax,
                               arrowsize=8, label=f"{et[0]} –{et[1]}→ {et[2]}")
    nx.draw_networkx_labels(nxg, pos, {n: d.get("label", f"{n[0]}{n[1]}") for n, d in nxg.nodes(data=True)},
                            font_size=7, ax=ax)
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    ax.set_title(f"'{args.builder}' graph of a 3-utterance conversation", fontsize=10)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
