"""Your own conversations: a JSON Lines file of labelled conversations with a small YAML header beside it.

``chats.jsonl`` holds one conversation per line::

    {"id": "c1", "split": "train", "turns": [
        {"speaker": "Ann", "text": "I got the job!", "emotion": "joy"},
        {"speaker": "Bob", "text": "Wait, which job?"}]}

(one line in the file; wrapped here). A turn has ``speaker`` and ``text`` and any of the labels ``emotion`` /
``sentiment`` / ``act``; a missing or ``null`` label leaves the turn unlabelled: it is context for its neighbours
and left out of the loss and the scores, like the ``-1`` labels of the built-in datasets. Optional keys: the
conversation's ``split`` (``train`` / ``dev`` / ``test``), ``reply_to`` (0-based ``[i, j]`` pairs of linked turns,
as Mastodon's threads have) and ``meta`` (any JSON object); a turn's ``id``. Any other key is an error, so that a
typo (``"emotions"``) is not silently read as "unlabelled".

``chats.yaml`` (or ``chats.yml``) beside it, same name, declares what the labels mean::

    name: chats                    # optional; default: the file's stem. Label spaces are called chats/<task>
    tasks:
      emotion:
        labels: [neutral, joy, sadness, anger]   # the classes, in order (a label's id is its position)
        metric: weighted_f1          # a metric of kgemo.metrics (default weighted_f1)
        neutral: neutral             # optional; micro_f1_no_neutral needs it
        aliases: {happy: joy}        # optional: other spellings in the file
      sentiment: meld/sentiment      # or a label space kgemo knows, by name (its labels, neutral, aliases, metric)
    splits: given                  # every conversation has "split"; or a seeded rule for those without one:
    # splits: {rule: random, seed: 0, dev: 0.1, test: 0.1}

The ``random`` rule ranks the conversations without a ``split`` by sha256 of ``"<seed>:<id>"`` and gives the first
``test`` share (rounded half up, at least one conversation when the share is above 0, never all of them) to test,
the next ``dev`` share to dev and the rest to train: a conversation's place depends on its id and the seed only,
not on the order of the lines. Within a split, conversations keep the order of the file.

Ids are unique within a split (conversations of different splits may share one, as MELD's dialogue ids do);
those placed by the rule must be unique in the whole file.

Text and speaker names are read as written, surrounding whitespace removed: nothing else is normalised.

Example:
    >>> from kgemo.data import load_dataset
    >>> convs = load_dataset("examples/my_chats.jsonl", "train")
    >>> convs[0].id, convs[0].speakers[:2], convs[0][0].labels
    ('parcel', ['Customer', 'Agent'], {'emotion': 'neutral'})
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, Sequence

import yaml

from ..errors import DataFormatError, DataNotFoundError
from .conversation import Conversation, Utterance
from .labels import LABEL_SPACES, TASKS, LabelSpace
from .report import LoadReport
from ._io import SPLITS, Problems, canonical_split, finish, has_bad_bytes, read_text, split_lines
from .text import normalise_text

__all__ = ["SplitRule", "FileHeader", "FileProblem", "ParsedFile", "is_file_dataset", "header_path", "read_header",
           "parse_file", "load_file", "file_paths", "CONVERSATION_KEYS", "TURN_KEYS", "SUFFIX"]

#: What names a dataset file (anything else in ``data.datasets`` is a registered dataset's name).
SUFFIX = ".jsonl"
#: Header file names tried beside ``<stem>.jsonl``, in order.
HEADER_SUFFIXES = (".yaml", ".yml")
#: Keys a conversation line may have.
CONVERSATION_KEYS = ("id", "turns", "split", "reply_to", "meta")
#: Keys a turn may have: speaker, text, an optional id and one label per task.
TURN_KEYS = ("speaker", "text", "id", *TASKS)
_HEADER_KEYS = ("name", "description", "tasks", "splits")
_TASK_KEYS = ("labels", "metric", "neutral", "aliases")
_RULE_KEYS = ("rule", "seed", "dev", "test")
DEFAULT_METRIC = "weighted_f1"


def is_file_dataset(name: str | Path) -> bool:
    """Whether a ``data.datasets`` entry names a dataset file (``*.jsonl``) rather than a registered dataset."""
    return str(name).lower().endswith(SUFFIX)


# -- the header -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitRule:
    """Places conversations that name no split: a seeded ranking by id, then test / dev / train shares.

    Args:
        seed: changes the ranking.
        dev: share of those conversations that go to dev, in ``[0, 1)``.
        test: share that goes to test, in ``[0, 1)``; ``dev + test < 1``.

    Example:
        >>> SplitRule(seed=0, dev=0.2, test=0.2).assign(["a", "b", "c", "d", "e"])
        ['dev', 'train', 'train', 'test', 'train']
    """

    seed: int = 0
    dev: float = 0.1
    test: float = 0.1

    def assign(self, ids: Sequence[str]) -> list[str]:
        """The split of each id, in the order given."""
        n = len(ids)
        ranked = sorted(range(n), key=lambda i: (hashlib.sha256(f"{self.seed}:{ids[i]}".encode()).hexdigest(), i))
        n_test = min(_share(self.test, n), max(n - 1, 0))
        n_dev = min(_share(self.dev, n), max(n - n_test - 1, 0))  # at least one train conversation stays
        out = ["train"] * n
        for rank, i in enumerate(ranked):
            if rank < n_test:
                out[i] = "test"
            elif rank < n_test + n_dev:
                out[i] = "dev"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"rule": "random", "seed": self.seed, "dev": self.dev, "test": self.test}


def _share(fraction: float, n: int) -> int:
    if fraction <= 0 or n == 0:
        return 0
    return max(1, int(fraction * n + 0.5))


@dataclass(frozen=True)
class FileHeader:
    """What a dataset file's YAML header declares.

    Args:
        path: the header file.
        name: the dataset's short name (label spaces are ``<name>/<task>`` unless a known space is referenced).
        tasks: task → :class:`LabelSpace`, in the header's order.
        metrics: task → metric name (a key of ``kgemo.metrics.METRICS``).
        split_rule: how conversations without a ``split`` are placed; ``None``: every one must give its split.
        description: free text for listings.
    """

    path: Path
    name: str
    tasks: Mapping[str, LabelSpace]
    metrics: Mapping[str, str]
    split_rule: SplitRule | None = None
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "tasks", MappingProxyType(dict(self.tasks)))
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    def to_dict(self) -> dict[str, Any]:
        """The header as YAML would hold it (label lists spelled out)."""
        tasks: dict[str, Any] = {}
        for task, space in self.tasks.items():
            entry: dict[str, Any] = {"labels": list(space.labels), "metric": self.metrics[task]}
            if space.neutral is not None:
                entry["neutral"] = space.neutral
            if space.aliases:
                entry["aliases"] = dict(space.aliases)
            tasks[task] = entry
        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["tasks"] = tasks
        out["splits"] = self.split_rule.to_dict() if self.split_rule else "given"
        return out


def header_path(path: str | Path) -> Path:
    """The header beside ``path``: ``<stem>.yaml``, else ``<stem>.yml``.

    Raises:
        DataNotFoundError: neither exists (the message names both).
    """
    path = Path(path).expanduser()
    for suffix in HEADER_SUFFIXES:
        candidate = path.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise DataNotFoundError(f"{path}: no header beside it: expected {path.with_suffix('.yaml').name} (or "
                            f"{path.with_suffix('.yml').name}) naming the label sets, metrics and splits; see "
                            "docs/your-data.md")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key of a YAML document, by its path of keys (for errors that name a line)."""
    out: dict[tuple[str, ...], int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return out

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = path + (str(key.value),)
                out.setdefault(here, key.start_mark.line + 1)
                walk(value, here)

    walk(root, ())
    return out


def read_header(path: str | Path) -> FileHeader:
    """Read and check the header of the dataset file ``path`` (the ``.jsonl``; the header is found beside it).

    Raises:
        DataNotFoundError: the file or its header is missing.
        DataFormatError: the header is not valid YAML or declares something wrong (an unknown task or metric, an
            empty or repeated label list, a bad split rule); the message names the header file and line.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such dataset file" + ("" if not path.is_dir() else " (a folder)"))
    hpath = header_path(path)
    text, _ = read_text(hpath, Problems(True, LoadReport()))
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataFormatError(f"invalid YAML ({getattr(exc, 'problem', None) or exc})", path=hpath,
                              line=None if mark is None else mark.line + 1) from None
    lines = _key_lines(text)

    def error(message: str, *key: str) -> DataFormatError:
        line = None
        for k in range(len(key), 0, -1):  # the deepest key that is written in the file
            if key[:k] in lines:
                line = lines[key[:k]]
                break
        return DataFormatError(message, path=hpath, line=line)

    if not isinstance(raw, Mapping):
        raise error("a header is a mapping with 'tasks' (and 'splits', 'name'); see docs/your-data.md")
    unknown = sorted(set(map(str, raw)) - set(_HEADER_KEYS))
    if unknown:
        raise error(f"unknown key {unknown[0]!r}; a header has {list(_HEADER_KEYS)}", unknown[0])
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name.strip() or "/" in name:
        raise error(f"name must be a non-empty string without '/', got {name!r}", "name")
    name = name.strip()
    tasks_raw = raw.get("tasks")
    if not isinstance(tasks_raw, Mapping) or not tasks_raw:
        raise error("'tasks' must map each task (emotion, sentiment, act) to its labels", "tasks")
    tasks: dict[str, LabelSpace] = {}
    metrics: dict[str, str] = {}
    for task, entry in tasks_raw.items():
        task = str(task)
        if task not in TASKS:
            raise error(f"unknown task {task!r}; tasks are {list(TASKS)}", "tasks", task)
        tasks[task], metrics[task] = _task_space(name, task, entry, lambda m, *k: error(m, "tasks", task, *k))
    description = raw.get("description") or ""
    if not isinstance(description, str):
        raise error("description must be text", "description")
    rule = _split_rule(raw.get("splits", "given"), lambda m, *k: error(m, "splits", *k))
    return FileHeader(hpath, name, tasks, metrics, rule, description.strip())


def _task_space(name: str, task: str, entry: Any, error) -> tuple[LabelSpace, str]:
    """(label space, metric) of one ``tasks:`` entry: a list of labels, a known space's name, or a mapping."""
    if isinstance(entry, (str, list)):
        entry = {"labels": entry}
    if not isinstance(entry, Mapping):
        raise error(f"{task}: expected a list of labels or a mapping with 'labels' (and 'metric', 'neutral', "
                    f"'aliases'), got {type(entry).__name__}")
    unknown = sorted(set(map(str, entry)) - set(_TASK_KEYS))
    if unknown:
        raise error(f"{task}: unknown key {unknown[0]!r}; a task has {list(_TASK_KEYS)}", unknown[0])
    labels = entry.get("labels")
    metric = entry.get("metric")
    if isinstance(labels, str):  # a label space kgemo knows: all of it, as is
        if labels not in LABEL_SPACES:
            raise error(f"{task}: unknown label space {labels!r}; known: {sorted(LABEL_SPACES)} (or give a list)",
                        "labels")
        if "neutral" in entry or "aliases" in entry:
            raise error(f"{task}: 'neutral' and 'aliases' come with the label space {labels!r}; give a list of "
                        "labels to set them", "neutral" if "neutral" in entry else "aliases")
        space = LABEL_SPACES[labels]
        if metric is None:
            from ..metrics.scores import DATASET_METRICS

            metric = DATASET_METRICS.get(space.name, DEFAULT_METRIC)
    else:
        if not isinstance(labels, list) or not labels:
            raise error(f"{task}: 'labels' must be a non-empty list of class names (or a known label space's name)",
                        "labels")
        if not all(isinstance(lab, (str, int)) and not isinstance(lab, bool) and str(lab).strip()
                   for lab in labels):
            raise error(f"{task}: every label must be a non-empty name, got {labels!r:.120}", "labels")
        names = tuple(str(lab).strip() for lab in labels)
        repeated = sorted({lab for lab in names if names.count(lab) > 1})
        if repeated:
            raise error(f"{task}: label {repeated[0]!r} is listed twice", "labels")
        neutral = entry.get("neutral")
        if neutral is not None and str(neutral) not in names:
            raise error(f"{task}: neutral {neutral!r} is not one of the labels {list(names)}", "neutral")
        aliases = entry.get("aliases") or {}
        if not isinstance(aliases, Mapping):
            raise error(f"{task}: aliases must map other spellings to labels", "aliases")
        aliases = {str(k): str(v) for k, v in aliases.items()}
        bad = [k for k, v in aliases.items() if v not in names]
        if bad:
            raise error(f"{task}: alias {bad[0]!r} points to {aliases[bad[0]]!r}, which is not a label", "aliases")
        space = LabelSpace(f"{name}/{task}", names, aliases, None if neutral is None else str(neutral))
    metric = DEFAULT_METRIC if metric is None else metric
    from ..metrics.scores import METRICS, score

    if metric not in METRICS:
        raise error(f"{task}: unknown metric {metric!r}; known: {sorted(METRICS)}", "metric")
    try:  # a metric that needs a class the space lacks (micro_f1_no_neutral without a neutral) fails here
        score(metric, [0], [0], space)
    except (ValueError, KeyError) as exc:
        raise error(f"{task}: metric {metric} does not fit these labels: {exc}", "metric") from None
    return space, metric


def _split_rule(value: Any, error) -> SplitRule | None:
    if value == "given":
        return None
    if not isinstance(value, Mapping):
        raise error(f"splits must be 'given' or a rule like {{rule: random, seed: 0, dev: 0.1, test: 0.1}}, got "
                    f"{value!r:.60}")
    unknown = sorted(set(map(str, value)) - set(_RULE_KEYS))
    if unknown:
        raise error(f"unknown key {unknown[0]!r}; a split rule has {list(_RULE_KEYS)}", unknown[0])
    if value.get("rule") != "random":
        raise error(f"rule {value.get('rule')!r}: the only rule is 'random'", "rule")
    seed = value.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise error(f"seed must be a whole number, got {seed!r}", "seed")
    shares = {}
    for key in ("dev", "test"):
        v = value.get(key, 0.1)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise error(f"{key} must be a share in [0, 1), got {v!r}", key)
        shares[key] = float(v)
    if shares["dev"] + shares["test"] >= 1:
        raise error(f"dev + test = {shares['dev'] + shares['test']:g} leaves nothing to train on", "dev")
    return SplitRule(seed, shares["dev"], shares["test"])


# -- the conversations ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileProblem:
    """One line that cannot be loaded: the :class:`LoadReport` reason, the error (naming file and line), and the
    split the line named or was placed in (``None`` when it could not be told)."""

    line: int
    reason: str
    error: DataFormatError
    split: str | None = None


@dataclass(frozen=True)
class _Record:
    line: int
    id: str
    split: str | None
    utterances: tuple[Utterance, ...]
    reply_to: tuple[tuple[int, int], ...] | None
    meta: Mapping[str, Any]


@dataclass
class ParsedFile:
    """A dataset file read once: its header, the conversations that load (with their split) and the problems.

    ``records`` are in file order; ``problems`` in line order, one per bad line (its first problem).
    """

    header: FileHeader
    records: list[_Record] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)

    def conversations(self, split: str, dataset: str | None = None) -> list[Conversation]:
        """Fresh :class:`Conversation` objects of ``split`` (the cached parse is never handed out to be changed)."""
        return [Conversation(r.id, list(r.utterances), dataset, split,
                             None if r.reply_to is None else [tuple(p) for p in r.reply_to], dict(r.meta))
                for r in self.records if r.split == split]

    def skipped(self) -> Counter:
        """reason → lines a lenient load skips."""
        return Counter(p.reason for p in self.problems)


# Parsed files keyed by (path, size, mtime) of the file and its header: a run loads three splits of one file, and
# asks for its spec several times.
_PARSED: dict[tuple, ParsedFile] = {}


def _stat_key(path: Path, header: Path) -> tuple:
    a, b = path.stat(), header.stat()
    return (str(path.resolve()), a.st_size, a.st_mtime_ns, str(header.resolve()), b.st_size, b.st_mtime_ns)


def parse_file(path: str | Path) -> ParsedFile:
    """Read the dataset file ``path`` and its header; every problem is collected, none raised (see
    :func:`load_file` for strict loading).

    Raises:
        DataNotFoundError: the file or its header is missing.
        DataFormatError: the header is wrong (a bad line of the file is a :class:`FileProblem` instead).
    """
    path = Path(path).expanduser()
    header = read_header(path)
    key = _stat_key(path, header.path)
    if key in _PARSED:
        return _PARSED[key]
    text, bad_bytes = read_text(path, Problems(False, LoadReport()))
    parsed = ParsedFile(header)
    for n, line in enumerate(split_lines(text), start=1):
        if not line.strip():
            continue  # blank lines are allowed (e.g. a trailing one)
        if bad_bytes and has_bad_bytes(line):
            parsed.problems.append(FileProblem(n, "bad_utf8", DataFormatError(
                "invalid UTF-8 bytes; save the file as UTF-8", path=path, line=n)))
            continue
        record = _parse_line(line, n, path, header)
        if isinstance(record, FileProblem):
            parsed.problems.append(record)
        else:
            parsed.records.append(record)
    _place(parsed, path)
    parsed.problems.sort(key=lambda p: p.line)
    if len(_PARSED) > 8:
        _PARSED.clear()
    _PARSED[key] = parsed
    return parsed


def _parse_line(line: str, n: int, path: Path, header: FileHeader) -> _Record | FileProblem:
    def problem(reason: str, message: str, dialogue: str | None = None, split: str | None = None) -> FileProblem:
        return FileProblem(n, reason, DataFormatError(message, path=path, line=n, dialogue=dialogue), split)

    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return problem("malformed_row", f"invalid JSON ({exc.msg}, column {exc.colno})")
    if not isinstance(obj, dict):
        return problem("malformed_row", 'expected a JSON object {"id": ..., "turns": [...]}, got '
                                        f"{type(obj).__name__}")
    unknown = [k for k in obj if k not in CONVERSATION_KEYS]
    if unknown:
        return problem("malformed_row", f"unknown key {unknown[0]!r}; a conversation has {list(CONVERSATION_KEYS)} "
                                        "(put other facts under 'meta')")
    cid = obj.get("id")
    if not isinstance(cid, (str, int)) or isinstance(cid, bool) or not str(cid).strip():
        return problem("malformed_row", f"'id' must be a non-empty string or number, got {cid!r:.40}")
    cid = str(cid).strip()
    split = obj.get("split")
    if split is not None:
        try:
            split = canonical_split(split) if isinstance(split, str) else None
        except ValueError:
            split = None
        if split is None:
            return problem("malformed_row", f"split {obj['split']!r} is not one of {list(SPLITS)}", cid)
    turns = obj.get("turns")
    if not isinstance(turns, list):
        return problem("malformed_row", "'turns' must be a list of {\"speaker\", \"text\", ...} objects", cid, split)
    if not turns:
        return problem("empty_utterance", "the conversation has no turns", cid, split)
    utts = []
    for k, turn in enumerate(turns, start=1):
        at = f"turn {k}: "
        if not isinstance(turn, dict):
            return problem("malformed_row", f"{at}expected an object with speaker and text, got {turn!r:.40}", cid,
                           split)
        unknown = [key for key in turn if key not in TURN_KEYS]
        if unknown:
            return problem("malformed_row", f"{at}unknown key {unknown[0]!r}; a turn has {list(TURN_KEYS)}", cid,
                           split)
        text = turn.get("text")
        if not isinstance(text, str):
            return problem("empty_utterance", f"{at}missing 'text'" if text is None else
                           f"{at}'text' must be a string, got {type(text).__name__}", cid, split)
        if not normalise_text(text):
            return problem("empty_utterance", f"{at}empty text", cid, split)
        speaker = turn.get("speaker")
        if isinstance(speaker, int) and not isinstance(speaker, bool):
            speaker = str(speaker)
        if speaker is None or (isinstance(speaker, str) and not speaker.strip()):
            return problem("missing_speaker", f"{at}missing speaker", cid, split)
        if not isinstance(speaker, str):
            return problem("malformed_row", f"{at}'speaker' must be a name, got {speaker!r:.40}", cid, split)
        labels = {}
        for task in TASKS:
            value = turn.get(task)
            if value is None:
                continue  # unlabelled: context only
            if task not in header.tasks:
                return problem("unknown_label", f"{at}{task} label {value!r:.40}, but {header.path.name} declares "
                                                f"no {task} task (tasks: {list(header.tasks)})", cid, split)
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                return problem("malformed_row", f"{at}{task} must be a label name, got {value!r:.40}", cid, split)
            space = header.tasks[task]
            try:
                labels[task] = space.canonical(str(value).strip())
            except KeyError:
                return problem("unknown_label", f"{at}{task} label {value!r} is not declared in "
                                                f"{header.path.name}; labels: {list(space.labels)}", cid, split)
        uid = turn.get("id")
        if uid is not None and (isinstance(uid, bool) or not isinstance(uid, (str, int))):
            return problem("malformed_row", f"{at}'id' must be a string or number, got {uid!r:.40}", cid, split)
        utts.append(Utterance(normalise_text(text), speaker.strip(), labels, None if uid is None else str(uid)))
    reply = obj.get("reply_to")
    if reply is not None:
        ok = isinstance(reply, list) and all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(i, int) and not isinstance(i, bool)
                                                        and 0 <= i < len(utts) for i in p) for p in reply)
        if not ok:
            return problem("bad_adjacency", f"'reply_to' must be a list of [i, j] turn indices in 0..{len(utts) - 1}",
                           cid, split)
        reply = tuple((p[0], p[1]) for p in reply)
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        return problem("malformed_row", "'meta' must be an object", cid, split)
    return _Record(n, cid, split, tuple(utts), reply, MappingProxyType(meta))


def _place(parsed: ParsedFile, path: Path) -> None:
    """Give every record its split (the rule for those without one) and drop repeated ids, as problems."""
    header, records = parsed.header, parsed.records
    unplaced = [r for r in records if r.split is None]
    if unplaced and header.split_rule is None:
        for r in unplaced:
            parsed.problems.append(FileProblem(r.line, "missing_split", DataFormatError(
                f"no 'split', and {header.path.name} has no split rule (splits: given); add \"split\": "
                "\"train\" / \"dev\" / \"test\", or a rule such as splits: {rule: random, seed: 0, dev: 0.1, "
                "test: 0.1}", path=path, line=r.line, dialogue=r.id)))
        unplaced_ids: set[int] = {id(r) for r in unplaced}
        records = [r for r in records if id(r) not in unplaced_ids]
    elif unplaced:
        first: dict[str, int] = {}
        kept = []
        for r in unplaced:  # the rule ranks by id: placed ids must be unique in the whole file
            if r.id in first:
                parsed.problems.append(FileProblem(r.line, "duplicate_id", DataFormatError(
                    f"id {r.id!r} is used on line {first[r.id]} too; ids placed by the split rule must be unique",
                    path=path, line=r.line)))
            else:
                first[r.id] = r.line
                kept.append(r)
        placed = dict(zip((id(r) for r in kept), header.split_rule.assign([r.id for r in kept])))
        dropped = {id(r) for r in unplaced} - set(placed)
        records = [r if r.split is not None else _with_split(r, placed[id(r)])
                   for r in records if id(r) not in dropped]
    seen: dict[tuple[str, str], int] = {}
    out = []
    for r in records:
        key = (r.split, r.id)
        if key in seen:
            parsed.problems.append(FileProblem(r.line, "duplicate_id", DataFormatError(
                f"id {r.id!r} is used on line {seen[key]} too, in the same split ({r.split})", path=path,
                line=r.line), r.split))
            continue
        seen[key] = r.line
        out.append(r)
    parsed.records = out


def _with_split(r: _Record, split: str) -> _Record:
    return _Record(r.line, r.id, split, r.utterances, r.reply_to, r.meta)


def file_paths(path: str | Path, split: str, root: str | Path | None = None) -> list[Path]:
    """The files a split of a dataset file is read from: the file and its header (caches key on both). The path
    stays as given (relative paths are relative to the current folder), so a record of it is portable."""
    canonical_split(split)
    path = Path(path)
    if not path.expanduser().is_file():
        raise DataNotFoundError(f"{path}: no such dataset file")
    return [path, header_path(path)]


def load_file(path: str | Path, split: str, root: str | Path | None = None, strict: bool = True,
              report: LoadReport | None = None, dataset: str | None = None) -> list[Conversation]:
    """Load one split of a dataset file (the loader behind ``load_dataset("path/chats.jsonl", split)``).

    Args:
        path: the ``.jsonl`` file (relative to the current folder).
        split: ``train``, ``dev`` or ``test``.
        root: unused (a dataset file is found by its own path); accepted like every loader's.
        strict: raise the file's first problem (whatever its split: a file must be valid as a whole); with
            ``False`` skip bad lines and count them in ``report`` (a line whose split cannot be told is counted
            with ``train``).
        report: filled with counts and the first problems.
        dataset: the name set on each conversation (default: ``path`` as given).

    Raises:
        DataNotFoundError: the file or its header is missing.
        DataFormatError: a bad header, or a bad line when ``strict`` (naming file and line).
    """
    split = canonical_split(split)
    report = report if report is not None else LoadReport()
    report.dataset, report.split = str(dataset or path), split
    parsed = parse_file(path)
    problems = Problems(strict, report)
    for p in parsed.problems:
        if strict or p.split == split or (p.split is None and split == "train"):
            problems(p.reason, p.error, "dialogue")
    return finish(report, parsed.conversations(split, str(dataset or path)))
