r"""How faithful is the evidence the annotator shows? Numbers for "better evidence", measured on a test split.

The evidence of utterance :math:`i` is its top-``top`` concepts :math:`E_i \subset C_i`, where :math:`C_i` are the
ConceptNet concepts linked to its words (the word's own concept, ``is_self``, is the word, not knowledge: it is
never evidence and never counted in :math:`C_i`). :math:`\hat y` is the class predicted on the whole input
:math:`x` and :math:`p(\cdot)` that class's probability. For every utterance with at least ``min_concepts``
concepts, each score against ``top`` random concepts of :math:`C_i` (``draws`` draws):

* **concept comprehensiveness** :math:`p(\hat y \mid x) - p(\hat y \mid x \setminus E_i)`: the evidence's edges
  into the utterance's words are removed; its text (sentence embedding, word vectors, the words' own concepts),
  its other concepts and the rest of the conversation are kept. ERASER's comprehensiveness (DeYoung et al. 2020)
  with the rationale drawn from the knowledge only — the text is never part of it — at one size ``top`` (ERASER's
  AOPC averages over several sizes).
* **concept sufficiency** :math:`p(\hat y \mid x) - p(\hat y \mid x \setminus (C_i \setminus E_i))`: the
  utterance keeps only its top concepts among its knowledge, **its text kept**. Not ERASER's sufficiency: the
  text, which decides most labels, is still there (lower is better).
* **ERASER sufficiency** :math:`p(\hat y \mid x) - p(\hat y \mid x_{-i} \cup E_i)`: the utterance reduced to its
  evidence (:func:`evidence_only`). Its own text is removed: the sentence embedding :math:`\mathbf{x}_i` is zeroed
  (wherever it is read: the utterance's state and the context the other utterances read), its words' embeddings
  and NRC-VAD are zeroed (``vad`` 0.5, ``vad_known`` False), the words' own concepts and the concepts outside
  :math:`E_i` are unlinked, and the words that reach no evidence concept are removed as nodes (their number would
  tell the utterance's length). What is left of the utterance: its speaker, its position, and one blank word node
  per word that reaches an evidence concept, linked to it. Two differences from ERASER remain: the other
  utterances of the conversation are kept (context, not the utterance's text), and "removed" means zero vectors
  the model never saw in training (as ERASER's deleted tokens are). ``eraser_sufficiency_empty`` is the same with
  nothing kept (:math:`E_i = \emptyset`, no word node left): the reference the evidence should improve on.
* **affective agreement**: of the scored utterances, those whose gold emotion has a valence (joy positive; anger,
  sadness, disgust, fear negative; neutral and surprise left out): the share whose top concepts' mean NRC-VAD
  valence :math:`\bar V - 0.5` has the gold's sign.

How concepts are ranked (``rank``):

* ``"attention"``: :math:`w_c = \sum_t \beta_t \alpha_{c,t}`, the annotator's attention ranking; it does not look
  at the outcome.
* ``"occlusion"``: held out. The occlusion effect :math:`\Delta_{c,j}` (:mod:`kgemo.annotate.occlusion`) of every
  concept of every utterance :math:`j` of *other* conversations (``rank_conversations``, e.g. the dev split) is
  averaged per (concept, predicted label) and per concept (:func:`concept_effects`); a concept of a scored
  utterance predicted :math:`\hat y` gets its dev mean among utterances predicted :math:`\hat y`, else among all
  utterances, else 0 (never seen: no evidence either way; ties keep the concepts' id order). ``rank_coverage``
  says how many scored concepts had a dev estimate.
* ``"occlusion_in_sample"``: :math:`\Delta_{c,i}` of the scored utterance itself — the annotator's own ranking,
  chosen by removing each concept of the very utterance on which removal is then scored, so a high concept
  comprehensiveness is nearly built in. An upper bound for that ranking, not a measure of it.

Removing a concept deletes its ``(concept, linked, token)`` edges into that utterance's words; the model runs on
the whole conversation.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch_geometric.data import Batch, HeteroData

from ..errors import KgemoError
from .occlusion import LINK, concept_edges, drop_edges, keep_edges, occlusion_effects

__all__ = ["EvidenceScores", "ConceptEffects", "evidence_faithfulness", "concept_effects", "evidence_only", "RANKS",
           "POSITIVE", "NEGATIVE"]

#: Emotion labels with a positive / negative valence (both datasets' names and the Ekman-7 space).
POSITIVE = frozenset({"joy", "happiness", "happy", "joyful"})
NEGATIVE = frozenset({"anger", "angry", "mad", "sadness", "sad", "disgust", "fear", "scared"})
#: Evidence rankings (module docstring).
RANKS = ("attention", "occlusion", "occlusion_in_sample")


@dataclass
class EvidenceScores:
    """Means over the scored utterances (probability drops in [-1, 1]; agreement in %). Definitions: module
    docstring."""

    concept_comprehensiveness: float = 0.0           # top concepts removed, text kept
    concept_comprehensiveness_random: float = 0.0
    concept_sufficiency: float = 0.0                 # only the top concepts kept among the knowledge, text kept
    concept_sufficiency_random: float = 0.0
    eraser_sufficiency: float = 0.0                  # utterance reduced to its top concepts, text removed
    eraser_sufficiency_random: float = 0.0
    eraser_sufficiency_empty: float = 0.0            # text removed, no concept kept
    affective_agreement: float = 0.0
    affective_agreement_random: float = 0.0
    utterances: int = 0                  # utterances with at least min_concepts concepts: the scored ones
    affective_utterances: int = 0        # of those, with a gold emotion that has a valence
    rank_coverage: float = float("nan")  # rank="occlusion": share of the scored concepts with a ranking-split mean
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def concept_comprehensiveness_ratio(self) -> float:
        """Evidence over random concept comprehensiveness; NaN when the random baseline is not a positive drop
        (≤ 1e-3: removing random concepts does nothing, and a ratio to ~0 or to a negative number means nothing)."""
        r = self.concept_comprehensiveness_random
        return self.concept_comprehensiveness / r if r > 1e-3 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        out = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}
        out["concept_comprehensiveness_ratio"] = round(self.concept_comprehensiveness_ratio, 3)
        out["affective_agreement_gain"] = round(self.affective_agreement - self.affective_agreement_random, 2)
        return out


@dataclass
class ConceptEffects:
    r"""Occlusion effects measured on a ranking split: per (concept id, predicted label id) and per concept id,
    the sum and count of :math:`\Delta_{c,j}` over the split's utterances :math:`j` that link concept :math:`c`."""

    by_label: dict[tuple[int, int], list] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0]))
    by_concept: dict[int, list] = field(default_factory=lambda: defaultdict(lambda: [0.0, 0]))
    conversations: int = 0
    utterances: int = 0

    def add(self, kid: int, label: int, effect: float) -> None:
        for table, key in ((self.by_label, (kid, label)), (self.by_concept, kid)):
            table[key][0] += effect
            table[key][1] += 1

    def score(self, kids: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean effect of each concept id in ``kids`` for an utterance predicted ``label`` (back-off: all labels,
        then 0), and whether the split had an estimate."""
        out, seen = np.zeros(len(kids)), np.zeros(len(kids), bool)
        for j, k in enumerate(np.asarray(kids).tolist()):
            hit = self.by_label.get((k, label)) or self.by_concept.get(k)
            if hit:
                out[j], seen[j] = hit[0] / hit[1], True
        return out, seen


def _shown(calibration: Any, task: str) -> tuple[Any, float, Any]:
    """What turns the model's probabilities into the shown ones (identity without a calibration), and the task's
    temperature and class offsets for :func:`occlusion_effects`."""
    if calibration is None:
        return (lambda p: p), 1.0, None
    return (lambda p: calibration.apply(task, p).float()), calibration.temperature(task), calibration.bias(task)


def _graphs(model, pipeline, conversations, task: str, features) -> list[HeteroData]:
    graphs = pipeline.graphs(list(conversations), {task: model.label_spaces[task]}, features=features, progress=False)
    if pipeline.concepts is not None:
        pipeline.concepts.prepare(graphs)
    # Graphs without a concept edge have no evidence to score or rank.
    return [g for g in graphs if "token" in g.node_types and g[LINK].edge_index.size(1) > 0]


def _utterance_of_token(g: HeteroData) -> np.ndarray:
    tok_utt = np.empty(g["token"].num_nodes, np.int64)
    t_edge = g["token", "in", "utterance"].edge_index.numpy()
    tok_utt[t_edge[0]] = t_edge[1]
    return tok_utt


def _keys(conversations) -> set:
    return {(c.dataset, c.split, c.id, tuple(u.text for u in c.utterances)) for c in conversations}


def _check_held_out(rank_conversations, conversations) -> None:
    """Refuse a ranking split that is (or shares a conversation with) the scored one."""
    named = lambda cs: {(c.dataset, c.split) for c in cs if c.dataset is not None and c.split is not None}  # noqa: E731
    same = named(rank_conversations) & named(conversations)
    shared = _keys(rank_conversations) & _keys(conversations)
    if same or shared:
        what = f"the same split {sorted(same)}" if same else f"{len(shared)} of the same conversations"
        raise KgemoError(f"rank='occlusion' ranks on rank_conversations, which hold {what} as the scored "
                         "conversations: the ranking would see the outcome it is scored on. Pass another split "
                         "(e.g. dev when scoring test), or rank='occlusion_in_sample' for that upper bound, labelled "
                         "as such")


@torch.no_grad()
def concept_effects(model, pipeline, conversations: Sequence[Any], task: str = "emotion", batch_size: int = 64,
                    features: Sequence[np.ndarray] | None = None, calibration: Any = None) -> ConceptEffects:
    r""":math:`\Delta_{c,j}` of every concept of every utterance of ``conversations`` (the ranking split), summed
    per (concept, predicted label) and per concept. Gold labels are not read.

    Args:
        model: the model (``model(batch)[task]`` → logits per utterance).
        pipeline: its :class:`~kgemo.pipeline.InputPipeline`.
        conversations: the ranking split (e.g. dev).
        task: the task whose predicted label is explained.
        batch_size: perturbed copies per forward pass.
        features: the conversations' sentence features, when already at hand (else encoded).
        calibration: the model's :class:`~kgemo.annotate.calibration.Calibration`, or ``None``: the probabilities
            and predicted labels are then the ones the annotator shows (class offsets can change the label).
    """
    model.eval()
    transform = pipeline.transform
    shown, temperature, bias = _shown(calibration, task)
    out = ConceptEffects(conversations=len(conversations))
    for g in _graphs(model, pipeline, conversations, task, features):
        batch = Batch.from_data_list([g])
        batch = transform(batch) if transform is not None else batch
        p_full = shown(torch.softmax(model(batch)[task].float(), -1))
        src, _, utt, ok = concept_edges(g)
        groups = {int(i): np.unique(src[ok & (utt == i)]) for i in np.unique(utt[ok])}
        effects = occlusion_effects(model, g, transform, task, p_full, groups, utt, src, ok, batch_size,
                                    temperature=temperature, bias=bias)
        kid = g["concept"].kid.numpy()
        for i, nodes in groups.items():
            y_hat = int(p_full[i].argmax())
            for c, d in zip(kid[nodes].tolist(), effects[i].tolist()):
                out.add(c, y_hat, d)
            out.utterances += 1
    return out


def evidence_only(g: HeteroData, utterance: int, concepts: np.ndarray, transform: Any = None) -> HeteroData:
    r"""A copy of ``g`` in which utterance ``utterance`` is reduced to the concept nodes ``concepts``: its text
    removed (module docstring, ERASER sufficiency). ``g`` is left as it is.

    * ``utterance.x[utterance]`` is zeroed (the sentence embedding, wherever the model reads it);
    * its words that link to a node of ``concepts`` stay as blank nodes: word embedding ``x`` zeroed (after
      ``transform`` attaches it), ``vad`` 0.5, ``vad_known`` False; their own concept (``is_self``) and every other
      concept is unlinked;
    * its other words are removed as nodes, with their edges.

    The other utterances, their words and concepts are untouched.

    Args:
        g: a conversation's ``concept`` graph (without features, as the builder made it).
        utterance: the utterance to reduce.
        concepts: concept node ids of ``g`` to keep (empty: nothing kept).
        transform: the pipeline's per-batch feature transform, or ``None`` (applied to the copy, so that the blank
            words' embeddings can be zeroed).
    """
    src, dst, utt, ok = concept_edges(g)
    mine = utt == utterance
    keep = ~mine | (ok & np.isin(src, concepts))
    h = g.clone()
    keep_edges(h[LINK], torch.from_numpy(keep))
    tok_utt = _utterance_of_token(g)
    blank = np.unique(dst[mine & keep])                                     # words reaching an evidence concept
    subset = np.flatnonzero((tok_utt != utterance) | np.isin(np.arange(len(tok_utt)), blank))
    h = h.subgraph({"token": torch.from_numpy(subset)})
    rows = torch.from_numpy(np.searchsorted(subset, blank))                 # the blank words, renumbered
    tok = h["token"]
    tok.vad = tok.vad.index_fill(0, rows, 0.5)
    tok.vad_known = tok.vad_known.index_fill(0, rows, False)
    h["utterance"].x = h["utterance"].x.index_fill(0, torch.tensor([utterance]), 0.0)
    if transform is not None:
        h = transform(h)
    if "x" in h["token"]:
        h["token"].x = h["token"].x.index_fill(0, rows, 0.0)
    return h


@torch.no_grad()
def evidence_faithfulness(model, pipeline, conversations: Sequence[Any], task: str = "emotion", top: int = 3,
                          draws: int = 3, min_concepts: int = 4, seed: int = 0, batch_size: int = 64,
                          features: Sequence[np.ndarray] | None = None, rank: str = "attention",
                          rank_conversations: Sequence[Any] | None = None,
                          rank_features: Sequence[np.ndarray] | None = None,
                          calibration: Any = None) -> EvidenceScores:
    """Concept comprehensiveness, concept and ERASER sufficiency, and affective agreement of ``model``'s concept
    evidence (module docstring).

    Args:
        model: a model with concept evidence (``forward_explain`` giving ``concept_edge_weight`` and
            ``token_weight``: KET, CKE-Net).
        pipeline: its :class:`~kgemo.pipeline.InputPipeline`.
        conversations: the scored, labelled conversations (the gold ``task`` label is read only for affective
            agreement).
        top: evidence concepts per utterance.
        draws: random draws per utterance for the random baselines.
        min_concepts: utterances with fewer concepts are not scored (top and random would coincide).
        seed: seed of the random draws.
        batch_size: graphs per forward pass (perturbed copies included).
        features: the conversations' sentence features, when already at hand (else encoded).
        rank: ``"attention"``, ``"occlusion"`` (held out: needs ``rank_conversations``) or
            ``"occlusion_in_sample"`` (module docstring).
        rank_conversations: ``rank="occlusion"`` only: the conversations the occlusion effects are measured on, from
            another split (refused when they share a named split or a conversation with ``conversations``).
        rank_features: their sentence features, when already at hand.
        calibration: the model's :class:`~kgemo.annotate.calibration.Calibration`, or ``None``: every probability
            and predicted label is then the one the annotator shows (offsets, then temperature), so the scores
            describe the table a user reads rather than the raw model.

    Example:
        >>> dev, test = load_dataset("meld", "dev"), load_dataset("meld", "test")
        >>> s = evidence_faithfulness(model, pipeline, test, rank="occlusion", rank_conversations=dev)
        >>> s.concept_comprehensiveness, s.eraser_sufficiency, s.eraser_sufficiency_empty
    """
    if rank not in RANKS:
        raise KgemoError(f"rank must be one of {RANKS}, got {rank!r}")
    if rank == "occlusion" and rank_conversations is None:
        raise KgemoError("rank='occlusion' ranks concepts by occlusion effects measured on another split: pass "
                         "rank_conversations= (e.g. dev when scoring test), or use rank='occlusion_in_sample' "
                         "(ranked on the scored utterances themselves: an upper bound)")
    if rank != "occlusion" and rank_conversations is not None:
        raise KgemoError(f"rank={rank!r} takes no rank_conversations (only rank='occlusion' does)")
    model.eval()
    names = list(model.label_spaces[task].labels)
    kb = pipeline.knowledge["conceptnet"]
    rng = np.random.default_rng(seed)
    transform = pipeline.transform
    held_out = None
    if rank == "occlusion":
        _check_held_out(rank_conversations, conversations)
        held_out = concept_effects(model, pipeline, rank_conversations, task, batch_size, rank_features,
                                   calibration)
    shown, temperature, bias = _shown(calibration, task)
    comp, comp_r, suff, suff_r, eraser, eraser_r, eraser_0, agree, agree_r, covered = ([] for _ in range(10))

    def probs(batches, n: int) -> list[torch.Tensor]:
        """Probabilities (one ``[n, classes]`` tensor per copy) of ``batches``, ready batches of copies."""
        out = []
        for batch in batches:
            out += list(torch.split(shown(torch.softmax(model(batch)[task].float(), -1)), n))
        return out

    def prepared(batch):
        return transform(batch) if transform is not None else batch

    for g in _graphs(model, pipeline, conversations, task, features):
        logits, ev = model.forward_explain(prepared(Batch.from_data_list([g])))
        p_full = shown(torch.softmax(logits[task].float(), -1))
        alpha = ev["concept_edge_weight"].detach().numpy().astype(np.float64)
        alpha = alpha.mean(-1) if alpha.ndim > 1 else alpha
        beta = ev["token_weight"].detach().numpy().astype(np.float64)
        src, dst, utt, ok = concept_edges(g)
        kid = g["concept"].kid.numpy()
        gold = g["utterance"][f"y_{task}"].numpy()
        contrib = beta[dst] * alpha
        # The scored utterances: enough concepts that top and random do not (nearly) coincide.
        groups = {}
        for i in np.unique(utt[ok]).tolist():
            nodes, inv = np.unique(src[ok & (utt == i)], return_inverse=True)
            if len(nodes) >= max(top, min_concepts, 1):
                groups[i] = (nodes, inv)
        if rank == "occlusion_in_sample":
            in_sample = occlusion_effects(model, g, transform, task, p_full, {i: c for i, (c, _) in groups.items()},
                                          utt, src, ok, batch_size, temperature=temperature, bias=bias)
        drops, copies, jobs = [], [], []
        for i, (nodes, inv) in groups.items():
            m = ok & (utt == i)
            y_hat = int(p_full[i].argmax())
            if rank == "attention":
                w = np.bincount(inv, weights=contrib[m], minlength=len(nodes))
            elif rank == "occlusion":
                w, seen = held_out.score(kid[nodes], y_hat)
                covered.append(seen.mean())
            else:
                w = in_sample[i]
            top_nodes = nodes[np.argsort(-w, kind="stable")[:top]]
            randoms = [rng.choice(nodes, size=top, replace=False) for _ in range(draws)]
            label = names[gold[i]] if gold[i] >= 0 else None
            sign = 1 if label in POSITIVE else -1 if label in NEGATIVE else 0
            if sign:
                valence = lambda ns: float(np.mean(kb.vad(kid[ns])[:, 0] - 0.5))  # noqa: E731
                agree.append(100.0 * (np.sign(valence(top_nodes)) == sign))
                agree_r.append(100.0 * np.mean([np.sign(valence(r)) == sign for r in randoms]))
            for keep in [top_nodes, *randoms]:
                drops.append(m & np.isin(src, keep))          # drop these concepts, text kept
                drops.append(m & ~np.isin(src, keep))         # keep only these concepts, text kept
                copies.append(evidence_only(g, i, keep, transform))
            copies.append(evidence_only(g, i, np.zeros(0, np.int64), transform))
            jobs.append((i, y_hat))
        if not jobs:
            continue
        per = 1 + draws
        # Text-kept copies share g's features: one transform per batch. Text-removed copies carry their own.
        n = g["utterance"].num_nodes
        p_drop = probs((prepared(drop_edges(g, drops[a:a + batch_size])) for a in range(0, len(drops), batch_size)), n)
        p_only = probs((Batch.from_data_list(copies[a:a + batch_size]) for a in range(0, len(copies), batch_size)), n)
        for j, (i, y_hat) in enumerate(jobs):
            base = float(p_full[i, y_hat])
            removed = [base - float(p[i, y_hat]) for p in p_drop[2 * per * j:2 * per * (j + 1)]]
            only = [base - float(p[i, y_hat]) for p in p_only[(per + 1) * j:(per + 1) * (j + 1)]]
            comp.append(removed[0])
            suff.append(removed[1])
            comp_r.append(float(np.mean(removed[2::2])))
            suff_r.append(float(np.mean(removed[3::2])))
            eraser.append(only[0])
            eraser_r.append(float(np.mean(only[1:per])))
            eraser_0.append(only[per])

    mean = lambda xs: float(np.mean(xs)) if xs else 0.0  # noqa: E731
    settings = {"top": top, "draws": draws, "min_concepts": min_concepts, "seed": seed, "task": task, "rank": rank}
    if held_out is not None:
        settings.update(rank_conversations=held_out.conversations, rank_utterances=held_out.utterances)
    return EvidenceScores(mean(comp), mean(comp_r), mean(suff), mean(suff_r), mean(eraser), mean(eraser_r),
                          mean(eraser_0), mean(agree), mean(agree_r), len(comp), len(agree),
                          mean(covered) if covered else float("nan"), settings)
