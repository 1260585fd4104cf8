"""A dataset split annotated by a saved model and set against its gold labels: what ``kgemo report`` shows.

The annotator is the one inference path: :meth:`SplitReport.from_model` loads the split with
:func:`kgemo.data.load_dataset`, runs :meth:`Annotator.annotate_many <kgemo.annotate.Annotator.annotate_many>`
on it, and keeps every result (labels, probabilities, concepts, events) beside the utterances' gold labels mapped
into the model's label space. Scores come from :mod:`kgemo.metrics`; :meth:`SplitReport.to_html` writes the
gallery page (:func:`kgemo.annotate.html_page.gallery_page`).

Error types (per utterance and task), for browsing the errors of an emotion model by kind:

* ``correct`` — predicted the gold label;
* ``missed`` — gold is an emotion (not the space's neutral class), predicted neutral;
* ``false_alarm`` — gold is neutral, predicted an emotion;
* ``wrong_class`` — gold and prediction are different non-neutral classes (every error, for a label space without
  a neutral class);
* ``unlabelled`` — the utterance has no gold label for the task (not scored).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..data.labels import LABEL_SPACES, LabelSpace
from ..errors import KgemoError

__all__ = ["SplitReport", "ERROR_TYPES", "ERROR_DESCRIPTIONS", "error_type"]

#: Error-type names; a name's position is its code in the page's JSON.
ERROR_TYPES = ("correct", "missed", "false_alarm", "wrong_class", "unlabelled")
#: What each error type means (shown in the gallery's filter).
ERROR_DESCRIPTIONS = {
    "correct": "correct",
    "missed": "missed: gold is an emotion, predicted neutral",
    "false_alarm": "false alarm: gold is neutral, predicted an emotion",
    "wrong_class": "wrong class: a different non-neutral label",
    "unlabelled": "no gold label",
}


def error_type(gold: int, pred: int, neutral: int | None) -> str:
    """The :data:`ERROR_TYPES` name of predicting label id ``pred`` for gold id ``gold`` (-1 = unlabelled) in a
    label space whose neutral class has id ``neutral`` (``None``: no neutral class)."""
    if gold < 0:
        return "unlabelled"
    if gold == pred:
        return "correct"
    if neutral is not None and pred == neutral:
        return "missed"
    if neutral is not None and gold == neutral:
        return "false_alarm"
    return "wrong_class"


def _round(x: float, digits: int = 2) -> float:
    return round(float(x), digits)


@dataclass
class SplitReport:
    """Annotations of a dataset split with gold labels, per-class scores and confusion matrices.

    Args:
        results: one :class:`~kgemo.annotate.AnnotationResult` per conversation, in dataset order.
        gold: per conversation, per utterance: task → gold label name in the model's label space, or ``None``.
        datasets: per conversation, the dataset it came from.
        label_spaces: task → the model's :class:`~kgemo.data.LabelSpace`.
        metrics: task → the metric (a :data:`kgemo.metrics.METRICS` name) of the whole report; a dataset's own
            scope uses that dataset's metric (:func:`kgemo.metrics.dataset_metric`) where one is registered.
        split: ``train`` / ``dev`` / ``test``.
        model: where the model came from (``"default"`` or its folder).

    Example:
        >>> report = SplitReport.from_model("default", "test", datasets=["meld"])    # doctest: +SKIP
        >>> report.scores()["all"]["emotion"]["report"]["averages"]["weighted_f1"]   # doctest: +SKIP
        51.18
        >>> report.to_html("meld_test.html")                                          # doctest: +SKIP
    """

    results: list[Any]
    gold: list[list[dict[str, str | None]]]
    datasets: list[str]
    label_spaces: dict[str, LabelSpace]
    metrics: dict[str, str]
    split: str
    model: str = ""
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    # -- construction ---------------------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: str | Path = "default", split: str = "test", datasets: Sequence[str] | None = None,
                   root: str | Path | None = None, max_conversations: int | None = None, *, annotator: Any = None,
                   batch_size: int | None = None, progress: bool | None = None, **options: Any) -> "SplitReport":
        """Annotate a split of the datasets a saved model was trained on.

        Args:
            model: ``"default"``, a model folder, or a run folder (``runs/<name>/seed0``) holding ``model/``.
            split: ``train``, ``dev`` or ``test``.
            datasets: dataset names (default: those in the model's ``config.json``, ``pipeline.data.datasets``).
            root: dataset root (default ``$KGEMO_DATA`` or ``../shared/data``).
            max_conversations: only the first N conversations of each dataset (a quick look).
            annotator: an already loaded :class:`~kgemo.annotate.Annotator` for ``model`` (tests pass one).
            batch_size: conversations per annotation batch (default: the annotator's).
            progress: a progress bar (default: when standard error is a terminal).
            options: :meth:`Annotator.from_pretrained <kgemo.annotate.Annotator.from_pretrained>` options
                (``device``, ``top_k``, ``top_events``, ``events``...).

        Raises:
            DataNotFoundError: the dataset files are missing.
            KgemoError: the model records no datasets and none were given, or a gold label has no place in the
                model's label space.
        """
        from ..data import load_dataset
        from ..storage import read_json
        from .annotator import Annotator, resolve_model_path

        path = resolve_model_path(model)
        info = (read_json(path / "config.json").get("pipeline") or {}).get("data") or {}
        names = list(datasets or info.get("datasets") or [])
        if not names:
            raise KgemoError(f"{path}: the model records no datasets (config.json pipeline.data.datasets); "
                             "name them (--dataset meld)")
        convs, origin = [], []
        for name in names:
            loaded = load_dataset(name, split, root=root)
            if max_conversations is not None:
                loaded = loaded[:max_conversations]
            convs += loaded
            origin += [name] * len(loaded)
        if annotator is None:
            annotator = Annotator.from_pretrained(model, **options)
        metrics = dict(info.get("metrics") or {})
        return cls.from_conversations(annotator, convs, split, origin, metrics=metrics, batch_size=batch_size,
                                      progress=progress, model=str(model))

    @classmethod
    def from_conversations(cls, annotator: Any, conversations: Sequence[Any], split: str,
                           datasets: Sequence[str] | str, *, metrics: Mapping[str, str] | None = None,
                           batch_size: int | None = None, progress: bool | None = None,
                           model: str | None = None) -> "SplitReport":
        """Annotate labelled :class:`~kgemo.data.Conversation` objects with ``annotator`` and keep their gold
        labels (``Utterance.labels``), mapped into the model's label space by name or alias.

        Args:
            datasets: the dataset of each conversation, or one name for all.
            metrics: task → metric name (default: the label space's, :func:`kgemo.metrics.dataset_metric`).
        """
        from ..metrics import dataset_metric

        conversations = list(conversations)
        origin = [datasets] * len(conversations) if isinstance(datasets, str) else list(datasets)
        if len(origin) != len(conversations):
            raise ValueError(f"{len(origin)} dataset names for {len(conversations)} conversations")
        spaces = {t: annotator.model.label_spaces[t] for t in annotator.tasks}
        gold = [[{t: _gold_label(u.labels.get(t), spaces[t], d, c.id) for t in spaces} for u in c.utterances]
                for c, d in zip(conversations, origin)]
        stream = annotator.annotate_many(conversations, batch_size=batch_size)
        show = sys.stderr.isatty() if progress is None else progress
        if show:
            from tqdm.auto import tqdm

            stream = tqdm(stream, total=len(conversations), desc=f"annotating {split}", unit="conversation")
        results = list(stream)
        chosen = {t: (metrics or {}).get(t) or dataset_metric(spaces[t]) for t in spaces}
        return cls(results, gold, origin, spaces, chosen, split, model or getattr(annotator, "name", ""))

    # -- arrays ---------------------------------------------------------------------------------------------
    @property
    def tasks(self) -> list[str]:
        return list(self.label_spaces)

    @property
    def num_utterances(self) -> int:
        return sum(len(r.utterances) for r in self.results)

    def _mask(self, dataset: str | None) -> np.ndarray:
        return np.concatenate([np.full(len(r.utterances), dataset is None or d == dataset)
                               for r, d in zip(self.results, self.datasets)]) if self.results else np.zeros(0, bool)

    def gold_ids(self, task: str, dataset: str | None = None) -> np.ndarray:
        """Gold label ids of every utterance (-1 = unlabelled), optionally of one dataset only."""
        key = ("gold", task)
        if key not in self._cache:
            space = self.label_spaces[task]
            self._cache[key] = np.array([-1 if g[task] is None else space.index(g[task])
                                         for conv in self.gold for g in conv], dtype=np.int64)
        return self._cache[key][self._mask(dataset)]

    def pred_ids(self, task: str, dataset: str | None = None) -> np.ndarray:
        """Predicted label ids of every utterance, optionally of one dataset only."""
        key = ("pred", task)
        if key not in self._cache:
            space = self.label_spaces[task]
            self._cache[key] = np.array([space.index(u.labels[task]) for r in self.results for u in r.utterances],
                                        dtype=np.int64)
        return self._cache[key][self._mask(dataset)]

    def error_types(self, task: str, dataset: str | None = None) -> list[str]:
        """The :data:`ERROR_TYPES` name of every utterance for ``task``."""
        neutral = self.label_spaces[task].neutral_index
        return [error_type(int(g), int(p), neutral)
                for g, p in zip(self.gold_ids(task, dataset), self.pred_ids(task, dataset))]

    # -- scores ---------------------------------------------------------------------------------------------
    def scopes(self) -> list[str]:
        """``"all"``, then each dataset when the report holds more than one."""
        names = list(dict.fromkeys(self.datasets))
        return ["all"] + (names if len(names) > 1 else [])

    def scores(self) -> dict[str, dict[str, dict[str, Any] | None]]:
        """scope → task → ``{"report": classification_report, "confusion": counts (gold rows × predicted
        columns), "errors": error type → count}`` (``None`` for a task with no gold label in the scope).

        The ``all`` scope uses :attr:`metrics`; a dataset's scope its own metric (:func:`kgemo.metrics.
        dataset_metric` of the dataset's label space) where one is registered, else :attr:`metrics`.
        """
        from ..metrics import classification_report, confusion_matrix, dataset_metric

        if "scores" in self._cache:
            return self._cache["scores"]
        out: dict[str, dict[str, Any]] = {}
        for scope in self.scopes():
            dataset = None if scope == "all" else scope
            out[scope] = {}
            for task, space in self.label_spaces.items():
                y_true, y_pred = self.gold_ids(task, dataset), self.pred_ids(task, dataset)
                if not (y_true >= 0).any():
                    out[scope][task] = None
                    continue
                metric = self.metrics[task]
                if dataset is not None and f"{dataset}/{task}" in LABEL_SPACES:
                    try:
                        metric = dataset_metric(f"{dataset}/{task}")
                    except KeyError:
                        pass
                errors = dict.fromkeys(ERROR_TYPES, 0)
                for name in self.error_types(task, dataset):
                    errors[name] += 1
                out[scope][task] = {
                    "report": classification_report(y_true, y_pred, space, metric=metric),
                    "confusion": confusion_matrix(y_true, y_pred, space).tolist(),
                    "errors": errors,
                }
        self._cache["scores"] = out
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON summary: model, split, counts, and per scope and task the metric, averages and error counts."""
        scopes = {}
        for scope, tasks in self.scores().items():
            scopes[scope] = {}
            for task, s in tasks.items():
                if s is None:
                    scopes[scope][task] = None
                    continue
                rep = s["report"]
                scopes[scope][task] = {"metric": rep["metric"], "score": _round(rep["score"]),
                                       "averages": {k: _round(v) for k, v in rep["averages"].items()},
                                       "support": rep["support"], "errors": s["errors"]}
        return {"model": self.model, "split": self.split, "datasets": list(dict.fromkeys(self.datasets)),
                "conversations": len(self.results), "utterances": self.num_utterances, "scores": scopes}

    # -- HTML -----------------------------------------------------------------------------------------------
    def to_payload(self, top_concepts: int | None = None, top_events: int | None = None) -> dict[str, Any]:
        """The gallery page's JSON (:func:`kgemo.annotate.html_page.encode_results` plus gold labels, error codes
        and scores)."""
        from .html_page import encode_results

        codes = {name: i for i, name in enumerate(ERROR_TYPES)}
        gold, errors, k = [], [], 0
        per_task = {t: (self.gold_ids(t), [codes[e] for e in self.error_types(t)]) for t in self.tasks}
        for r in self.results:
            n = len(r.utterances)
            gold.append([[int(per_task[t][0][k + j]) for t in self.tasks] for j in range(n)])
            errors.append([[per_task[t][1][k + j] for t in self.tasks] for j in range(n)])
            k += n
        data = encode_results(self.results, tasks=self.tasks,
                              labels={t: list(s.labels) for t, s in self.label_spaces.items()}, gold=gold,
                              errors=errors, datasets=self.datasets, top_concepts=top_concepts,
                              top_events=top_events)
        data.update({
            "split": self.split, "source": self.model, "datasets": list(dict.fromkeys(self.datasets)),
            "neutral": {t: (-1 if s.neutral_index is None else s.neutral_index) for t, s in self.label_spaces.items()},
            "errors": [[name, ERROR_DESCRIPTIONS[name]] for name in ERROR_TYPES],
            "scores": {scope: {task: _page_scores(s) for task, s in tasks.items()}
                       for scope, tasks in self.scores().items()},
        })
        return data

    def to_html(self, path: str | Path | None = None, *, top_concepts: int | None = None,
                top_events: int | None = None, title: str | None = None) -> str:
        """The gallery page (one self-contained HTML file); written to ``path`` when given.

        Args:
            top_concepts, top_events: evidence kept per utterance (default: all the annotator gave).
            title: page title (default: ``kgemo report: <datasets> <split>``).
        """
        from .html_page import gallery_page

        title = title or f"kgemo report: {'+'.join(dict.fromkeys(self.datasets))} {self.split}"
        text = gallery_page(self.to_payload(top_concepts, top_events), title)
        if path is not None:
            from ..storage import atomic_write

            with atomic_write(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text


def _page_scores(s: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if s is None:
        return None
    rep = s["report"]
    return {"metric": rep["metric"], "score": _round(rep["score"]), "support": rep["support"],
            "averages": {k: _round(v) for k, v in rep["averages"].items()},
            "classes": {lab: {k: (_round(v) if isinstance(v, float) else v) for k, v in row.items()}
                        for lab, row in rep["classes"].items()},
            "confusion": s["confusion"], "errors": s["errors"]}


def _gold_label(raw: str | None, space: LabelSpace, dataset: str, conversation: str) -> str | None:
    if raw is None:
        return None
    try:
        return space.canonical(raw)
    except KeyError:
        raise KgemoError(f"{dataset} conversation {conversation}: gold label {raw!r} is not in the model's label "
                         f"space {space.name} {list(space.labels)}; report on the datasets the model was trained "
                         "for") from None
