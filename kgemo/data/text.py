"""The one text normaliser: what every loader, the JSON Lines reader and annotation input do to an utterance's text.

Training text and annotation text must reach the encoder as the same string, or the model meets at annotation time
a text it never saw in training (MELD's ``company\\x92s`` instead of the ``company’s`` it was trained on). So
every place that turns raw text into an :class:`~kgemo.data.Utterance` calls :func:`normalise_text`:

1. C1 control characters (U+0080–U+009F) become the Windows-1252 characters they stand for (:func:`repair_c1`):
   MELD's CSVs are valid UTF-8 but carry cp1252 punctuation decoded once as Latin-1 upstream (U+0092 for the
   apostrophe, U+0085 for "…", U+0097 for "—"). C1 controls never occur in real dialogue text, so the mapping is
   lossless; the five code points cp1252 leaves undefined stay as they are.
2. Leading and trailing whitespace is removed (``str.strip``), after step 1: U+0085 counts as whitespace to
   Python, and at the end of a MELD utterance it is an ellipsis, not a line break.

Nothing else: no Unicode normal form, no lower-casing, no whitespace folding inside the text. That is exactly what
the MELD and EmoryNLP loaders have always done, and on DailyDialog's, Mastodon's and IEMOCAP's texts step 1 finds
nothing to change, so every built-in loader gives the conversations it gave before, byte for byte (checked on all
splits of the real files; see docs/data.md). The function is idempotent.

Example:
    >>> normalise_text("  The company\\x92s new\\x85 ")
    'The company’s new…'
"""
from __future__ import annotations

__all__ = ["normalise_text", "repair_c1"]

_C1_TO_CP1252: dict[int, str] = {}
for _b in range(0x80, 0xA0):
    try:
        _C1_TO_CP1252[_b] = bytes([_b]).decode("cp1252")
    except UnicodeDecodeError:
        pass
del _b


def repair_c1(text: str) -> str:
    """Map C1 control characters (U+0080–U+009F) to the Windows-1252 characters they stand for."""
    return text.translate(_C1_TO_CP1252)


def normalise_text(text: str) -> str:
    """An utterance's text as kgemo trains and annotates on it: C1 characters repaired, then stripped."""
    return repair_c1(text).strip()
