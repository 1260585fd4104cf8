"""The knowledge sources a pipeline can load, their typed settings, and loading with rebuild-on-corrupt.

A config names its sources in its ``knowledge`` section, either by path alone or with settings::

    knowledge:
      conceptnet: default                 # the bundled KB; or a name built with `kgemo kb build`, or a folder
      atomic: {path: default, index: flat}
      comet: /models/comet-atomic_2020_BART    # or "retrieval" (RetrievedComet, offline)

:func:`load_knowledge` turns that into loaded objects (:class:`~kgemo.knowledge.ConceptNetKB`,
:class:`~kgemo.knowledge.AtomicRetriever`). This is the level above the caches: a cache found corrupt is
reported, rebuilt from the sources its ``build.json`` recorded, and loaded again, so the store and the KB classes
need to know nothing of builders.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..errors import CacheError, KgemoError
from ..settings import Settings
from .store import resolve_kb_dir

__all__ = ["ConceptNetSettings", "AtomicSettings", "CometSettings", "SOURCES", "knowledge_settings",
           "load_knowledge", "load_source", "table_checksums"]

log = logging.getLogger(__name__)


@dataclass
class ConceptNetSettings(Settings):
    """ConceptNet + NRC-VAD (:class:`~kgemo.knowledge.ConceptNetKB`)."""

    path: str = "default"     # "default" (bundled KB), a name built under $KGEMO_HOME/kb, or a cache folder


@dataclass
class AtomicSettings(Settings):
    """ATOMIC with nearest-event retrieval (:class:`~kgemo.knowledge.AtomicRetriever`)."""

    path: str = "default"     # "default" (bundled slice), a name built under $KGEMO_HOME/kb, or a cache folder
    index: str = "auto"       # FAISS index over the heads: auto (by size), flat, ivf, or torch (exact, no FAISS)


@dataclass
class CometSettings(Settings):
    """COMET generations and relation states (COSMIC / TODKAT): a local checkpoint, or the retrieval stand-in."""

    path: str = "retrieval"   # a COMET checkpoint folder (BART or GPT-2, save_pretrained layout), or "retrieval":
                              # RetrievedComet, ATOMIC retrieval behind COMET's interface (offline, no weights)
    atomic: str = "default"   # the ATOMIC table the "retrieval" stand-in retrieves from


def _load_conceptnet(s: ConceptNetSettings, encoder: Any) -> Any:
    from .conceptnet import ConceptNetKB

    return ConceptNetKB.load(s.path)


def _load_atomic(s: AtomicSettings, encoder: Any) -> Any:
    from .atomic import AtomicRetriever

    # The pipeline's encoder, so that utterance features and ATOMIC heads share one space (the event graph
    # queries ATOMIC with the utterance features).
    return AtomicRetriever.load(s.path, encoder=encoder, index=s.index)


def _load_comet(s: CometSettings, encoder: Any) -> Any:
    from .atomic import AtomicRetriever
    from .comet import CometGenerator, RetrievedComet

    if s.path == "retrieval":
        provider: Any = RetrievedComet(AtomicRetriever.load(s.atomic, encoder=encoder))
    else:
        provider = CometGenerator(s.path)  # on CUDA when available
    # What graph cache keys record of a source: the exact model (weights hash) or table + encoder.
    provider.checksum = provider.id
    return provider


@dataclass(frozen=True)
class Source:
    """One kind of knowledge: its settings class, where its cache folder sits, and how to load it."""

    settings: type[Settings]
    folder: str               # sub-folder of a KB folder (``kgemo kb build all --out DIR`` makes DIR/<folder>)
    meta_file: str            # the file that marks a built cache
    load: Callable[[Any, Any], Any]


#: Every knowledge source kgemo can load, by the name configs use.
SOURCES: dict[str, Source] = {
    "conceptnet": Source(ConceptNetSettings, "conceptnet", "kb.json", _load_conceptnet),
    "atomic": Source(AtomicSettings, "atomic", "atomic.json", _load_atomic),
    "comet": Source(CometSettings, "comet", "config.json", _load_comet),
}


def knowledge_settings(raw: Mapping[str, Any] | None, source: str = "config") -> dict[str, Settings]:
    """A config's ``knowledge`` section → typed settings per source (a bare string is the ``path``)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise KgemoError(f"{source}: knowledge must map source names to paths or settings, got {raw!r:.60}")
    out: dict[str, Settings] = {}
    for name, value in raw.items():
        if name not in SOURCES:
            raise KgemoError(f"{source}: unknown knowledge source {name!r}; known: {sorted(SOURCES)}")
        cls = SOURCES[name].settings
        if isinstance(value, cls):
            out[name] = value
        elif isinstance(value, str):
            out[name] = cls(path=value)  # type: ignore[call-arg]
        else:
            out[name] = cls.from_dict(value, source, section=f"knowledge.{name}")
    return out


def load_source(name: str, settings: Settings | str | Mapping[str, Any], encoder: Any = None) -> Any:
    """Load one source; a corrupt cache is reported, rebuilt from its recorded sources and loaded again."""
    s = knowledge_settings({name: settings})[name]
    src = SOURCES[name]
    try:
        return src.load(s, encoder)
    except CacheError as exc:
        from .build import rebuild_cache

        log.warning("%s", exc)
        if not rebuild_cache(resolve_kb_dir(s.path, src.folder, src.meta_file)):  # type: ignore[attr-defined]
            raise
        return src.load(s, encoder)


def load_knowledge(settings: Mapping[str, Any] | None, encoder: Any = None) -> dict[str, Any]:
    """``{"conceptnet": "default", "atomic": {...}}`` (or typed settings) → the loaded sources by name.

    ``encoder`` is given to the ATOMIC retriever, so that utterance features and ATOMIC heads share one space.
    """
    return {name: load_source(name, s, encoder) for name, s in knowledge_settings(settings).items()}


def table_checksums(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The content checksum of every KB table a config's ``knowledge`` section names, read from the caches' meta
    files alone (nothing is loaded or encoded): ``{"conceptnet": {"path": "default", "checksum": "f5d1..."}}``.

    COMET's ``retrieval`` stand-in reports the ATOMIC table it retrieves from; a COMET checkpoint is identified by
    its loaded model id instead (the pipeline's knowledge checksums). A table not built here has checksum None.
    """
    from ..storage import read_json

    out: dict[str, Any] = {}
    for name, s in knowledge_settings(settings).items():
        path, source, entry = s.path, SOURCES[name], {"path": s.path}  # type: ignore[attr-defined]
        if name == "comet":
            if path != "retrieval":
                out[name] = {**entry, "checksum": None}
                continue
            path, source = s.atomic, SOURCES["atomic"]  # type: ignore[attr-defined]
            entry["atomic"] = path
        meta = resolve_kb_dir(path, source.folder, source.meta_file) / source.meta_file
        out[name] = {**entry, "checksum": read_json(meta).get("checksum") if meta.is_file() else None}
    return out
