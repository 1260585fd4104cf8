"""The dataset registry: :data:`DATASETS` (name → :class:`DatasetSpec`), :func:`load_dataset`, :func:`dataset_files`.

A :class:`DatasetSpec` holds the facts the rest of kgemo needs about a dataset — its tasks and label spaces, the
metric each task is scored with, its splits, how to load a split and which files a split is read from (caches
key on their sha256) — so that no trainer or script hard-codes them.

A name ending in ``.jsonl`` is a dataset file of your own (:mod:`kgemo.data.jsonl`): :func:`get_dataset` makes its
spec from the YAML header beside it, so every function here (and every config's ``data.datasets``) takes such a
path where it takes a registered name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Callable, Mapping

from ..errors import DataNotFoundError
from ..storage import sha256_file
from .conversation import Conversation
from .dailydialog import dailydialog_files, load_dailydialog
from .emorynlp import emorynlp_files, load_emorynlp
from .iemocap import iemocap_files, load_iemocap
from .jsonl import file_paths, is_file_dataset, load_file, read_header
from .labels import LabelSpace, label_space
from .mastodon import load_mastodon, mastodon_files
from .meld import load_meld, meld_files
from .report import LoadReport
from ._io import SPLITS, canonical_split, resolve_root

__all__ = ["DatasetSpec", "DATASETS", "load_dataset", "dataset_files", "dataset_checksums", "get_dataset",
           "file_dataset"]


@dataclass(frozen=True, eq=False)
class DatasetSpec:
    """What kgemo knows about one dataset.

    Args:
        name: registry key (``meld``, ``emorynlp``, ``dailydialog``, ``mastodon``, ``iemocap``), or the path of a
            dataset file of your own (:func:`file_dataset`).
        tasks: task → :class:`LabelSpace`, in the order models should predict them.
        metrics: task → metric name (see ``kgemo.metrics``), the metric the dataset's papers report.
        loader: ``loader(split, root=None, strict=True, report=None, **options) -> list[Conversation]``.
        files: ``files(split, root=None, **options) -> list[Path]``, the files the loader reads for ``split``.
        splits: split names (always ``train``, ``dev``, ``test``).
        options: extra keyword options ``loader`` and ``files`` accept (e.g. DailyDialog's ``layout``).
        downloadable: whether :func:`~kgemo.data.download_dataset` can fetch it (IEMOCAP cannot: licence).
        description: one line for ``kgemo data list``.
        homepage: where the dataset comes from.
    """

    name: str
    tasks: Mapping[str, LabelSpace]
    metrics: Mapping[str, str]
    loader: Callable[..., list[Conversation]] = field(repr=False)
    files: Callable[..., list[Path]] = field(repr=False)
    splits: tuple[str, ...] = SPLITS
    options: tuple[str, ...] = ()
    downloadable: bool = True
    description: str = ""
    homepage: str = ""

    def __post_init__(self):
        if set(self.tasks) != set(self.metrics):
            raise ValueError(f"{self.name}: tasks {list(self.tasks)} and metrics {list(self.metrics)} differ")
        object.__setattr__(self, "tasks", MappingProxyType(dict(self.tasks)))
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    def load(self, split: str, root: str | Path | None = None, strict: bool = True,
             report: LoadReport | None = None, **options) -> list[Conversation]:
        """Load ``split``; see :func:`load_dataset`."""
        self._check_options(options)
        return self.loader(canonical_split(split), root=root, strict=strict, report=report, **options)

    def source_files(self, split: str, root: str | Path | None = None, **options) -> list[Path]:
        """The files ``split`` is read from (raises :class:`~kgemo.errors.DataNotFoundError` if absent)."""
        self._check_options(options)
        return self.files(canonical_split(split), root=root, **options)

    def label_space(self, task: str) -> LabelSpace:
        if task not in self.tasks:
            raise KeyError(f"{self.name} has no task {task!r}; tasks: {list(self.tasks)}")
        return self.tasks[task]

    def metric(self, task: str) -> str:
        self.label_space(task)
        return self.metrics[task]

    def _check_options(self, options: Mapping) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise TypeError(f"{self.name}: unknown option(s) {unknown}; options: {list(self.options) or 'none'}")


def _spec(name: str, metrics: dict[str, str], loader, files, **kw) -> DatasetSpec:
    return DatasetSpec(name, {t: label_space(name, t) for t in metrics}, metrics, loader, files, **kw)


_SPECS = [
    _spec("meld", {"emotion": "weighted_f1", "sentiment": "weighted_f1"}, load_meld, meld_files,
          description="MELD: Friends dialogues, 7 emotions + 3 sentiments",
          homepage="https://github.com/declare-lab/MELD"),
    _spec("emorynlp", {"emotion": "weighted_f1"}, load_emorynlp, emorynlp_files,
          description="EmoryNLP: Friends scenes, 7 emotions (Willcox feeling wheel)",
          homepage="https://github.com/emorynlp/emotion-detection"),
    _spec("dailydialog", {"emotion": "micro_f1_no_neutral", "act": "macro_f1"}, load_dailydialog,
          dailydialog_files, options=("layout",),
          description="DailyDialog: two-party everyday dialogues, 7 emotions + 4 dialogue acts",
          homepage="http://yanran.li/dailydialog"),
    _spec("mastodon", {"sentiment": "mastodon_sentiment_f1", "act": "mastodon_act_f1"}, load_mastodon,
          mastodon_files, description="Mastodon: social-media threads, 3 sentiments + 15 dialogue acts, reply links",
          homepage="https://github.com/RaleLee/Co-GAT"),
    _spec("iemocap", {"emotion": "weighted_f1"}, load_iemocap, iemocap_files, downloadable=False,
          description="IEMOCAP: dyadic acted sessions, 6 emotions (local copy only: licensed per user)",
          homepage="https://sail.usc.edu/iemocap/"),
]

#: Dataset name → :class:`DatasetSpec`. A project can register its own dataset by adding a spec here.
DATASETS: dict[str, DatasetSpec] = {s.name: s for s in _SPECS}


def file_dataset(path: str | Path) -> DatasetSpec:
    """The :class:`DatasetSpec` of a dataset file of your own (``chats.jsonl`` with ``chats.yaml`` beside it).

    Its name is ``path`` as given (the conversations' ``dataset``, the key of its checksums); tasks, label spaces
    and metrics come from the header (:func:`kgemo.data.jsonl.read_header`).

    Example:
        >>> spec = file_dataset("examples/my_chats.jsonl")
        >>> spec.metric("emotion"), len(spec.label_space("emotion"))
        ('weighted_f1', 7)

    Raises:
        DataNotFoundError: the file or its header is missing.
        DataFormatError: the header is wrong (naming its file and line).
    """
    name = str(path)
    header = read_header(path)
    return DatasetSpec(name, header.tasks, header.metrics, partial(load_file, name, dataset=name),
                       partial(file_paths, name), downloadable=False,
                       description=header.description or f"{header.name}: your own conversations ({name})")


def get_dataset(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` called ``name`` (case-insensitive), or of the dataset file ``name`` (``*.jsonl``).

    Raises:
        ValueError: an unknown name.
        DataNotFoundError, DataFormatError: a dataset file that is missing or has a bad header.
    """
    if is_file_dataset(name):
        return file_dataset(name)
    try:
        return DATASETS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; datasets: {sorted(DATASETS)} or a file of your own "
                         "(path/to/chats.jsonl, see docs/your-data.md)") from None


def load_dataset(name: str, split: str, root: str | Path | None = None, strict: bool = True,
                 report: LoadReport | None = None, **options) -> list[Conversation]:
    """Load one split of a dataset as a list of :class:`Conversation` with label names on each utterance.

    Args:
        name: ``meld``, ``emorynlp``, ``dailydialog``, ``mastodon`` or ``iemocap``; or a dataset file of your own,
            ``path/to/chats.jsonl`` (:mod:`kgemo.data.jsonl`).
        split: ``train``, ``dev`` or ``test`` (``val`` / ``valid`` / ``validation`` mean ``dev``).
        root: folder holding ``<name>/``; default ``$KGEMO_DATA``, else ``../shared/data``, else
            ``$KGEMO_HOME/data`` (where :func:`download_dataset` puts files).
        strict: raise :class:`~kgemo.errors.DataFormatError` (naming file and line or dialogue) on the first bad
            row; with ``False`` skip bad rows / dialogues, count them in ``report`` and log one warning line.
        report: a :class:`LoadReport` to fill.
        **options: dataset options, e.g. ``layout="original"`` for DailyDialog.

    Raises:
        DataNotFoundError: the files are missing (the message says how to get them).
        DataFormatError: a bad row with ``strict=True``, or a file that cannot be read at all.

    Example:
        >>> convs = load_dataset("meld", "dev")
        >>> len(convs), convs[0].speakers[:2], convs[0][0].labels["emotion"]
        (114, ['Phoebe', 'Monica'], 'sadness')
    """
    return get_dataset(name).load(split, root=root, strict=strict, report=report, **options)


def dataset_files(name: str, split: str, root: str | Path | None = None, **options) -> list[Path]:
    """The files ``load_dataset(name, split, root, **options)`` reads (for cache keys)."""
    return get_dataset(name).source_files(split, root=root, **options)


def dataset_checksums(name: str, split: str, root: str | Path | None = None, **options) -> dict[str, str]:
    """``{path relative to the data root: sha256}`` of the files of a split: the ``sources`` of a cache key.

    A file outside the data root (a dataset file of your own) is keyed by its path as given."""
    files = dataset_files(name, split, root=root, **options)
    try:
        base = resolve_root(root)
    except DataNotFoundError:  # no data root at all: only dataset files of one's own can have got this far
        base = None
    out = {}
    for path in files:
        try:
            if base is None:
                raise ValueError
            key = path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            key = path.as_posix()
        out[key] = sha256_file(path)
    return out
