"""Label spaces: the explicit, ordered label set of every (dataset, task).

The index of a label is its position in ``LabelSpace.labels``; for DailyDialog and Mastodon the order follows the
original files' integer codes so that ids read from those files need no remapping.

Tasks are ``emotion``, ``sentiment`` and ``act``. In Co-GAT's DailyDialog setting the second task is the 7-class
emotion label itself (its data files store the emotion id there); kgemo exposes that as the ``emotion`` task and
does not invent an emotion→sentiment mapping.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ..errors import DataFormatError

__all__ = ["LabelSpace", "LABEL_SPACES", "TASKS", "label_space", "EKMAN7", "to_ekman"]

TASKS = ("emotion", "sentiment", "act")


@dataclass(frozen=True)
class LabelSpace:
    """An ordered set of class names for one task of one dataset.

    Args:
        name: ``"<dataset>/<task>"``.
        labels: class names; a label's id is its index.
        aliases: other spellings found in raw files, mapped to a name in ``labels``.
        neutral: the neutral / "no emotion" class, if the task has one (metrics may exclude it).
    """

    name: str
    labels: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    neutral: str | None = None

    def __post_init__(self):
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"{self.name}: duplicate labels {self.labels}")
        for alias, target in self.aliases.items():
            if target not in self.labels:
                raise ValueError(f"{self.name}: alias {alias!r} points to unknown label {target!r}")

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: object) -> bool:
        return label in self.labels or label in self.aliases

    def __iter__(self):
        return iter(self.labels)

    def canonical(self, raw: str) -> str:
        """The label name for a raw spelling; raises ``KeyError`` if unknown (loaders turn it into a file error)."""
        if raw in self.labels:
            return raw
        if raw in self.aliases:
            return self.aliases[raw]
        raise KeyError(raw)

    def parse(self, raw: str, *, path=None, line=None, dialogue=None) -> str:
        """Like :meth:`canonical`, but an unknown label is a :class:`DataFormatError` naming where it was."""
        try:
            return self.canonical(raw)
        except KeyError:
            raise DataFormatError(
                f"unknown {self.name} label {raw!r}; expected one of {list(self.labels)}",
                path=path, line=line, dialogue=dialogue) from None

    def index(self, label: str) -> int:
        return self.labels.index(self.canonical(label))

    def encode(self, labels: Iterable[str | None]) -> list[int]:
        """Label names → ids; ``None`` (unlabelled) → -1."""
        return [-1 if lab is None else self.index(lab) for lab in labels]

    def decode(self, ids: Iterable[int]) -> list[str | None]:
        return [None if int(i) < 0 else self.labels[int(i)] for i in ids]

    @property
    def neutral_index(self) -> int | None:
        return None if self.neutral is None else self.labels.index(self.neutral)

    def to_dict(self) -> dict:
        return {"name": self.name, "labels": list(self.labels), "aliases": dict(self.aliases),
                "neutral": self.neutral}

    @classmethod
    def from_dict(cls, d: Mapping) -> "LabelSpace":
        return cls(d["name"], tuple(d["labels"]), dict(d.get("aliases", {})), d.get("neutral"))


#: The 7 classes MELD and DailyDialog share (Ekman's six + neutral), in MELD's order.
EKMAN7 = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
_EKMAN_ALIASES = {"happiness": "joy", "no emotion": "neutral", "happy": "joy", "sad": "sadness",
                  "angry": "anger"}


def to_ekman(label: str) -> str:
    """Map a MELD / DailyDialog emotion name to its :data:`EKMAN7` name."""
    label = _EKMAN_ALIASES.get(label, label)
    if label not in EKMAN7:
        raise KeyError(f"{label!r} has no Ekman-7 counterpart")
    return label


_SPACES = [
    LabelSpace("meld/emotion", EKMAN7, neutral="neutral"),
    LabelSpace("meld/sentiment", ("neutral", "positive", "negative"), neutral="neutral"),
    LabelSpace("emorynlp/emotion", ("Neutral", "Joyful", "Peaceful", "Powerful", "Scared", "Mad", "Sad"),
               neutral="Neutral"),
    # Ids are the original dialogues_emotion_*.txt codes 0..6.
    LabelSpace("dailydialog/emotion",
               ("neutral", "anger", "disgust", "fear", "happiness", "sadness", "surprise"),
               aliases={"no emotion": "neutral", "0": "neutral", "1": "anger", "2": "disgust", "3": "fear",
                        "4": "happiness", "5": "sadness", "6": "surprise"},
               neutral="neutral"),
    # Original dialogues_act_*.txt codes are 1..4; ids here are code - 1.
    LabelSpace("dailydialog/act", ("inform", "question", "directive", "commissive"),
               aliases={"1": "inform", "2": "question", "3": "directive", "4": "commissive"}),
    LabelSpace("iemocap/emotion", ("happy", "sad", "neutral", "angry", "excited", "frustrated"),
               neutral="neutral"),
    LabelSpace("mastodon/sentiment", ("positive", "negative", "neutral"),
               aliases={"+": "positive", "-": "negative", "*": "neutral"}, neutral="neutral"),
    # The 15 act letters of Cerisara et al. (2018), in the order Co-GAT's data lists them.
    LabelSpace("mastodon/act", tuple("IWQAORSHDTVJEMF")),
    # The label space of models trained on MELD + DailyDialog together (the embedded default annotator).
    LabelSpace("ekman7/emotion", EKMAN7, aliases=dict(_EKMAN_ALIASES), neutral="neutral"),
]

#: ``"<dataset>/<task>"`` → :class:`LabelSpace`.
LABEL_SPACES: dict[str, LabelSpace] = {s.name: s for s in _SPACES}


def label_space(dataset: str, task: str) -> LabelSpace:
    """The :class:`LabelSpace` of ``task`` on ``dataset`` (e.g. ``label_space("meld", "emotion")``)."""
    try:
        return LABEL_SPACES[f"{dataset}/{task}"]
    except KeyError:
        have = sorted(LABEL_SPACES)
        raise KeyError(f"no label space {dataset}/{task}; known: {have}") from None
