"""The conversation schema every part of kgemo reads: :class:`Utterance` and :class:`Conversation`."""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..errors import DataFormatError
from .labels import TASKS
from .text import normalise_text

__all__ = ["Utterance", "Conversation", "as_conversation"]

#: Speaker name given to utterances that arrive without one (annotation input only; loaders require speakers).
DEFAULT_SPEAKER = "speaker"


@dataclass(frozen=True)
class Utterance:
    """One turn of a conversation.

    Args:
        text: the utterance, non-empty after stripping whitespace.
        speaker: who said it (a name or an id); non-empty.
        labels: task → label name, e.g. ``{"emotion": "joy", "sentiment": "positive"}``; tasks are
            ``emotion``, ``sentiment`` and ``act``. Missing tasks are unlabelled.
        id: optional identifier from the source file (e.g. MELD's ``Utterance_ID``).
    """

    text: str
    speaker: str
    labels: Mapping[str, str] = field(default_factory=dict)
    id: str | None = None

    def __post_init__(self):
        if not isinstance(self.text, str) or not self.text.strip():
            raise DataFormatError(f"empty utterance text {self.text!r}")
        if not isinstance(self.speaker, str) or not self.speaker.strip():
            raise DataFormatError(f"missing speaker for utterance {self.text[:60]!r}")
        for task in self.labels:
            if task not in TASKS:
                raise DataFormatError(f"unknown task {task!r} in labels; tasks are {TASKS}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"speaker": self.speaker, "text": self.text}
        if self.labels:
            d["labels"] = dict(self.labels)
        if self.id is not None:
            d["id"] = self.id
        return d


@dataclass
class Conversation:
    """An ordered list of utterances with where they came from.

    Args:
        id: conversation id, unique within (dataset, split).
        utterances: the turns, in order; at least one.
        dataset: dataset name (``meld``, ``emorynlp``, ``dailydialog``, ``mastodon``, ``iemocap``) or ``None``
            for user input.
        split: ``train`` / ``dev`` / ``test`` or ``None``.
        reply_to: optional reply links as 0-based ``(i, j)`` pairs, "utterance i and j are linked" (Mastodon's
            ``*_adj.txt``; self-loops included when the source has them).
        meta: free-form source facts (season, episode, ...).
    """

    id: str
    utterances: list[Utterance]
    dataset: str | None = None
    split: str | None = None
    reply_to: list[tuple[int, int]] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.id = str(self.id)
        if not self.utterances:
            raise DataFormatError("conversation has no utterances", dialogue=self.id)
        if self.reply_to is not None:
            n = len(self.utterances)
            for i, j in self.reply_to:
                if not (0 <= i < n and 0 <= j < n):
                    raise DataFormatError(f"reply link {i + 1}-{j + 1} outside 1..{n}", dialogue=self.id)

    def __len__(self) -> int:
        return len(self.utterances)

    def __iter__(self):
        return iter(self.utterances)

    def __getitem__(self, i):
        return self.utterances[i]

    @property
    def texts(self) -> list[str]:
        return [u.text for u in self.utterances]

    @property
    def speakers(self) -> list[str]:
        return [u.speaker for u in self.utterances]

    def speaker_ids(self) -> list[int]:
        """Speakers numbered in order of first appearance (0, 1, ...)."""
        ids: dict[str, int] = {}
        return [ids.setdefault(s, len(ids)) for s in self.speakers]

    def labels(self, task: str) -> list[str | None]:
        return [u.labels.get(task) for u in self.utterances]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "dataset": self.dataset, "split": self.split,
                             "utterances": [u.to_dict() for u in self.utterances]}
        if self.reply_to is not None:
            d["reply_to"] = [list(p) for p in self.reply_to]
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Conversation":
        utts = [Utterance(u["text"], u["speaker"], u.get("labels", {}), u.get("id")) for u in d["utterances"]]
        reply = d.get("reply_to")
        return cls(d["id"], utts, d.get("dataset"), d.get("split"),
                   None if reply is None else [tuple(p) for p in reply], dict(d.get("meta", {})))


def as_conversation(obj: Conversation | Sequence[Any] | Mapping[str, Any], id: str = "input") -> Conversation:
    """Accept what a user naturally has and return a validated :class:`Conversation`.

    Accepted: a :class:`Conversation`; a dict with ``utterances``; a list of ``{"speaker", "text"}`` dicts; a list of
    ``(speaker, text)`` pairs; a list of plain strings (one speaker assumed, with a warning). A missing speaker is
    allowed with a warning; an empty or whitespace-only utterance is an error naming its position.

    Every text goes through :func:`~kgemo.data.text.normalise_text`, the normaliser the dataset loaders use, so a
    raw MELD line annotates as the text the model was trained on (a conversation whose texts are already
    normalised, such as a loader's, is returned as it is).
    """
    if isinstance(obj, Conversation):
        if all(normalise_text(u.text) == u.text for u in obj.utterances):
            return obj
        return dataclasses.replace(obj, utterances=[_normalised(u) for u in obj.utterances])
    if isinstance(obj, Mapping):
        if "utterances" not in obj:
            raise DataFormatError("a conversation dict needs an 'utterances' list", dialogue=id)
        id = str(obj.get("id", id))
        obj = obj["utterances"]
    if isinstance(obj, (str, bytes)) or not isinstance(obj, Iterable):
        raise DataFormatError(f"expected a list of utterances, got {type(obj).__name__}", dialogue=id)
    items = list(obj)
    if not items:
        raise DataFormatError("conversation has no utterances", dialogue=id)
    utts: list[Utterance] = []
    missing_speaker = 0
    for k, item in enumerate(items):
        labels: Mapping[str, str] = {}
        uid = None
        if isinstance(item, Utterance):
            utts.append(_normalised(item))
            continue
        if isinstance(item, Mapping):
            text, speaker = item.get("text", item.get("utterance")), item.get("speaker")
            labels, uid = item.get("labels", {}) or {}, item.get("id")
        elif isinstance(item, str):
            text, speaker = item, None
        elif isinstance(item, Sequence) and len(item) == 2:
            speaker, text = item
        else:
            raise DataFormatError(f"utterance {k + 1}: expected a dict, a (speaker, text) pair or a string, "
                                  f"got {item!r:.80}", dialogue=id)
        if not isinstance(text, str) or not normalise_text(text):
            raise DataFormatError(f"utterance {k + 1} is empty or has no 'text'", dialogue=id)
        if speaker is None or (isinstance(speaker, str) and not speaker.strip()):
            missing_speaker += 1
            speaker = DEFAULT_SPEAKER
        utts.append(Utterance(normalise_text(text), str(speaker), labels, None if uid is None else str(uid)))
    if missing_speaker:
        warnings.warn(f"conversation {id}: {missing_speaker} utterance(s) without a speaker; "
                      f"assuming one speaker {DEFAULT_SPEAKER!r}", stacklevel=2)
    return Conversation(id, utts)


def _normalised(u: Utterance) -> Utterance:
    text = normalise_text(u.text)
    return u if text == u.text else dataclasses.replace(u, text=text)
