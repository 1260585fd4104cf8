"""Knowledge for kgemo: ConceptNet + NRC-VAD, ATOMIC retrieval, COMET generation, RDF import/export, KB builds.

* :func:`load_knowledge` — a config's ``knowledge`` section (typed settings per source) → loaded sources;
  a corrupt cache is rebuilt from its recorded sources.
* :class:`ConceptNetKB` — token → concept lookup, top-k neighbours (CSR, vectorised), VAD and affect.
* :class:`AtomicRetriever` / :class:`AtomicTable` — nearest ATOMIC events (FAISS) and their tails per relation.
* :class:`CometGenerator` / :class:`RetrievedComet` — COMET generations and relation states, cached in SQLite;
  the retrieval stand-in answers offline from ATOMIC.
* :mod:`kgemo.knowledge.rdf` — Turtle export of KB slices and evidence, import of a user's RDF graph.
* :mod:`kgemo.knowledge.build` — ``kgemo kb build conceptnet|atomic|comet|default|all``.

Heavy dependencies (faiss, transformers, rdflib) are imported only when the part that needs them is used.
"""
from __future__ import annotations

from .atomic import DEFAULT_RELATIONS, AtomicRetriever, AtomicTable
from .conceptnet import ConceptNetKB, EdgeTable
from .index import VectorIndex
from .manifest import SourceManifest, list_manifests, load_manifest
from .sources import AtomicSettings, ConceptNetSettings, knowledge_settings, load_knowledge, load_source
from .store import default_kb_dir, resolve_kb_dir
from .text import lemma_candidates, tokenize, to_concept
from .types import AtomicHit, Evidence, Neighbours, Span, Triple
from .vad import VadLexicon

__all__ = [
    "ConceptNetKB", "EdgeTable", "default_kb_dir", "AtomicRetriever", "AtomicTable", "DEFAULT_RELATIONS",
    "VectorIndex", "SourceManifest", "load_manifest", "list_manifests", "tokenize", "to_concept",
    "lemma_candidates", "AtomicHit", "Evidence", "Neighbours", "Span", "Triple", "VadLexicon",
    "CometGenerator", "RetrievedComet", "load_knowledge", "load_source", "knowledge_settings", "ConceptNetSettings",
    "AtomicSettings", "resolve_kb_dir",
]


def __getattr__(name):
    # transformers is heavy: import the COMET module only when it is asked for.
    if name in ("CometGenerator", "RetrievedComet"):
        from . import comet

        return getattr(comet, name)
    raise AttributeError(f"module 'kgemo.knowledge' has no attribute {name!r}")
