r"""How faithful is the evidence the annotator shows? Numbers for "better evidence", measured on a test split.

The evidence of an utterance is its concepts ranked by the weight the model gave them,
:math:`w_c = \sum_t \beta_t \alpha_{c,t}` (the annotator's ranking; the token's own concept, ``is_self``, is the
word, not knowledge, and is never counted). For every utterance with at least ``min_concepts`` concepts:

* **comprehensiveness** (ERASER, DeYoung et al. 2020): the drop of the predicted class's probability when the
  top-``top`` concepts are removed from the utterance's tokens, :math:`p(\hat y \mid x) - p(\hat y \mid x
  \setminus e)`; compared with removing ``top`` random concepts of the same utterance. Evidence that drives the
  prediction removes more probability than random concepts do.
* **sufficiency**: :math:`p(\hat y \mid x) - p(\hat y \mid e)`, the drop when the utterance keeps only its top
  concepts (lower is better), against keeping ``top`` random ones.
* **affective agreement**: for utterances whose gold emotion has a valence (joy positive; anger, sadness, disgust,
  fear negative; neutral and surprise left out), the share whose top concepts' mean NRC-VAD valence
  :math:`\bar V - 0.5` has the gold's sign, against random concepts of the same tokens.

Evidence is ranked by the attention weights (``rank="attention"``) or by each concept's occlusion effect on the
predicted label (``rank="occlusion"``, :mod:`kgemo.annotate.occlusion`).

Removing a concept deletes its ``(concept, linked, token)`` edges into that utterance's tokens; the rest of the
conversation is untouched and the model runs on the whole conversation, so the context it sees stays the same.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch_geometric.data import Batch, HeteroData

from .occlusion import LINK, concept_edges, drop_edges, occlusion_effects

__all__ = ["EvidenceScores", "evidence_faithfulness", "POSITIVE", "NEGATIVE"]

#: Emotion labels with a positive / negative valence (both datasets' names and the Ekman-7 space).
POSITIVE = frozenset({"joy", "happiness", "happy", "joyful"})
NEGATIVE = frozenset({"anger", "angry", "mad", "sadness", "sad", "disgust", "fear", "scared"})


@dataclass
class EvidenceScores:
    """Means over the eligible utterances (probabilities in [0, 1]; agreement in %)."""

    comprehensiveness: float = 0.0
    comprehensiveness_random: float = 0.0
    sufficiency: float = 0.0
    sufficiency_random: float = 0.0
    affective_agreement: float = 0.0
    affective_agreement_random: float = 0.0
    utterances: int = 0                  # utterances with at least min_concepts concepts
    affective_utterances: int = 0        # of those, with a gold emotion that has a valence
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def comprehensiveness_ratio(self) -> float:
        """Evidence over random comprehensiveness; NaN when the random baseline is not a positive drop (≤ 1e-3:
        removing random concepts does nothing, and a ratio to ~0 or to a negative number means nothing)."""
        r = self.comprehensiveness_random
        return self.comprehensiveness / r if r > 1e-3 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        out = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}
        out["comprehensiveness_ratio"] = round(self.comprehensiveness_ratio, 3)
        out["affective_agreement_gain"] = round(self.affective_agreement - self.affective_agreement_random, 2)
        return out


def _concept_weights(g: HeteroData, alpha: np.ndarray, beta: np.ndarray):
    """Per utterance: its concept nodes and their weights :math:`\\sum_t \\beta_t\\alpha_{c,t}` (self edges out)."""
    src, dst, utt, keep = concept_edges(g)
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    contrib = beta[dst] * alpha
    for i in np.unique(utt[keep]):
        m = keep & (utt == i)
        nodes, inv = np.unique(src[m], return_inverse=True)
        out[int(i)] = (nodes, np.bincount(inv, weights=contrib[m], minlength=len(nodes)))
    return out, src, utt, keep


@torch.no_grad()
def evidence_faithfulness(model, pipeline, conversations: Sequence[Any], task: str = "emotion", top: int = 3,
                          draws: int = 3, min_concepts: int = 4, seed: int = 0, batch_size: int = 64,
                          features: Sequence[np.ndarray] | None = None, rank: str = "attention") -> EvidenceScores:
    """Comprehensiveness, sufficiency and affective agreement of ``model``'s concept evidence (module docstring).

    Args:
        model: a model with concept evidence (``forward_explain`` giving ``concept_edge_weight`` and
            ``token_weight``: KET, CKE-Net).
        pipeline: its :class:`~kgemo.pipeline.InputPipeline`.
        conversations: labelled conversations (the gold ``task`` label is used for affective agreement).
        top: evidence concepts per utterance.
        draws: random draws per utterance for the random baselines.
        min_concepts: utterances with fewer concepts are left out (top and random would coincide).
        seed: seed of the random draws.
        batch_size: graphs per forward pass (perturbed copies included).
        features: the conversations' sentence features, when already at hand (else encoded).
    """
    model.eval()
    space = model.label_spaces[task]
    names = list(space.labels)
    kb = pipeline.knowledge["conceptnet"]
    rng = np.random.default_rng(seed)
    graphs = pipeline.graphs(list(conversations), {task: space}, features=features, progress=False)
    if pipeline.concepts is not None:
        pipeline.concepts.prepare(graphs)
    transform = pipeline.transform
    comp, comp_r, suff, suff_r, agree, agree_r = [], [], [], [], [], []

    def run(g: HeteroData, drops: list[np.ndarray]) -> list[torch.Tensor]:
        """Probabilities of each perturbed copy of ``g`` (one ``[N, classes]`` tensor per mask)."""
        out = []
        for a in range(0, len(drops), batch_size):
            batch = drop_edges(g, drops[a:a + batch_size])
            batch = transform(batch) if transform is not None else batch
            probs = torch.softmax(model(batch)[task].float(), -1)
            out += list(torch.split(probs, g["utterance"].num_nodes))
        return out

    for g in graphs:
        if "token" not in g.node_types or g[LINK].edge_index.size(1) == 0:
            continue
        batch = Batch.from_data_list([g])
        batch = transform(batch) if transform is not None else batch
        logits, ev = model.forward_explain(batch)
        p_full = torch.softmax(logits[task].float(), -1)
        alpha = ev["concept_edge_weight"].detach().numpy().astype(np.float64)
        alpha = alpha.mean(-1) if alpha.ndim > 1 else alpha
        beta = ev["token_weight"].detach().numpy().astype(np.float64)
        per_utt, src, utt, not_self = _concept_weights(g, alpha, beta)
        if rank == "occlusion":
            effects = occlusion_effects(model, g, transform, task, p_full, {i: n for i, (n, _) in per_utt.items()},
                                        utt, src, not_self, batch_size)
            per_utt = {i: (nodes, effects[i]) for i, (nodes, _) in per_utt.items()}
        gold = g["utterance"][f"y_{task}"].numpy()
        drops, jobs = [], []
        for i, (nodes, w) in per_utt.items():
            if len(nodes) < max(top, 1):
                continue
            top_nodes = nodes[np.argsort(-w, kind="stable")[:top]]
            randoms = [rng.choice(nodes, size=top, replace=False) for _ in range(draws)]
            label = names[gold[i]] if gold[i] >= 0 else None
            sign = 1 if label in POSITIVE else -1 if label in NEGATIVE else 0
            if sign:
                valence = lambda ns: float(np.mean(kb.vad(g["concept"].kid.numpy()[ns])[:, 0] - 0.5))  # noqa: E731
                agree.append(100.0 * (np.sign(valence(top_nodes)) == sign))
                agree_r.append(100.0 * np.mean([np.sign(valence(r)) == sign for r in randoms]))
            if len(nodes) < min_concepts:
                continue
            mine = not_self & (utt == i)
            drops.append(mine & np.isin(src, top_nodes))            # drop the evidence
            drops.append(mine & ~np.isin(src, top_nodes))           # keep only the evidence
            for r in randoms:
                drops.append(mine & np.isin(src, r))
                drops.append(mine & ~np.isin(src, r))
            jobs.append(i)
        if not jobs:
            continue
        probs = run(g, drops)
        per = 2 + 2 * draws
        for j, i in enumerate(jobs):
            y_hat = int(p_full[i].argmax())
            base = float(p_full[i, y_hat])
            got = [float(p[i, y_hat]) for p in probs[j * per:(j + 1) * per]]
            comp.append(base - got[0])
            suff.append(base - got[1])
            comp_r.append(float(np.mean([base - v for v in got[2::2]])))
            suff_r.append(float(np.mean([base - v for v in got[3::2]])))

    mean = lambda xs: float(np.mean(xs)) if xs else 0.0  # noqa: E731
    return EvidenceScores(mean(comp), mean(comp_r), mean(suff), mean(suff_r), mean(agree), mean(agree_r),
                          len(comp), len(agree),
                          {"top": top, "draws": draws, "min_concepts": min_concepts, "seed": seed, "task": task,
                           "rank": rank})
