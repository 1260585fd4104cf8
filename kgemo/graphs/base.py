"""The graph-builder contract: a pure function (conversation, features, knowledge) → ``HeteroData``.

A builder is identified by ``name``, ``version`` and its typed ``settings`` (a dataclass per builder, filled from
a config's ``graph`` section); the three enter every graph cache key, so bump ``version`` whenever the output of
a builder changes for the same input. Builders receive features and knowledge tables; they import neither the
encoders nor the knowledge package (the input pipeline, :mod:`kgemo.pipeline`, brings both).
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from ..data.conversation import Conversation
from ..data.labels import LabelSpace
from ..errors import DataFormatError, KgemoError
from ..settings import Settings

__all__ = ["GraphBuilder", "register_builder", "get_builder", "builder_class", "BUILDERS", "label_tensor"]

#: name → builder class.
BUILDERS: dict[str, type["GraphBuilder"]] = {}


def register_builder(cls: type["GraphBuilder"]) -> type["GraphBuilder"]:
    """Class decorator adding a builder to :data:`BUILDERS` under ``cls.name``."""
    if cls.name in BUILDERS and BUILDERS[cls.name] is not cls:
        raise ValueError(f"graph builder {cls.name!r} registered twice")
    BUILDERS[cls.name] = cls
    return cls


def builder_class(name: str) -> type["GraphBuilder"]:
    """The builder class registered as ``name``."""
    from .. import graphs as _registered  # noqa: F401  (importing the package registers every builder)

    if name not in BUILDERS:
        raise KgemoError(f"unknown graph builder {name!r}; known: {sorted(BUILDERS)}")
    return BUILDERS[name]


def get_builder(name: str, settings: Settings | None = None, **options: Any) -> "GraphBuilder":
    """The builder registered as ``name``, with typed ``settings`` or keyword ``options`` (unknown ones refused)."""
    return builder_class(name)(settings, **options)


def label_tensor(conv: Conversation, task: str, space: LabelSpace) -> torch.Tensor:
    """Label ids of ``task`` for each utterance (-1 where unlabelled), validated against ``space``."""
    ids = []
    for k, lab in enumerate(conv.labels(task)):
        if lab is None:
            ids.append(-1)
            continue
        try:
            ids.append(space.index(lab))
        except KeyError:
            raise DataFormatError(f"utterance {k + 1}: label {lab!r} is not in {space.name} "
                                  f"{list(space.labels)}", dialogue=conv.id) from None
    return torch.tensor(ids, dtype=torch.long)


class GraphBuilder:
    """Base class of graph builders.

    Subclasses set ``name``, ``version``, ``knowledge`` (the knowledge sources they need, e.g.
    ``("conceptnet",)``), ``settings_class`` (a :class:`~kgemo.settings.Settings` dataclass with a comment on
    every default) and implement :meth:`build`.

    Args:
        settings: an instance of ``settings_class``; or leave it out and pass the options as keywords.
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0"
    knowledge: ClassVar[tuple[str, ...]] = ()
    settings_class: ClassVar[type[Settings]]
    #: Whether graphs are worth caching on disk: False for builders that build faster than a cache reads back.
    cache: ClassVar[bool] = True

    def __init__(self, settings: Settings | None = None, **options: Any):
        if settings is None:
            settings = self.settings_class.from_dict(options, f"graph builder {self.name!r}", "graph")
        elif options:
            raise TypeError(f"{type(self).__name__}: pass settings or keyword options, not both")
        elif not isinstance(settings, self.settings_class):
            raise TypeError(f"{type(self).__name__} takes {self.settings_class.__name__}, got "
                            f"{type(settings).__name__}")
        self.settings = settings

    @property
    def params(self) -> dict[str, Any]:
        """The settings as a plain dict (recorded in model folders and graph cache keys)."""
        return self.settings.to_dict()

    def cache_key(self) -> dict[str, Any]:
        return {"builder": self.name, "version": self.version, "params": self.params}

    def build(self, conv: Conversation, features: np.ndarray, label_spaces: Mapping[str, LabelSpace],
              knowledge: Mapping[str, Any] | None = None) -> HeteroData:
        raise NotImplementedError

    def __call__(self, conv, features, label_spaces, knowledge=None) -> HeteroData:
        if len(features) != len(conv):
            raise DataFormatError(f"{len(features)} feature rows for {len(conv)} utterances", dialogue=conv.id)
        return self.build(conv, features, label_spaces, knowledge or {})

    def build_many(self, convs: Sequence[Conversation], features: Sequence[np.ndarray],
                   label_spaces: Mapping[str, LabelSpace], knowledge: Mapping[str, Any] | None = None,
                   progress: bool | None = None, desc: str | None = None) -> list[HeteroData]:
        """Build one graph per conversation (a progress bar for long inputs)."""
        show = len(convs) > 500 if progress is None else progress
        it = zip(convs, features)
        if show:
            it = tqdm(it, total=len(convs), desc=desc or f"graphs:{self.name}", unit="conv")
        return [self(c, f, label_spaces, knowledge) for c, f in it]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
