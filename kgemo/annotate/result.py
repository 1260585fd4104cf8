"""What :class:`~kgemo.annotate.Annotator` returns: labels, probabilities and the knowledge evidence per utterance.

Every result is a dataclass with ``to_dict`` / ``from_dict`` (plain JSON types), so ``to_json`` → ``json.loads`` →
``from_dict`` gives back an equal object. Floats are rounded to 6 decimals when a result is made, which keeps JSON
output short and the round trip exact.

What the numbers mean (see docs/annotate.md):

* ``probabilities[task][label]`` — the model's softmax over the task's classes; ``labels[task]`` is the argmax.
* :class:`ConceptEvidence` ``weight`` — the weight with which the concept's embedding enters the utterance's pooled
  knowledge vector (KET: :math:`\\mathbf{z}_u = \\sum_t \\beta_t [\\mathbf{g}_t \\Vert \\sum_c \\alpha_{c,t}
  \\mathbf{g}_c \\Vert \\dots]`), i.e.
  :math:`w_c = \\sum_t \\beta_t\\,\\alpha_{c,t}` over the utterance's tokens :math:`t`, where :math:`\\beta_t` is
  the token's pooling weight (sums to 1 over the utterance's concept-bearing tokens) and :math:`\\alpha_{c,t}` the
  KET concept attention (sums to 1 over the token's ConceptNet neighbours). Over *all* concepts of an utterance
  the weights sum to the β-mass of its tokens that have neighbours: 1 when every token does, less otherwise;
  the top-k shown sum to at most that.
* :class:`EventEvidence` ``score`` — cosine similarity between the utterance's sentence embedding and the ATOMIC
  head event the tail belongs to (retrieval), or the rank-based score of a COMET generation.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

__all__ = ["ConceptEvidence", "EventEvidence", "UtteranceAnnotation", "AnnotationResult", "MIN_EFFECT"]

#: An occlusion effect under this (half a point of the label's probability) is not shown as evidence.
MIN_EFFECT = 0.005


@dataclass(frozen=True)
class ConceptEvidence:
    """A ConceptNet concept the model attended to for one utterance.

    Args:
        concept: the neighbour concept (ConceptNet form, ``ice_cream``).
        token: the utterance's word (as its ConceptNet concept) that linked to it; when several words reach
            the same concept, the one contributing most.
        relation: ConceptNet relation name (``RelatedTo``, ``Causes``...).
        direction: ``"out"`` when the statement is ``token --relation--> concept``, ``"in"`` when it is
            ``concept --relation--> token``.
        weight: :math:`\\sum_t \\beta_t\\alpha_{c,t}`, the concept's share of the utterance's knowledge (see the
            module docstring).
        attention: :math:`\\alpha_{c,t}` of ``token``: the concept's share among that token's neighbours.
        token_weight: :math:`\\beta_t` of ``token``: its share among the utterance's tokens.
        confidence: ConceptNet confidence of the edge relative to the token's strongest edge, in (0, 1].
        vad: the concept's (valence, arousal, dominance) from NRC-VAD, each in [0, 1].
        vad_known: whether the VAD came from the lexicon (otherwise the neutral 0.5s).
        source: ``"conceptnet"`` (or ``"rdf"`` for a user's KB).
        effect: how much the predicted label's probability drops when this concept is removed from the utterance
            (occlusion, :mod:`kgemo.annotate.occlusion`): positive = the concept supports the label. ``None`` when
            the annotator ranks by attention only.
    """

    concept: str
    token: str
    relation: str
    direction: str
    weight: float
    attention: float
    token_weight: float
    confidence: float
    vad: tuple[float, float, float]
    vad_known: bool
    source: str = "conceptnet"
    effect: float | None = None

    @property
    def head(self) -> str:
        return self.token if self.direction == "out" else self.concept

    @property
    def tail(self) -> str:
        return self.concept if self.direction == "out" else self.token

    def to_dict(self) -> dict[str, Any]:
        return {"concept": self.concept, "token": self.token, "relation": self.relation,
                "direction": self.direction, "weight": self.weight, "attention": self.attention,
                "token_weight": self.token_weight, "confidence": self.confidence, "vad": list(self.vad),
                "vad_known": self.vad_known, "source": self.source, "effect": self.effect}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ConceptEvidence":
        return cls(**{**d, "vad": tuple(d["vad"])})

    def to_evidence(self, utterance: int | None = None):
        """As a :class:`kgemo.knowledge.Evidence` (for RDF export): the ConceptNet statement in its own
        direction, ``weight`` = ConceptNet confidence, ``attention`` = this concept's utterance weight."""
        from ..knowledge import Evidence

        return Evidence(self.source, self.head, self.relation, self.tail, weight=self.confidence,
                        attention=self.weight, utterance=utterance, token=self.token,
                        extra={"vad": list(self.vad), "vad_known": self.vad_known})


@dataclass(frozen=True)
class EventEvidence:
    """An ATOMIC if-then inference for one utterance.

    Args:
        head: the ATOMIC event the utterance was matched to (retrieval), or the utterance itself (COMET).
        relation: ATOMIC relation (``xReact``: how the speaker feels, ``oReact``: how others feel,
            ``xIntent``: why the speaker did it, ...).
        tail: the inferred event / state.
        score: cosine similarity of the utterance to ``head`` (retrieval); for COMET 1/(rank+1).
        source: ``"atomic"`` (the ATOMIC knowledge graph) or ``"comet"`` (generated).
        provider: who produced it: ``"retrieval"`` (nearest ATOMIC head, kgemo's offline default) or
            ``"comet"``.
    """

    head: str
    relation: str
    tail: str
    score: float
    source: str = "atomic"
    provider: str = "retrieval"

    def to_dict(self) -> dict[str, Any]:
        return {"head": self.head, "relation": self.relation, "tail": self.tail, "score": self.score,
                "source": self.source, "provider": self.provider}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EventEvidence":
        return cls(**d)

    def to_evidence(self, utterance: int | None = None):
        from ..knowledge import Evidence

        return Evidence(self.source, self.head, self.relation, self.tail, weight=self.score, utterance=utterance,
                        extra={"provider": self.provider})


@dataclass
class UtteranceAnnotation:
    """Labels, probabilities and evidence for one utterance.

    Args:
        index: 0-based position in the conversation.
        speaker, text: the input.
        labels: task → predicted label (``{"emotion": "joy"}``; joint models add ``sentiment`` / ``act``).
        probabilities: task → label → probability (each task sums to 1).
        concepts: top ConceptNet evidence, largest ``weight`` first.
        events: ATOMIC evidence, by relation then score.
        truncated: the text was longer than the sentence encoder's ``max_length`` and only its start was
            encoded (a warning names it too).
    """

    index: int
    speaker: str
    text: str
    labels: dict[str, str]
    probabilities: dict[str, dict[str, float]]
    concepts: list[ConceptEvidence] = field(default_factory=list)
    events: list[EventEvidence] = field(default_factory=list)
    truncated: bool = False

    @property
    def emotion(self) -> str | None:
        return self.labels.get("emotion")

    @property
    def sentiment(self) -> str | None:
        return self.labels.get("sentiment")

    @property
    def act(self) -> str | None:
        return self.labels.get("act")

    def top_concepts(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` heaviest concepts as ``(concept, weight)`` pairs."""
        return [(c.concept, c.weight) for c in self.concepts[:k]]

    def shown_concepts(self, k: int = 3) -> list[tuple[ConceptEvidence, float]]:
        """What the table and the evidence picture show, with the number shown: for concepts ranked by occlusion,
        those of the first ``k`` whose removal lowers the predicted label's probability by at least
        :data:`MIN_EFFECT`, with that effect; for concepts ranked by attention, the first ``k`` with their weight."""
        top = self.concepts[:k]
        if any(c.effect is not None for c in top):
            return [(c, c.effect) for c in top if c.effect is not None and c.effect >= MIN_EFFECT]
        return [(c, c.weight) for c in top]

    def top_events(self, k: int = 3) -> list[tuple[str, str, float]]:
        """The first ``k`` ATOMIC events as ``(relation, tail, score)``."""
        return [(e.relation, e.tail, e.score) for e in self.events[:k]]

    def probability(self, task: str = "emotion") -> float:
        """Probability of the predicted label of ``task``."""
        return self.probabilities[task][self.labels[task]]

    def evidence(self) -> list:
        """All evidence as :class:`kgemo.knowledge.Evidence` objects (concepts, then events)."""
        return ([c.to_evidence(self.index) for c in self.concepts]
                + [e.to_evidence(self.index) for e in self.events])

    def to_dict(self) -> dict[str, Any]:
        d = {"index": self.index, "speaker": self.speaker, "text": self.text, "labels": dict(self.labels),
             "probabilities": {t: dict(p) for t, p in self.probabilities.items()},
             "concepts": [c.to_dict() for c in self.concepts], "events": [e.to_dict() for e in self.events]}
        if self.truncated:
            d["truncated"] = True
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "UtteranceAnnotation":
        return cls(int(d["index"]), d["speaker"], d["text"], dict(d["labels"]),
                   {t: dict(p) for t, p in d["probabilities"].items()},
                   [ConceptEvidence.from_dict(c) for c in d.get("concepts", [])],
                   [EventEvidence.from_dict(e) for e in d.get("events", [])], bool(d.get("truncated", False)))


@dataclass
class AnnotationResult:
    """The annotation of one conversation.

    Args:
        conversation_id: the conversation's id (``"input"`` for a bare list).
        utterances: one :class:`UtteranceAnnotation` per input utterance, in order.
        model: where the model came from (``"default"`` or a folder) and what it is (``ket``...).
        tasks: the model's tasks, in its order.
        graph: ``(HeteroData, concept names)``: the model's input graph for this conversation (without
            features) with the attention weights attached, and the KB's concept strings; kept for
            :meth:`to_networkx`, not serialised.
    """

    conversation_id: str
    utterances: list[UtteranceAnnotation]
    model: dict[str, Any] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    graph: Any = field(default=None, repr=False, compare=False)

    # -- sequence protocol --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self) -> Iterator[UtteranceAnnotation]:
        return iter(self.utterances)

    def __getitem__(self, i: int) -> UtteranceAnnotation:
        return self.utterances[i]

    def labels(self, task: str = "emotion") -> list[str]:
        """The predicted label of ``task`` for every utterance."""
        return [u.labels[task] for u in self.utterances]

    # -- JSON -----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"conversation_id": self.conversation_id, "model": dict(self.model), "tasks": list(self.tasks),
                "utterances": [u.to_dict() for u in self.utterances]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "AnnotationResult":
        return cls(str(d["conversation_id"]), [UtteranceAnnotation.from_dict(u) for u in d["utterances"]],
                   dict(d.get("model", {})), list(d.get("tasks", [])))

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict` (UTF-8 characters kept as they are)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> "AnnotationResult":
        return cls.from_dict(json.loads(text))

    # -- RDF ------------------------------------------------------------------------------------------------
    def to_graph(self):
        """An rdflib ``Graph``: one ``kg:Annotation`` node per utterance (``urn:kgemo:annotation:<conv>/<i>``)
        with its labels, text, speaker and position, linked by ``kg:evidence`` to every piece of evidence
        (:func:`kgemo.knowledge.rdf.evidence_to_graph`); concepts carry their VAD."""
        from rdflib import Literal
        from rdflib.namespace import XSD

        from ..knowledge.rdf import KG, evidence_to_graph

        graph = None
        for u in self.utterances:
            ann_id = f"{self.conversation_id}/{u.index}"
            g = evidence_to_graph(u.evidence(), annotation_id=ann_id, labels=u.labels,
                                  kb=_RecordedVad(u.concepts))
            node = next(iter(g.subjects(predicate=None, object=KG.Annotation)))
            g.add((node, KG.text, Literal(u.text)))
            g.add((node, KG.speaker, Literal(u.speaker)))
            g.add((node, KG.position, Literal(u.index, datatype=XSD.integer)))
            g.add((node, KG.conversation, Literal(self.conversation_id)))
            for task, label in u.labels.items():
                g.add((node, KG[f"{task}Probability"],
                       Literal(u.probabilities[task][label], datatype=XSD.double)))
            graph = g if graph is None else graph + g
        return graph

    def to_rdf(self, format: str = "turtle") -> str:
        """The annotation and its evidence as RDF text (Turtle by default; any rdflib serializer name)."""
        return self.to_graph().serialize(format=format)

    # -- networkx -------------------------------------------------------------------------------------------
    def to_networkx(self):
        """A networkx ``MultiDiGraph`` of the model's input graph with readable labels.

        Built with :func:`kgemo.graphs.to_networkx`: nodes ``(node_type, index)`` with a ``label`` (utterance
        text, speaker name, token and concept strings), utterances carry ``<task>`` (predicted label) and
        ``<task>_probability``; ``(concept, linked, token)`` edges carry ``attention`` (α) and tokens
        ``token_weight`` (β). ATOMIC evidence is added as ``("event", i)`` nodes with ``(utterance) -[relation]->
        (event)`` edges carrying ``score``. A result read back from JSON has no graph: it gives the evidence
        graph only (utterances, their concepts and events).
        """
        if self.graph is None:
            return self._evidence_networkx()
        from ..graphs import to_networkx

        data, concepts = self.graph
        speakers = list(dict.fromkeys(u.speaker for u in self.utterances))
        names: dict[str, list[str]] = {"utterance": [u.text for u in self.utterances], "speaker": speakers}
        if concepts is not None:
            for nt in ("token", "concept"):
                if nt in data.node_types and "kid" in data[nt]:
                    names[nt] = [concepts[k] for k in data[nt].kid.tolist()]
        g = to_networkx(data, names)
        for u in self.utterances:
            node = ("utterance", u.index)
            for task, label in u.labels.items():
                g.nodes[node][task] = label
                g.nodes[node][f"{task}_probability"] = u.probabilities[task][label]
        self._add_events(g)
        return g

    def _add_events(self, g) -> None:
        n = 0
        for u in self.utterances:
            for e in u.events:
                node = ("event", n)
                n += 1
                g.add_node(node, node_type="event", label=e.tail, head=e.head, source=e.source,
                           provider=e.provider)
                g.add_edge(("utterance", u.index), node, type=e.relation, score=e.score)

    def _evidence_networkx(self):
        import networkx as nx

        g = nx.MultiDiGraph()
        for u in self.utterances:
            attrs = {"node_type": "utterance", "label": u.text, "speaker": u.speaker}
            for task, label in u.labels.items():
                attrs[task], attrs[f"{task}_probability"] = label, u.probabilities[task][label]
            g.add_node(("utterance", u.index), **attrs)
            for c in u.concepts:
                g.add_node(("concept", c.concept), node_type="concept", label=c.concept, vad=c.vad,
                           vad_known=c.vad_known)
                g.add_edge(("concept", c.concept), ("utterance", u.index), type=c.relation, token=c.token,
                           weight=c.weight, attention=c.attention)
        self._add_events(g)
        return g

    # -- display --------------------------------------------------------------------------------------------
    def to_table(self, width: int | None = None, top: int = 3) -> str:
        """A plain-text table for a terminal (see :func:`kgemo.annotate.format_table`)."""
        from .table import format_table

        return format_table([self], width=width, top=top)

    def to_html(self, path: str | Path | None = None, *, title: str | None = None) -> str:
        """One self-contained HTML page (inline CSS / JS, no network at view time): the conversation as chat
        turns with each task's label and a confidence bar; clicking a turn opens its evidence graph (utterance →
        words → ConceptNet concepts coloured by valence, ATOMIC events by relation; the attention weights as edge
        thickness, the numbers on hover). See docs/report.md.

        Args:
            path: write the page there (atomically) as well as returning it.
            title: the page title (default ``kgemo: <conversation id>``).

        Returns:
            The HTML text.
        """
        from .html_page import conversation_page

        text = conversation_page([self], title=title)
        if path is not None:
            from ..storage import atomic_write

            with atomic_write(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text

    def __str__(self) -> str:
        return self.to_table()


class _RecordedVad:
    """The ``kb`` interface :func:`~kgemo.knowledge.rdf.evidence_to_graph` needs for VAD (``concept_id``,
    ``vad``, ``vad_known``), answered from the VAD recorded in the evidence rather than a loaded KB."""

    def __init__(self, concepts: Sequence[ConceptEvidence]):
        self._ids = {c.concept: i for i, c in enumerate(concepts)}
        self._items = list(concepts)

    def concept_id(self, concept: str) -> int:
        return self._ids.get(concept, -1)

    def vad(self, ids):
        return [self._items[i].vad for i in ids]

    def vad_known(self, ids):
        return [self._items[i].vad_known for i in ids]
