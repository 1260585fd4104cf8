r"""Occlusion: what each ConceptNet concept does to its utterance's prediction.

The attention weights of a knowledge model say where it looked, not what changed its answer. The occlusion effect
of concept :math:`c` on utterance :math:`i` is

.. math::
    \Delta_{c,i} = p(\hat y_i \mid G) - p(\hat y_i \mid G \setminus \{c \to t : t \in i\})

— the drop of the predicted label's probability when the concept's edges into the utterance's tokens are removed
(the rest of the conversation untouched). Positive: the concept supports the label; negative: it argues against
it. Ranking evidence by :math:`\Delta` makes the top concepts the ones the prediction rests on (measured by
``scripts/benchmark.py evidence``: concept comprehensiveness against random concepts). All perturbed copies of a
conversation run as one batch; a model with ``occluded_logits`` (KET) computes the knowledge once and reruns
only what each removal touches.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch_geometric.data import Batch, HeteroData

from .calibration import calibrate_probabilities

__all__ = ["LINK", "concept_edges", "keep_edges", "drop_edges", "occlusion_effects"]

LINK = ("concept", "linked", "token")


def concept_edges(g: HeteroData) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per ``(concept, linked, token)`` edge of ``g``: its concept node, its token, the utterance of that token, and
    whether it may be removed or counted as evidence (not the word's own concept, ``is_self``)."""
    link = g[LINK]
    src, dst = link.edge_index.numpy()
    ok = ~link.is_self.numpy() if "is_self" in link else np.ones(len(src), bool)
    tok_utt = np.empty(g["token"].num_nodes, np.int64)
    t_edge = g["token", "in", "utterance"].edge_index.numpy()
    tok_utt[t_edge[0]] = t_edge[1]
    return src, dst, tok_utt[dst], ok


def drop_edges(g: HeteroData, drops: Sequence[np.ndarray]) -> Batch:
    """One batch of ``len(drops)`` copies of ``g``, copy ``m`` without the concept edges where ``drops[m]`` is
    True (a boolean mask over ``g``'s ``(concept, linked, token)`` edges)."""
    batch = Batch.from_data_list([g] * len(drops))
    keep = torch.from_numpy(~np.concatenate(drops)) if drops else torch.zeros(0, dtype=torch.bool)
    keep_edges(batch[LINK], keep)
    return batch


def keep_edges(store: Any, keep: torch.Tensor) -> None:
    """Keep, in place, the edges of an edge store where the boolean mask ``keep`` is True: its ``edge_index`` and
    every per-edge attribute (a tensor whose first dimension is the edge count)."""
    n = store.edge_index.size(1)
    for key, value in list(store.items()):
        if key == "edge_index":
            store.edge_index = value[:, keep]
        elif torch.is_tensor(value) and value.dim() > 0 and value.size(0) == n:
            store[key] = value[keep]


@torch.no_grad()
def occlusion_effects(model: Any, g: HeteroData, transform: Any, task: str, p_full: torch.Tensor,
                      groups: dict[int, np.ndarray], edge_utt: np.ndarray, edge_src: np.ndarray,
                      edge_ok: np.ndarray, batch_size: int = 256, device: Any = "cpu",
                      temperature: float = 1.0, bias: Any = None) -> dict[int, np.ndarray]:
    """:math:`\\Delta_{c,i}` for every concept node ``c`` in ``groups[i]`` (utterance ``i`` → its concept nodes).

    Args:
        model: the model (``model(batch)[task]`` → logits per utterance).
        g: the conversation's graph (features attached by ``transform`` per batch).
        transform: the pipeline's per-batch feature transform, or ``None``.
        task: the task whose predicted label is explained.
        p_full: ``[N, classes]`` probabilities of the unperturbed graph (calibrated with ``temperature``).
        groups: utterance → concept node ids to score.
        edge_utt, edge_src: per concept edge, the utterance of its token and its concept node.
        edge_ok: per concept edge, whether it may be removed (the word's own concept stays).
        batch_size: perturbed copies per forward pass.
        device: where the model runs.
        temperature, bias: the task's calibration temperature and class offsets: the perturbed copies'
            probabilities are :math:`\\mathrm{softmax}((\\mathbf z + \\mathbf b) / T)` like ``p_full``'s, so an
            effect is a drop of the probability shown.
    """
    jobs = [(i, c) for i, nodes in groups.items() for c in nodes]
    effects: dict[int, list[float]] = {i: [] for i in groups}
    n = g["utterance"].num_nodes
    # A model that can score the copies itself (KET.occluded_logits: knowledge once, then only what a drop
    # touches) gets the graph once; any other model runs on the batched copies.
    two_stage = getattr(model, "occluded_logits", None)
    if two_stage is not None:
        whole = Batch.from_data_list([g])
        whole = (transform(whole) if transform is not None else whole).to(device)
    for a in range(0, len(jobs), batch_size):
        chunk = jobs[a:a + batch_size]
        drops = [edge_ok & (edge_utt == i) & (edge_src == c) for i, c in chunk]
        rows = torch.tensor([i for i, _ in chunk])
        if two_stage is not None:      # copy m's logits at its utterance only
            logits = two_stage(whole, torch.from_numpy(np.stack(drops)).to(device), rows=rows)[task].float()
        else:
            batch = drop_edges(g, drops)
            batch = (transform(batch) if transform is not None else batch).to(device)
            logits = model(batch)[task].float()
            logits = logits[(torch.arange(len(chunk)) * n + rows).to(logits.device)]
        probs = calibrate_probabilities(torch.softmax(logits, -1).cpu(), temperature, bias)  # what the annotator shows
        for m, (i, _) in enumerate(chunk):
            y = int(p_full[i].argmax())
            effects[i].append(float(p_full[i, y] - probs[m, y]))
    return {i: np.asarray(v) for i, v in effects.items()}
