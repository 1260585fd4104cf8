"""RDF import and export (rdflib): KB slices and annotation evidence as Turtle; a user's RDF graph as a KB.

Vocabulary. ConceptNet-like statements use ConceptNet's own IRIs, ``cn:ice_cream``
(``http://conceptnet.io/c/en/``) and ``cnr:AtLocation`` (``http://conceptnet.io/r/``). Event knowledge (ATOMIC,
COMET) has free-text heads and tails: they become ``kgev:<hash>`` nodes with an ``rdfs:label``, and relations
``kgrel:xReact``. kgemo's own terms live in ``kg:`` (``urn:kgemo:vocab#``):

* classes ``kg:Concept``, ``kg:Event``, ``kg:Assertion``, ``kg:Evidence``, ``kg:Annotation``;
* an assertion node (one per statement, so weights can be attached) with ``kg:subject``, ``kg:relation``,
  ``kg:object``, ``kg:weight`` (xsd:double), ``kg:source``; evidence adds ``kg:attention``, ``kg:utterance``,
  ``kg:token``; concepts may carry ``kg:valence``, ``kg:arousal``, ``kg:dominance``, ``kg:vadKnown``.

Every statement is also written as the plain triple ``subject relation object``, so generic RDF tools see it.

Import (:func:`load_rdf_kb`) accepts any RDF syntax rdflib reads: plain triples (weight 1), kgemo assertion
nodes, or standard ``rdf:Statement`` reification with a ``kg:weight`` (or any predicate whose local name is
``weight``). Node names are their ``rdfs:label`` when present, else the IRI's last path segment; both are put in
ConceptNet form (``Ice cream`` → ``ice_cream``). ``rdf:type``, labels and kgemo's own terms are not edges.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote, unquote

from ..errors import DataFormatError, DataNotFoundError
from ..storage import short_hash
from .text import to_concept
from .types import Evidence, Triple

__all__ = ["KG", "CN", "CNR", "to_graph", "to_turtle", "evidence_to_graph", "read_rdf_triples", "load_rdf_kb"]

log = logging.getLogger(__name__)

KG_IRI = "urn:kgemo:vocab#"
CN_IRI = "http://conceptnet.io/c/en/"
CNR_IRI = "http://conceptnet.io/r/"
EVENT_IRI = "urn:kgemo:event:"
REL_IRI = "urn:kgemo:relation:"
_CONCEPT_SOURCES = {"conceptnet", "rdf", "user"}


def _ns():
    from rdflib import Namespace

    return Namespace(KG_IRI), Namespace(CN_IRI), Namespace(CNR_IRI), Namespace(EVENT_IRI), Namespace(REL_IRI)


def __getattr__(name: str):
    # Namespaces as module attributes without importing rdflib at package import.
    if name in ("KG", "CN", "CNR"):
        kg, cn, cnr, _, _ = _ns()
        return {"KG": kg, "CN": cn, "CNR": cnr}[name]
    raise AttributeError(name)


def _new_graph():
    from rdflib import Graph

    g = Graph()
    kg, cn, cnr, ev, rel = _ns()
    g.bind("kg", kg)
    g.bind("cn", cn)
    g.bind("cnr", cnr)
    g.bind("kgev", ev)
    g.bind("kgrel", rel)
    return g


def _concept_node(concept: str):
    from rdflib import URIRef

    return URIRef(CN_IRI + quote(to_concept(concept), safe=""))


def _event_node(text: str):
    from rdflib import URIRef

    return URIRef(EVENT_IRI + short_hash(text))


def _add_statement(g, head: str, relation: str, tail: str, weight: float | None, source: str,
                   node=None) -> Any:
    """Add the plain triple and its assertion node; return the assertion node."""
    from rdflib import BNode, Literal, URIRef
    from rdflib.namespace import RDF, RDFS, XSD

    kg, _, _, _, _ = _ns()
    if source in _CONCEPT_SOURCES:
        s, o = _concept_node(head), _concept_node(tail)
        p = URIRef(CNR_IRI + quote(relation, safe="/"))
        for node_, name in ((s, head), (o, tail)):
            g.add((node_, RDF.type, kg.Concept))
            g.add((node_, RDFS.label, Literal(to_concept(name).replace("_", " "))))
    else:
        s, o = _event_node(head), _event_node(tail)
        p = URIRef(REL_IRI + quote(relation, safe=""))
        g.add((s, RDF.type, kg.Event))
        g.add((s, RDFS.label, Literal(head)))
        g.add((o, RDF.type, kg.Event))
        g.add((o, RDFS.label, Literal(tail)))
    g.add((s, p, o))
    a = node if node is not None else BNode()
    g.add((a, RDF.type, kg.Assertion))
    g.add((a, kg.subject, s))
    g.add((a, kg.relation, p))
    g.add((a, kg.object, o))
    g.add((a, kg.source, Literal(source)))
    if weight is not None:
        g.add((a, kg.weight, Literal(float(weight), datatype=XSD.double)))
    return a


def _add_vad(g, kb: Any, concepts: Iterable[str]) -> None:
    from rdflib import Literal
    from rdflib.namespace import XSD

    kg, _, _, _, _ = _ns()
    for c in set(concepts):
        cid = kb.concept_id(to_concept(c))
        if cid < 0:
            continue
        v, a, d = (float(x) for x in kb.vad([cid])[0])
        node = _concept_node(c)
        g.add((node, kg.valence, Literal(round(v, 6), datatype=XSD.double)))
        g.add((node, kg.arousal, Literal(round(a, 6), datatype=XSD.double)))
        g.add((node, kg.dominance, Literal(round(d, 6), datatype=XSD.double)))
        g.add((node, kg.vadKnown, Literal(bool(kb.vad_known([cid])[0]))))


def to_graph(items: Any, kb: Any = None):
    """An rdflib ``Graph`` of ``items``: :class:`Triple` s or ``(head, relation, tail[, weight[, source]])``
    tuples, :class:`Evidence`, or a ``ConceptNetKB`` (all its edges). With ``kb``, concepts get their VAD."""
    from rdflib import Graph

    if isinstance(items, Graph):
        return items
    if hasattr(items, "triples") and hasattr(items, "neighbours"):  # a ConceptNetKB
        kb = kb if kb is not None else items
        items = items.triples()
    g = _new_graph()
    concepts: list[str] = []
    for it in items:
        if isinstance(it, Evidence):
            _add_evidence(g, it, None)
            if it.source in _CONCEPT_SOURCES:
                concepts += [it.head, it.tail]
            continue
        t = Triple(*it)
        _add_statement(g, t.head, t.relation, t.tail, t.weight, t.source)
        if t.source in _CONCEPT_SOURCES:
            concepts += [t.head, t.tail]
    if kb is not None:
        _add_vad(g, kb, concepts)
    return g


def to_turtle(items: Any, kb: Any = None) -> str:
    """Turtle text of :func:`to_graph` (``items`` may also be an rdflib ``Graph``)."""
    return to_graph(items, kb).serialize(format="turtle")


def _add_evidence(g, ev: Evidence, annotation) -> Any:
    from rdflib import Literal
    from rdflib.namespace import RDF, XSD

    kg, _, _, _, _ = _ns()
    node = _add_statement(g, ev.head, ev.relation, ev.tail, ev.weight, ev.source)
    g.add((node, RDF.type, kg.Evidence))
    if ev.attention is not None:
        g.add((node, kg.attention, Literal(float(ev.attention), datatype=XSD.double)))
    if ev.utterance is not None:
        g.add((node, kg.utterance, Literal(int(ev.utterance))))
    if ev.token is not None:
        g.add((node, kg.token, Literal(ev.token)))
    if annotation is not None:
        g.add((annotation, kg.evidence, node))
    return node


def evidence_to_graph(evidence: Iterable[Evidence | dict], annotation_id: str | None = None,
                      labels: dict[str, Any] | None = None, kb: Any = None):
    """The evidence behind an annotation as an rdflib ``Graph``.

    Args:
        evidence: :class:`Evidence` objects (or dicts with their fields).
        annotation_id: names the annotation node (``urn:kgemo:annotation:<id>``); evidence is linked to it with
            ``kg:evidence``.
        labels: predicted labels to record on the annotation node (``kg:emotion "joy"`` ...).
        kb: a ``ConceptNetKB`` to attach VAD to ConceptNet concepts.
    """
    from rdflib import Literal, URIRef
    from rdflib.namespace import RDF

    kg, _, _, _, _ = _ns()
    g = _new_graph()
    ann = None
    if annotation_id is not None or labels:
        ann = URIRef("urn:kgemo:annotation:" + quote(str(annotation_id or "annotation"), safe=""))
        g.add((ann, RDF.type, kg.Annotation))
        for task, label in (labels or {}).items():
            g.add((ann, kg[quote(str(task), safe="")], Literal(str(label))))
    concepts = []
    for ev in evidence:
        ev = ev if isinstance(ev, Evidence) else Evidence(**ev)
        _add_evidence(g, ev, ann)
        if ev.source in _CONCEPT_SOURCES:
            concepts += [ev.head, ev.tail]
    if kb is not None:
        _add_vad(g, kb, concepts)
    return g


# -- import -------------------------------------------------------------------------------------------------------
def _local_name(term) -> str:
    s = str(term)
    for sep in ("#", "/", ":"):
        if sep in s.rstrip(sep):
            s = s.rstrip(sep).rsplit(sep, 1)[1]
            break
    return unquote(s)


def read_rdf_triples(path: str | Path, format: str | None = None) -> list[Triple]:
    """Weighted statements of an RDF file (see the module docstring for what counts as one).

    Raises:
        DataNotFoundError: no such file.
        DataFormatError: rdflib cannot parse it (the message names the file and rdflib's reason).
    """
    from rdflib import Graph, Literal, URIRef
    from rdflib.namespace import OWL, RDF, RDFS
    from rdflib.util import guess_format

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"no RDF file at {path}")
    g = Graph()
    try:
        g.parse(path, format=format or guess_format(str(path)) or "turtle")
    except Exception as exc:  # rdflib raises many parser-specific types
        reason = " ".join(str(exc).split())[:200]  # rdflib's messages span lines; keep the error one line
        raise DataFormatError(f"cannot parse as RDF ({type(exc).__name__}: {reason})", path=path) from exc
    kg, _, _, _, _ = _ns()

    def name(term) -> str:
        label = g.value(term, RDFS.label) if isinstance(term, URIRef) else None
        text = str(label) if label is not None else (str(term) if isinstance(term, Literal) else _local_name(term))
        return to_concept(text)

    def weight_of(node) -> float | None:
        for p, o in g.predicate_objects(node):
            if (p == kg.weight or _local_name(p).lower() == "weight") and isinstance(o, Literal):
                try:
                    return float(o)
                except (TypeError, ValueError):
                    log.warning("%s: non-numeric weight %r ignored", path, str(o))
        return None

    reified: dict[tuple, tuple[float | None, str]] = {}
    aux: set = set()
    for sp, pp, op in ((kg.subject, kg.relation, kg.object), (RDF.subject, RDF.predicate, RDF.object)):
        for node in set(g.subjects(sp, None)):
            s, p, o = g.value(node, sp), g.value(node, pp), g.value(node, op)
            if s is None or p is None or o is None:
                continue
            src = g.value(node, kg.source)
            reified[(s, p, o)] = (weight_of(node), str(src) if src is not None else "rdf")
            aux.add(node)
    skip_p = {RDF.type, RDFS.label, RDFS.comment, OWL.sameAs, RDF.subject, RDF.predicate, RDF.object}
    out: dict[tuple[str, str, str], Triple] = {}
    for s, p, o in g:
        if s in aux or p in skip_p or str(p).startswith(KG_IRI):
            continue
        if not isinstance(o, (URIRef, Literal)):
            continue
        w, src = reified.get((s, p, o), (None, "rdf"))
        h, r, t = name(s), _local_name(p), name(o)
        if h and r and t:
            out[(h, r, t)] = Triple(h, r, t, 1.0 if w is None else w, "rdf")
    for (s, p, o), (w, src) in reified.items():  # reified statements without their plain triple
        h, r, t = name(s), _local_name(p), name(o)
        if h and r and t and (h, r, t) not in out:
            out[(h, r, t)] = Triple(h, r, t, 1.0 if w is None else w, "rdf")
    return sorted(out.values())


def load_rdf_kb(path: str | Path, format: str | None = None, vad: Any = "default", min_weight: float = 0.0,
                **params: Any):
    """A user's RDF graph as a ``ConceptNetKB`` (in memory; ``.save(folder)`` keeps it, and
    ``kgemo kb import-rdf`` does both).

    Args:
        path: RDF file (Turtle, N-Triples, RDF/XML, JSON-LD... guessed from the suffix).
        vad: VAD for the concepts: ``"default"`` (the bundled KB's lexicon), a ``VadLexicon``, or ``None``.
        min_weight: user weights are kept down to this (0: keep all).
        params: more :func:`~kgemo.knowledge.conceptnet.assemble_conceptnet` options.
    """
    from .conceptnet import ConceptNetKB

    triples = read_rdf_triples(path, format)
    if not triples:
        raise DataFormatError("no statements found (expected subject–predicate–object triples)", path=path)
    kb = ConceptNetKB.from_edges(((t.relation, t.head, t.tail, t.weight) for t in triples), vad=vad,
                                 min_weight=min_weight, **params)
    kb.meta["name"] = f"rdf:{Path(path).name}"
    kb.meta["sources"] = [{"name": "rdf", "files": [{"name": Path(path).name}], "license": "user-provided"}]
    return kb
