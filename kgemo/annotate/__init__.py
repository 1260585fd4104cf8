"""Annotate conversations: emotion (and sentiment / act) labels with the knowledge evidence behind them.

* :class:`Annotator` — ``Annotator.from_pretrained("default").annotate(conversation)``; ``annotate_many``
  streams large inputs.
* :class:`AnnotationResult`, :class:`UtteranceAnnotation`, :class:`ConceptEvidence`, :class:`EventEvidence` —
  dataclasses with ``to_dict``; results add ``to_json``, ``to_rdf`` (Turtle) and ``to_networkx``.
* :func:`read_conversations` — JSON / JSONL / CSV input files (what ``kgemo annotate FILE`` reads).
* :func:`format_table` — the terminal table ``kgemo annotate`` prints.
* :class:`Calibration`, :func:`fit_calibration` — temperatures per task in a model folder (``calibration.json``,
  ``kgemo calibrate MODEL_DIR``), applied to every probability the annotator shows.

See docs/annotate.md for what the evidence numbers mean.
"""
from .. import _pyg  # noqa: F401  (PyG without the transformers import it does not need: kgemo/_pyg.py)
from .annotator import DEFAULT_EVENT_RELATIONS, DEFAULT_MODEL_DIR, Annotator, resolve_model_path
from .calibrate import fit_calibration
from .calibration import Calibration
from ..concept_table import ConceptTable
from .inputs import parse_conversations, read_conversations
from .result import AnnotationResult, ConceptEvidence, EventEvidence, UtteranceAnnotation
from .table import format_table

__all__ = [
    "Annotator", "AnnotationResult", "UtteranceAnnotation", "ConceptEvidence", "EventEvidence",
    "read_conversations", "parse_conversations", "format_table", "ConceptTable", "DEFAULT_MODEL_DIR",
    "DEFAULT_EVENT_RELATIONS", "resolve_model_path", "Calibration", "fit_calibration",
]
