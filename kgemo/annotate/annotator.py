"""``Annotator``: conversations in, labels + probabilities + knowledge evidence out, with any saved kgemo model.

The annotator owns no preprocessing of its own: it loads a model folder, rebuilds the model's
:class:`~kgemo.pipeline.InputPipeline` from the spec saved beside the weights (sentence encoder, graph builder,
knowledge), and runs :func:`~kgemo.models.predict.predict_batches` with ``explain=True``. What it adds is reading
the evidence out of the model's attention (vectorised over a batch), ATOMIC events — weighted by the model
itself for models over the event graph (COSMIC, TODKAT), else retrieved with the utterance embeddings the pipeline
already computed — and warnings for inputs it had to cut.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import sys
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from ..data.conversation import Conversation, as_conversation
from ..devices import pick_device
from ..errors import KgemoError
from .calibration import Calibration
from .result import AnnotationResult, ConceptEvidence, EventEvidence, UtteranceAnnotation

__all__ = ["Annotator", "DEFAULT_MODEL_DIR", "DEFAULT_EVENT_RELATIONS", "MIN_EVENT_SIMILARITY", "resolve_model_path"]

#: The embedded default model, shipped as package data.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "resources" / "models" / "default"
#: ATOMIC relations shown by default: how the speaker feels, how others feel, why the speaker said/did it.
DEFAULT_EVENT_RELATIONS = ("xReact", "oReact", "xIntent")
#: The cosine similarity between an utterance and its nearest ATOMIC head from which that head's inferences are
#: shown for a model that does not read events (KET, the default): chosen on MELD + DailyDialog dev by
#: scripts/atomic_threshold.py (docs/atomic_threshold.json, docs/annotate.md). ``None``: no similarity qualified —
#: above none did the nearest head's xReact / oReact agree with the gold emotion's valence clearly more often than
#: a random head's — so such retrieved events are not shown unless asked for (``min_event_similarity``).
MIN_EVENT_SIMILARITY: float | None = None
_DIGITS = 6


def resolve_model_path(name_or_path: str | Path = "default") -> Path:
    """``"default"`` → the shipped model; a model folder; or a run folder holding ``model/``."""
    if str(name_or_path) == "default":
        if not (DEFAULT_MODEL_DIR / "config.json").is_file():
            raise KgemoError(f"the embedded default model is missing from {DEFAULT_MODEL_DIR}; reinstall kgemo "
                             "(or train it: kgemo train configs/default_annotator.yaml && python "
                             "scripts/export_default_model.py)")
        return DEFAULT_MODEL_DIR
    p = Path(name_or_path).expanduser()
    if (p / "config.json").is_file():
        return p
    if (p / "model" / "config.json").is_file():
        return p / "model"
    if not p.exists():
        raise KgemoError(f"{p}: no such model folder (give 'default', a model folder or a run folder)")
    raise KgemoError(f"{p}: not a kgemo model folder (no config.json); `kgemo train` writes one to "
                     "runs/<name>/seed<k>/model")


@contextlib.contextmanager
def _threads(n: int | None):
    """Run a block with ``n`` torch (and, when loaded, FAISS) intra-op threads; ``None``: unchanged. The previous
    counts are restored."""
    if n is None:
        yield
        return
    faiss = sys.modules.get("faiss")
    before = torch.get_num_threads()
    faiss_before = faiss.omp_get_max_threads() if faiss is not None else None
    torch.set_num_threads(n)
    if faiss is not None:
        faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if faiss is not None:
            faiss.omp_set_num_threads(faiss_before)


class Annotator:
    r"""Annotate conversations with a kgemo model: labels, class probabilities and knowledge evidence.

    Use :meth:`from_pretrained` (the embedded default model, a model folder, or a run folder); the constructor
    takes an already loaded model and input pipeline.

    For each utterance the result (:class:`~kgemo.annotate.UtteranceAnnotation`) holds the label and class
    probabilities of every task of the model (emotion; sentiment and act for joint models), the ``top_k``
    ConceptNet concepts with their attention weight :math:`w_c = \sum_t \beta_t \alpha_{c,t}` and VAD (models
    with ConceptNet knowledge), and ATOMIC if-then events with their retrieval score — or, for models that weigh
    the event graph's events themselves (COSMIC, TODKAT), the weight the model gave each (``score``: its share
    among the utterance's tails of that relation).

    Args:
        model: a loaded :class:`~kgemo.models.KGModel`.
        pipeline: the model's :class:`~kgemo.pipeline.InputPipeline`.
        events: ATOMIC evidence provider for models that do not read events: ``"default"`` (the bundled ATOMIC
            slice, nearest-event retrieval with the pipeline's own utterance embeddings), an
            :class:`~kgemo.knowledge.AtomicRetriever`, a COMET generator (``generate(texts, relations, k)``), or
            ``None`` for no events. Models over the event graph (COSMIC, TODKAT) always show the events they
            weighed.
        min_event_similarity: a retrieved event (nearest ATOMIC head) is shown only when the utterance's cosine
            similarity to that head is at least this; ``None`` (:data:`MIN_EVENT_SIMILARITY`, chosen on dev
            data): no retrieved event is shown, and nothing is retrieved. Each shown event keeps the head it
            matched (``head``) and the similarity (``score``), so a reader can judge the match.
        top_k: concepts kept per utterance.
        top_events: events kept per utterance and relation.
        event_relations: ATOMIC relations to show.
        batch_size: conversations per model batch (and per chunk of :meth:`annotate_many`).
        device: where the model runs (default: CUDA when available); the encoder follows the pipeline.
        compute_threads: intra-op threads (torch and FAISS) for kgemo's own steps on CPU — the model's forward
            pass and the ATOMIC search; the sentence encoder keeps its own. These ops are small on
            conversation-sized inputs and with several threads OpenMP's waiting dominates: on a busy 2-core
            machine one thread was 50× faster for the model and 3× for the search. ``None`` leaves the settings
            alone (they are process-wide: use ``None`` when annotating from several Python threads at once).
        name: how the model was named (recorded in results).
        evidence: how concepts are ranked: ``"occlusion"`` (default: by how much removing the concept lowers the
            predicted label's probability — the concepts the prediction rests on, :mod:`kgemo.annotate.occlusion`;
            one extra batched forward pass per conversation) or ``"attention"`` (by the attention weight
            :math:`w_c`, no extra pass).
        occlusion_max_utterances: longer conversations get the attention ranking (with a warning naming them):
            each occluded copy is the whole conversation, so occlusion costs grow with the square of its length.
        calibration: temperatures (and class offsets) that turn the model's probabilities into calibrated ones
            (:class:`~kgemo.annotate.calibration.Calibration`, or ``{task: T}``); every probability shown — the
            results' ``probabilities``, hence table, JSON, HTML and RDF, and the occlusion effects — is
            :math:`\mathrm{softmax}((\mathbf z + \mathbf b) / T)` and the label its argmax (a temperature alone
            never changes a label). ``None``: as the model gives them.
            :meth:`from_pretrained` loads the folder's ``calibration.json`` (``kgemo calibrate``).

    Example:
        >>> from kgemo import Annotator
        >>> ann = Annotator.from_pretrained()                                    # doctest: +SKIP
        >>> res = ann.annotate([("Anna", "I got the job!"), ("Ben", "No way, congratulations!")])  # doctest: +SKIP
        >>> res[0].emotion, round(res[0].probability(), 2)                       # doctest: +SKIP
        ('joy', 0.83)
        >>> [(c.concept, round(c.weight, 2)) for c in res[0].concepts[:2]]        # doctest: +SKIP
        [('work', 0.21), ('employment', 0.14)]
    """

    def __init__(self, model, pipeline, events: Any = "default", top_k: int = 5, top_events: int = 1,
                 event_relations: Sequence[str] = DEFAULT_EVENT_RELATIONS, batch_size: int = 16,
                 device: str | torch.device | None = None, compute_threads: int | None = 1, name: str | None = None,
                 evidence: str = "occlusion", occlusion_max_utterances: int = 512, calibration: Any = None,
                 min_event_similarity: float | None = MIN_EVENT_SIMILARITY):
        if evidence not in ("occlusion", "attention"):
            raise ValueError(f"evidence must be 'occlusion' or 'attention', got {evidence!r}")
        if top_k < 0 or top_events < 0 or batch_size < 1:
            raise ValueError(f"top_k and top_events must be >= 0 and batch_size >= 1, got {top_k}, {top_events}, "
                             f"{batch_size}")
        pipeline.check_model(model)
        self.device = torch.device(pick_device(device))
        self.model = model.eval().to(self.device)
        self.pipeline = pipeline
        self.top_k, self.top_events = int(top_k), int(top_events)
        self.evidence = evidence
        self.occlusion_max_utterances = int(occlusion_max_utterances)
        self.event_relations = tuple(event_relations)
        self.batch_size = int(batch_size)
        self.compute_threads = compute_threads if self.device.type == "cpu" else None
        self.name = name or model.name
        self.kb = pipeline.knowledge.get("conceptnet")
        # Concept embeddings: the pipeline's table — the cached full one, or just the concepts met (a fresh install
        # stays fast).
        self.transform = pipeline.transform
        self.min_event_similarity = None if min_event_similarity is None else float(min_event_similarity)
        self.events = self._load_events(events)
        if calibration is not None and not isinstance(calibration, Calibration):
            calibration = Calibration({str(t): float(v) for t, v in dict(calibration).items()}, split="given")
        self.calibration: Calibration | None = calibration

    # -- construction ---------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = "default", device: str | torch.device | None = None, *,
                        encoder: Any = None, calibration: Any = "auto", **kwargs: Any) -> "Annotator":
        """Load a model folder and rebuild its input pipeline from the spec saved with it.

        Args:
            name_or_path: ``"default"`` (the model shipped with kgemo, works offline), a model folder
                (``runs/<name>/seed0/model``) or a run folder.
            device: ``"cpu"``, ``"cuda"``...; default CUDA when available.
            encoder: use this sentence encoder instead of the one the spec names (it must produce the same
                features; tests pass a tiny one).
            calibration: ``"auto"``: the folder's ``calibration.json`` when it has one fitted for these weights
                (``kgemo calibrate``); ``None``: the model's own probabilities; or temperatures ``{task: T}``.
            kwargs: :class:`Annotator` options (``top_k``, ``events``, ``batch_size``...).
        """
        from ..pipeline import load_model_and_pipeline

        path = resolve_model_path(name_or_path)
        dev = pick_device(device)
        model, pipeline, _ = load_model_and_pipeline(path, dev, encoder=encoder)
        kwargs.setdefault("name", "default" if str(name_or_path) == "default" else str(path))
        if isinstance(calibration, str) and calibration == "auto":
            calibration = Calibration.load(path)
        return cls(model, pipeline, device=dev, calibration=calibration, **kwargs)

    def _load_events(self, events: Any):
        if events is None or events is False:
            return None
        if self.min_event_similarity is None and not self._explains_events() and (
                isinstance(events, str) or hasattr(events, "search_vectors") or hasattr(events, "retriever")):
            return None  # no retrieved event would be close enough to be shown: do not retrieve
        if isinstance(events, str):
            from ..knowledge import AtomicRetriever

            atomic = self.pipeline.knowledge_settings.get("atomic")
            if atomic is not None and getattr(atomic, "path", None) == events:
                return self.pipeline.knowledge["atomic"]  # the event graph's retriever: same table, loaded once
            # The pipeline's encoder: its utterance features are the retrieval queries (nothing encoded twice).
            return AtomicRetriever.load(events, encoder=self.pipeline.encoder)
        return getattr(events, "retriever", events)  # RetrievedComet wraps a retriever

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(self.model.tasks)

    @property
    def info(self) -> dict[str, Any]:
        """What produced the annotations (recorded in every result)."""
        out = {"name": self.name, "model": self.model.name, "encoder": self.pipeline.encoder.id,
               "graph": self.pipeline.builder.name,
               "knowledge": {k: s.to_dict().get("path", "custom") for k, s in self.pipeline.knowledge_settings.items()}}
        if self.events is not None:
            out["events"] = getattr(self.events, "id", type(self.events).__name__)
            if hasattr(self.events, "search_vectors"):
                out["min_event_similarity"] = self.min_event_similarity
        if self.calibration is not None:
            out["calibration"] = {"temperatures": dict(self.calibration.temperatures), "split": self.calibration.split}
            if self.calibration.biases:
                out["calibration"]["biases"] = {t: list(b) for t, b in self.calibration.biases.items()}
        return out

    # -- the verbs --------------------------------------------------------------------------------------------
    def annotate(self, conversation: Any, top_k: int | None = None) -> AnnotationResult:
        """Annotate one conversation.

        Args:
            conversation: a :class:`~kgemo.Conversation`, a list of ``{"speaker", "text"}`` dicts, a list of
                ``(speaker, text)`` pairs, a dict with ``utterances``, or a list of strings (one speaker assumed,
                with a warning).
            top_k: concepts per utterance (default: the annotator's).

        Returns:
            an :class:`~kgemo.annotate.AnnotationResult` (``res[i].emotion``, ``res.to_json()``, ``res.to_rdf()``,
            ``res.to_networkx()``).

        Raises:
            DataFormatError: an empty conversation or an empty / whitespace-only utterance (naming its position).
        """
        conv = as_conversation(conversation, id="input")
        return self._annotate_chunk([conv], top_k)[0]

    def annotate_many(self, conversations: Iterable[Any], batch_size: int | None = None,
                      top_k: int | None = None) -> Iterator[AnnotationResult]:
        """Annotate an iterable of conversations, streaming: ``batch_size`` conversations are encoded, built and
        predicted together, and their results yielded before the next chunk is read.

        Conversations without an id are numbered ``"1"``, ``"2"``... in input order.
        """
        size = int(batch_size or self.batch_size)
        if size < 1:
            raise ValueError(f"batch_size must be >= 1, got {size}")
        it = iter(conversations)
        counter = itertools.count(1)
        while True:
            chunk = [as_conversation(c, id=str(next(counter))) for c in itertools.islice(it, size)]
            if not chunk:
                return
            yield from self._annotate_chunk(chunk, top_k)

    # -- internals ------------------------------------------------------------------------------------------
    def _encode(self, convs: list[Conversation]) -> tuple[list[np.ndarray], np.ndarray]:
        """Utterance features per conversation (one encoder call) and a per-utterance 'was truncated' mask."""
        from ..encoders import TruncationWarning

        texts = [u.text for c in convs for u in c.utterances]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            feats = [np.asarray(f, dtype=np.float32) for f in self.pipeline.encode(convs)]
        truncated = np.zeros(len(texts), dtype=bool)
        for w in caught:
            if issubclass(w.category, TruncationWarning):
                truncated |= self._too_long(texts)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return feats, truncated

    def _too_long(self, texts: list[str]) -> np.ndarray:
        """Which texts exceed the encoder's token limit (asked only after the encoder said some did)."""
        from ..encoders.encoder_inputs import InputTokenizer

        inputs = getattr(self.pipeline.encoder, "tokenizer", None)
        if isinstance(inputs, InputTokenizer):  # a fine-tuned encoder: the context is cut first, the turn only alone
            return np.asarray(inputs.target_too_long(texts), dtype=bool)
        model = getattr(self.pipeline.encoder, "model", None)
        tok, limit = getattr(model, "tokenizer", None), getattr(model, "max_seq_length", None)
        if tok is None or limit is None:
            return np.ones(len(texts), dtype=bool)
        ids = tok(texts, add_special_tokens=True, truncation=False, return_attention_mask=False,
                  return_token_type_ids=False, verbose=False)["input_ids"]
        return np.fromiter((len(x) > limit for x in ids), dtype=bool, count=len(texts))

    @staticmethod
    def _knowledge_cut(graph) -> np.ndarray:
        """Utterances whose content words exceeded the concept builder's ``max_tokens`` (the rest got no
        knowledge), as the builder recorded them."""
        if "knowledge_cut" in graph["utterance"]:
            return graph["utterance"].knowledge_cut.numpy()
        return np.zeros(graph["utterance"].num_nodes, dtype=bool)

    def _warn_cut(self, conv: Conversation, enc_cut: np.ndarray, kb_cut: np.ndarray) -> None:
        if enc_cut.any():
            encoder = self.pipeline.encoder
            limit = getattr(getattr(encoder, "model", None), "max_seq_length", None) or getattr(
                getattr(encoder, "tokenizer", None), "max_length", "max_length")
            idx = ", ".join(str(i + 1) for i in np.flatnonzero(enc_cut)[:20])
            more = f" and {int(enc_cut.sum()) - 20} more" if enc_cut.sum() > 20 else ""
            warnings.warn(f"conversation {conv.id}: utterance(s) {idx}{more} are longer than the sentence "
                          f"encoder's {limit} tokens; only their start was encoded", _truncation_warning(),
                          stacklevel=4)
        if kb_cut.any():
            idx = ", ".join(str(i + 1) for i in np.flatnonzero(kb_cut)[:20])
            warnings.warn(f"conversation {conv.id}: utterance(s) {idx} have more than "
                          f"{self.pipeline.builder.settings.max_tokens} content words; knowledge was looked up "
                          "for the first ones only", _truncation_warning(), stacklevel=4)

    def _annotate_chunk(self, convs: list[Conversation], top_k: int | None) -> list[AnnotationResult]:
        from ..models.predict import predict_batches

        top_k = self.top_k if top_k is None else int(top_k)
        feats, enc_cut = self._encode(convs)
        graphs = self.pipeline.graphs(convs, {}, features=feats, progress=False)
        offsets = np.cumsum([0] + [len(c) for c in convs])
        for c, g, a, b in zip(convs, graphs, offsets[:-1], offsets[1:]):
            self._warn_cut(c, enc_cut[a:b], self._knowledge_cut(g))
        # Models over the event graph (COSMIC, TODKAT) explain with their own weights per ATOMIC event; others get
        # the events retrieved for the utterance.
        model_events = self._explains_events()
        with _threads(self.compute_threads):
            events = [] if model_events else self._events(convs, np.concatenate(feats))

        explain = bool(getattr(self.model, "knowledge", ()))
        labels: list[dict[str, str]] = []
        probs: list[dict[str, dict[str, float]]] = []
        concepts: list[list[ConceptEvidence]] = []
        if self.pipeline.concepts is not None:
            self.pipeline.concepts.prepare(graphs)  # the chunk's missing concepts in one encoder call, before batching
        g_start = 0
        with _threads(self.compute_threads):
            for batch, p, ev in predict_batches(self.model, graphs, self.transform, self.batch_size, self.device,
                                                explain=explain):
                n_graphs = batch.num_graphs
                shown = self._calibrated(p)                       # what every probability shown is
                labels_b, probs_b = self._labels(p, shown)
                labels += labels_b
                probs += probs_b
                if self.evidence == "occlusion" and "concept_edge_weight" in ev and top_k > 0:
                    ranked = self._concepts(batch, ev, None)      # every concept, then by its occlusion effect
                    concepts += self._by_effect(graphs[g_start:g_start + n_graphs], shown, ranked, top_k,
                                                convs[g_start:g_start + n_graphs])
                else:
                    concepts += self._concepts(batch, ev, top_k)
                if model_events:
                    events += self._graph_events(batch, ev, convs[g_start:g_start + n_graphs])
                self._keep_weights(graphs[g_start:g_start + n_graphs], ev)
                g_start += n_graphs

        results, info = [], self.info
        for k, (c, g) in enumerate(zip(convs, graphs)):
            utts = []
            for j, u in enumerate(c.utterances):
                i = offsets[k] + j
                utts.append(UtteranceAnnotation(j, u.speaker, u.text, labels[i], probs[i], concepts[i],
                                                events[i], bool(enc_cut[i])))
            graph = (g, self.kb.concepts if self.kb is not None else None)
            results.append(AnnotationResult(c.id, utts, info, list(self.tasks), graph))
        return results

    def _calibrated(self, probs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The probabilities to show: the model's, temperature-scaled per task when the annotator is calibrated."""
        if self.calibration is None:
            return dict(probs)
        return {task: self.calibration.apply(task, p) for task, p in probs.items()}

    def _labels(self, probs: Mapping[str, torch.Tensor], shown: Mapping[str, torch.Tensor] | None = None):
        """Per utterance: task → argmax label of the model's ``probs``, and task → label → probability (``shown``,
        default ``probs``; rounded)."""
        shown = probs if shown is None else shown
        n = next(iter(probs.values())).shape[0]
        labels: list[dict[str, str]] = [{} for _ in range(n)]
        out: list[dict[str, dict[str, float]]] = [{} for _ in range(n)]
        # The label is the model's argmax, whatever the temperature; with class offsets, that of the offset logits
        # (the shown probabilities' argmax either way).
        by = shown if self.calibration is not None and self.calibration.changes_labels else probs
        for task, p in probs.items():
            names = list(self.model.label_spaces[task].labels)
            best = by[task].numpy().argmax(1)
            rounded = np.round(shown[task].numpy().astype(np.float64), _DIGITS).tolist()
            for i in range(n):
                labels[i][task] = names[best[i]]
                out[i][task] = dict(zip(names, rounded[i]))
        return labels, out

    def _by_effect(self, graphs, probs: Mapping[str, torch.Tensor], concepts: list[list[ConceptEvidence]],
                   top_k: int, convs: Sequence[Conversation]) -> list[list[ConceptEvidence]]:
        """``concepts`` (per utterance of ``graphs``) with their occlusion effect on the first task's predicted
        label, the top ``top_k`` by effect."""
        from .occlusion import concept_edges, occlusion_effects

        task = self.tasks[0]
        out, start = [], 0
        for g, conv in zip(graphs, convs):
            n = g["utterance"].num_nodes
            mine = concepts[start:start + n]
            link = g["concept", "linked", "token"]
            if n > self.occlusion_max_utterances and any(mine):
                warnings.warn(f"conversation {conv.id}: {n} utterances, more than occlusion_max_utterances="
                              f"{self.occlusion_max_utterances}; its concepts are ranked by attention", stacklevel=4)
            elif any(mine) and link.edge_index.size(1):
                src, _, utt, ok = concept_edges(g)
                groups = {i: np.unique(src[ok & (utt == i)]) for i in range(n) if mine[i]}
                effects = occlusion_effects(self.model, g, self.transform, task, probs[task][start:start + n],
                                            groups, utt, src, ok, device=self.device,
                                            temperature=self._temperature(task),
                                            bias=None if self.calibration is None else self.calibration.bias(task))
                names = self.kb.concepts
                kid = g["concept"].kid.numpy()
                for i, nodes in groups.items():
                    effect = {names[kid[c]]: round(float(e), _DIGITS) for c, e in zip(nodes, effects[i])}
                    ranked = [dataclasses.replace(c, effect=effect.get(c.concept)) for c in mine[i]]
                    mine[i] = sorted(ranked, key=lambda c: -(c.effect if c.effect is not None else -1.0))[:top_k]
            out += [m[:top_k] for m in mine]
            start += n
        return out

    def _temperature(self, task: str) -> float:
        return 1.0 if self.calibration is None else self.calibration.temperature(task)

    def _concepts(self, batch, ev: Mapping[str, torch.Tensor], top_k: int | None) -> list[list[ConceptEvidence]]:
        r"""Top-``top_k`` concepts per utterance of ``batch`` (all with ``None``), by
        :math:`w_c = \sum_t \beta_t\alpha_{c,t}`.

        Vectorised over the batch: one group per (utterance, concept node); its weight is the sum of its edges'
        :math:`\beta_t\alpha_{c,t}`, its ``token`` / ``relation`` those of its largest edge.
        """
        n_utt = batch["utterance"].num_nodes
        out: list[list[ConceptEvidence]] = [[] for _ in range(n_utt)]
        if top_k is None:
            top_k = batch["concept"].num_nodes if "concept" in batch.node_types else 0
        if top_k == 0 or "concept_edge_weight" not in ev or "token_weight" not in ev or self.kb is None:
            return out
        link = batch["concept", "linked", "token"]
        if link.edge_index.size(1) == 0:
            return out
        src, dst = link.edge_index.numpy()
        alpha = ev["concept_edge_weight"].numpy().astype(np.float64)
        beta = ev["token_weight"].numpy().astype(np.float64)
        tok_edge = batch["token", "in", "utterance"].edge_index.numpy()
        utt_of_token = np.empty(batch["token"].num_nodes, dtype=np.int64)
        utt_of_token[tok_edge[0]] = tok_edge[1]

        contrib = beta[dst] * alpha                                   # [E] β_t α_{c,t}
        utt = utt_of_token[dst]                                       # [E]
        key = utt * batch["concept"].num_nodes + src                  # one group per (utterance, concept node)
        # The token's own concept (self_concept) is the word itself, not knowledge: never listed as evidence.
        edges = np.flatnonzero(~link.is_self.numpy()) if "is_self" in link else np.arange(len(src))
        if not len(edges):
            return out
        order = edges[np.lexsort((-contrib[edges], key[edges]))]      # by group, largest edge first
        k_sorted = key[order]
        starts = np.flatnonzero(np.r_[True, k_sorted[1:] != k_sorted[:-1]])
        weight = np.add.reduceat(contrib[order], starts)              # [G] w_c
        main = order[starts]                                          # [G] the group's largest edge
        g_utt = utt[main]
        # Top-k groups per utterance by weight.
        by_utt = np.lexsort((-weight, g_utt))
        u_sorted = g_utt[by_utt]
        first = np.r_[True, u_sorted[1:] != u_sorted[:-1]]
        rank = np.arange(len(by_utt)) - np.maximum.accumulate(np.where(first, np.arange(len(by_utt)), 0))
        keep = by_utt[rank < top_k]
        if not len(keep):
            return out

        e = main[keep]
        c_kid = batch["concept"].kid.numpy()[src[e]]
        t_kid = batch["token"].kid.numpy()[dst[e]]
        rel = link.relation.numpy()[e]
        conf = link.weight.numpy()[e]
        vad = np.round(np.asarray(self.kb.vad(c_kid), dtype=np.float64), _DIGITS).tolist()
        vad_known = np.asarray(self.kb.vad_known(c_kid), dtype=bool).tolist()
        relations = self.kb.relations
        n_base = int(getattr(self.kb, "num_base_relations", len(relations)))
        names = self.kb.concepts
        w_r = np.round(weight[keep], _DIGITS).tolist()
        a_r = np.round(alpha[e], _DIGITS).tolist()
        b_r = np.round(beta[dst[e]], _DIGITS).tolist()
        c_r = np.round(conf.astype(np.float64), _DIGITS).tolist()
        for j, u in enumerate(g_utt[keep].tolist()):
            r = int(rel[j])
            inverse = r >= n_base
            out[u].append(ConceptEvidence(
                names[c_kid[j]], names[t_kid[j]], relations[r - n_base if inverse else r],
                "in" if inverse else "out", w_r[j], a_r[j], b_r[j], c_r[j], tuple(vad[j]), bool(vad_known[j])))
        return out

    def _keep_weights(self, graphs, ev: Mapping[str, torch.Tensor]) -> None:
        """Attach α / β to each conversation's graph (for ``to_networkx``) and drop its feature matrix."""
        alpha, beta = ev.get("concept_edge_weight"), ev.get("token_weight")
        e0 = t0 = 0
        for g in graphs:
            if "x" in g["utterance"]:
                g["utterance"].num_nodes = g["utterance"].x.size(0)
                del g["utterance"].x
            if alpha is None or beta is None or "token" not in g.node_types:
                continue
            link = g["concept", "linked", "token"]
            ne, nt = link.edge_index.size(1), g["token"].num_nodes
            link.attention = alpha[e0:e0 + ne].clone()
            g["token"].token_weight = beta[t0:t0 + nt].clone()
            e0, t0 = e0 + ne, t0 + nt

    def _events(self, convs: list[Conversation], feats: np.ndarray) -> list[list[EventEvidence]]:
        """ATOMIC events per utterance of the chunk (one batched search)."""
        n = len(feats)
        if self.events is None or self.top_events == 0 or not self.event_relations:
            return [[] for _ in range(n)]
        k, rels = self.top_events, self.event_relations
        if hasattr(self.events, "search_vectors"):
            same = str(getattr(self.events.encoder, "id", "")) == str(self.pipeline.encoder.id)
            if same:
                hits = self.events.search_vectors(feats, k=k, relations=rels)
            else:  # another encoder than the model's: the queries must be encoded in its space
                hits = self.events.search([u.text for c in convs for u in c.utterances], k=k, relations=rels)
            least = self.min_event_similarity
            return [[EventEvidence(h.head, h.relation, h.tail, round(float(h.score), _DIGITS))
                     for r in rels for h in row.get(r, []) if least is not None and h.score >= least]
                    for row in hits]
        texts = [u.text for c in convs for u in c.utterances]
        gens = self.events.generate(texts, rels, k=k)
        return [[EventEvidence(t, r, tail, round(1.0 / (rank + 1), _DIGITS), "comet", "comet")
                 for r in rels for rank, tail in enumerate(row.get(r, []))] for t, row in zip(texts, gens)]

    def _explains_events(self) -> bool:
        """Whether the model weighs the event graph's ATOMIC events itself (COSMIC, TODKAT)."""
        return self.pipeline.builder.name == "event" and "atomic" in getattr(self.model, "knowledge", ())

    def _graph_events(self, batch, ev: Mapping[str, torch.Tensor], convs: list[Conversation]
                      ) -> list[list[EventEvidence]]:
        """The top ``top_events`` events per utterance and relation by the weight the model gave them
        (``event_weight/<relation>``, ``generated_weight/<relation>``: per tail → utterance edge), with the ATOMIC
        head they were retrieved through (a COMET tail's head is the utterance itself)."""
        n = batch["utterance"].num_nodes
        out: list[list[EventEvidence]] = [[] for _ in range(n)]
        if self.top_events == 0 or not self.event_relations:
            return out
        table = self.pipeline.knowledge["atomic"].table
        comet = self.pipeline.knowledge.get("comet")
        settings = self.pipeline.builder.settings
        texts = [u.text for c in convs for u in c.utterances]
        for rel in self.event_relations:
            found: list[tuple[int, float, EventEvidence]] = []
            weight = ev.get(f"event_weight/{rel}")
            if weight is not None and weight.numel():
                e = batch["event", rel, "utterance"]
                src, dst = e.edge_index.numpy()
                tid, head = batch["event"].tid.numpy()[src], e.head.numpy()
                for j, w in enumerate(weight.numpy().astype(np.float64)):
                    found.append((int(dst[j]), w, EventEvidence(table.heads[head[j]] if head[j] >= 0 else "", rel,
                                                                table.tails[tid[j]], round(float(w), _DIGITS))))
            weight = ev.get(f"generated_weight/{rel}")
            if weight is not None and weight.numel() and comet is not None:
                g = batch["generated", rel, "utterance"]
                dst, rank = g.edge_index[1].numpy(), g.rank.numpy()
                # The generation cache answers: the same call the builder made, so the same tails in rank order.
                gens = comet.generate(texts, [rel], k=settings.tails_per_relation, num_beams=settings.num_beams)
                source = "comet" if comet.source == "comet" else "atomic"
                provider = "comet" if comet.source == "comet" else "retrieval"
                for j, w in enumerate(weight.numpy().astype(np.float64)):
                    i = int(dst[j])
                    found.append((i, w, EventEvidence(texts[i], rel, gens[i][rel][rank[j]], round(float(w), _DIGITS),
                                                      source, provider)))
            for i, w, evidence in sorted(found, key=lambda f: (f[0], -f[1])):
                if sum(x.relation == rel for x in out[i]) < self.top_events:
                    out[i].append(evidence)
        return out

    def __repr__(self) -> str:
        return (f"Annotator(model={self.name!r}, tasks={list(self.tasks)}, top_k={self.top_k}, "
                f"events={'on' if self.events is not None else 'off'}, device={self.device})")


def _truncation_warning():
    from ..encoders import TruncationWarning

    return TruncationWarning
