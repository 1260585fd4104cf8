#!/usr/bin/env python
"""Utterance states before and after adaptation, in 2-D: ``python scripts/plot_adaptation.py BEFORE AFTER -o PNG``.

BEFORE and AFTER are model folders (``runs/<name>/seed0/model``), e.g. the source-only and the cluster-graph runs of
one direction. For each, the states its classifier reads are computed for a sample of the source's and the target's
test utterances (the same utterances for both models), embedded together in 2-D by t-SNE (or UMAP when installed
and ``--method umap``), and drawn coloured by domain (top row) and by gold class (bottom row). Panel titles give
how well a logistic regression tells the domains apart from the full states (5-fold accuracy; 50% = aligned).

    python scripts/plot_adaptation.py runs/adapt_dailydialog_to_meld_source_only/seed0/model \\
        runs/adapt_dailydialog_to_meld/seed0/model -o docs/adapt_dailydialog_to_meld.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

DOMAIN_COLORS = ("#4c72b0", "#dd8452")


def states(model_dir: str, split: str, per_domain: int, seed: int):
    """(states [n, F], domain [n], gold class [n], label names, (source, target)) for a sample of ``split``."""
    from kgemo.graphs import batches
    from kgemo.pipeline import load_model_and_pipeline
    from kgemo.training import DataConfig, prepare_data

    model, pipeline, spec = load_model_and_pipeline(model_dir)
    info = spec.data
    source, target = info["datasets"][0], (info.get("target_datasets") or [None])[0]
    if target is None:
        raise SystemExit(f"{model_dir}: not an adaptation run (no target_datasets recorded)")
    task = model.tasks[0]
    out_h, out_d, out_y = [], [], []
    for domain, dataset in enumerate((source, target)):
        data = DataConfig(datasets=[dataset], tasks=list(info["tasks"]), label_space=info.get("label_space"),
                          encoder=spec.encoder)
        graphs = prepare_data(data, splits=(split,), pipeline=pipeline).graphs[split]
        hs, ys = [], []
        with torch.no_grad():
            for batch in batches(graphs, 64, pipeline.transform):
                hs.append(model._encode(batch)[0])
                ys.append(batch["utterance"][f"y_{task}"])
        h, y = torch.cat(hs).numpy(), torch.cat(ys).numpy()
        pick = np.random.default_rng(seed + domain).choice(len(h), size=min(per_domain, len(h)), replace=False)
        out_h.append(h[pick]), out_d.append(np.full(len(pick), domain)), out_y.append(y[pick])
    return (np.concatenate(out_h), np.concatenate(out_d), np.concatenate(out_y),
            list(model.label_spaces[task].labels), (source, target))


def embed(x: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method == "umap":
        import umap  # optional

        return umap.UMAP(random_state=seed).fit_transform(x)
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, init="pca", perplexity=30, random_state=seed).fit_transform(x)


def domain_separability(x: np.ndarray, d: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    return 100 * float(cross_val_score(LogisticRegression(max_iter=2000), x, d, cv=5).mean())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before", help="model folder before adaptation (e.g. the source-only run)")
    p.add_argument("after", help="model folder after adaptation (e.g. the cluster-graph run)")
    p.add_argument("-o", "--out", required=True, help="PNG to write")
    p.add_argument("--split", default="test")
    p.add_argument("--per-domain", type=int, default=1500, help="utterances sampled per domain")
    p.add_argument("--method", choices=("tsne", "umap"), default="tsne")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--labels", nargs=2, default=("before: source-only", "after: cluster graph"),
                   metavar=("BEFORE", "AFTER"), help="panel titles")
    args = p.parse_args(argv)
    fig, axes = plt.subplots(2, 2, figsize=(12, 11))
    for col, (model_dir, title) in enumerate(zip((args.before, args.after), args.labels)):
        h, d, y, names, (source, target) = states(model_dir, args.split, args.per_domain, args.seed)
        sep = domain_separability(h, d)
        xy = embed(h, args.method, args.seed)
        ax = axes[0, col]
        for dom, name in enumerate((source, target)):
            m = d == dom
            ax.scatter(xy[m, 0], xy[m, 1], s=4, alpha=0.5, c=DOMAIN_COLORS[dom], label=f"{name} ({args.split})")
        ax.set_title(f"{title}\ndomains told apart by a linear probe: {sep:.1f}%")
        ax.legend(markerscale=4, loc="best")
        ax = axes[1, col]
        cmap = plt.get_cmap("tab10")
        for c, name in enumerate(names):
            for dom, marker in enumerate(("o", "^")):
                m = (y == c) & (d == dom)
                ax.scatter(xy[m, 0], xy[m, 1], s=5 if name != "neutral" else 2, alpha=0.6 if name != "neutral"
                           else 0.15, c=[cmap(c)], marker=marker,
                           label=f"{name}" if dom == 0 else None)
        ax.set_title(f"{title}: gold class (o {source}, ^ {target})")
        ax.legend(markerscale=3, fontsize=8, loc="best")
        for ax in axes[:, col]:
            ax.set_xticks([]), ax.set_yticks([])
        print(f"{model_dir}: domain probe accuracy {sep:.1f}%", file=sys.stderr)
    fig.suptitle(f"{source} → {target}: utterance states the classifier reads ({args.method.upper()}, "
                 f"{args.per_domain} {args.split} utterances per domain)")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
