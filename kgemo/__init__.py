"""kgemo: emotion understanding in conversations, built on knowledge graphs.

Public API (small on purpose):

* :class:`Conversation`, :class:`Utterance`, :func:`load_dataset` — data.
* :class:`Annotator` — ``Annotator.from_pretrained("default").annotate(conversation)``.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .data.conversation import Conversation, Utterance  # noqa: E402
from .errors import DataFormatError, KgemoError  # noqa: E402

__all__ = ["__version__", "Conversation", "Utterance", "KgemoError", "DataFormatError"]


def __getattr__(name):
    # Heavy imports (torch, transformers) only when asked for.
    if name == "Annotator":
        from .annotate import Annotator
        return Annotator
    if name == "load_dataset":
        from .data import load_dataset
        return load_dataset
    raise AttributeError(f"module 'kgemo' has no attribute {name!r}")
