r"""Calibrated probabilities for a saved model: one temperature per task (and optionally one offset per class),
fitted on dev, kept in the model folder.

A model trained with cross-entropy is usually over-confident: it says 0.9 where it is right 75% of the time.
:func:`kgemo.annotate.calibrate.fit_calibration` (``kgemo calibrate MODEL_DIR``) runs a model folder over a
labelled split (dev by default; the datasets it was trained on, through the same input pipeline and caches as
``kgemo evaluate``), fits :math:`T` per task by minimising the negative log-likelihood
(:func:`kgemo.metrics.calibration.fit_temperature`) and writes ``calibration.json`` beside the weights, with the
expected calibration error before and after on every dataset's dev and test split, and the same numbers into the
model card (``README.md``, between ``<!-- calibration -->`` markers).

With ``--class-bias`` it first chooses one offset per class, :math:`\mathbf b`, that maximises the mean of each
dataset's own metric on dev (:func:`kgemo.metrics.calibration.fit_class_bias`): a model trained with class weights,
or on several datasets in one head, predicts the frequent class less often than it occurs. Then :math:`T` is
fitted on :math:`\mathbf z + \mathbf b`. Offsets change labels: they are a decision rule, chosen on dev and
recorded with the metric before and after on each split.

The :class:`~kgemo.annotate.Annotator` loads the file with the model and shows
:math:`\mathrm{softmax}((\mathbf z + \mathbf b) / T)` everywhere a probability appears — the table, JSON, JSONL, the
HTML bars, RDF's ``kg:emotionProbability``, networkx, and the occlusion effects (a drop of the shown probability);
the label is its argmax (with no offsets, the argmax of the logits: a temperature never changes a label). A
``calibration.json`` fitted for other weights (its ``weights_sha256`` differs from ``model.safetensors``) is
ignored with a warning: refit it with ``kgemo calibrate MODEL_DIR``.

Example:
    >>> from kgemo.annotate.calibrate import fit_calibration
    >>> cal = fit_calibration("runs/ket_meld/seed0/model")                  # doctest: +SKIP
    >>> cal.temperatures, cal.scores["test"]["meld"]["emotion"]["ece_after"]  # doctest: +SKIP
    ({'emotion': 1.42}, 0.021)
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..errors import KgemoError
from ..metrics.calibration import ECE_BINS

__all__ = ["Calibration", "CALIBRATION_FILE", "calibrate_probabilities"]

#: The file in a model folder that holds its temperatures.
CALIBRATION_FILE = "calibration.json"
FORMAT = "kgemo-calibration/2"
#: Formats read: /1 has temperatures only.
READ_FORMATS = ("kgemo-calibration/1", FORMAT)


def calibrate_probabilities(probs: torch.Tensor, temperature: float, bias: Sequence[float] | None = None
                            ) -> torch.Tensor:
    r""":math:`\mathrm{softmax}((\mathbf z + \mathbf b) / T)` from ``probs`` = :math:`\mathrm{softmax}(\mathbf z)`
    ``[n, classes]``: :math:`\log p = \mathbf z - \mathrm{logsumexp}(\mathbf z)` differs from the logits by a
    constant per row, which the softmax cancels. ``T == 1`` with no ``bias`` returns ``probs`` itself, untouched."""
    if temperature == 1.0 and bias is None:
        return probs
    z = torch.log(probs.double())
    if bias is not None:
        z = z + torch.as_tensor(bias, dtype=torch.float64)
    return torch.softmax(z / float(temperature), -1)


@dataclass
class Calibration:
    """Temperatures (and class offsets) per task and how they were obtained (the content of ``calibration.json``).

    Args:
        temperatures: task → :math:`T` (> 0; 1 leaves the probabilities as the model gives them).
        split: the split :math:`T` was fitted on.
        datasets: the datasets of that split.
        weights_sha256: sha256 of the ``model.safetensors`` it was fitted for.
        bins: ECE bins.
        scores: split → dataset → task → ``utterances``, ``accuracy``, ``ece_before``, ``ece_after``,
            ``nll_before``, ``nll_after`` (the fit split and the others scored); ``metric``, ``metric_before``,
            ``metric_after`` (the dataset's own metric) and, with offsets, ``accuracy_after``.
        command: the command that rebuilds it.
        weighting: how the fit weighed the datasets (``dataset``: each dataset's mean NLL once; ``utterance``).
        biases: task → one offset per class added to the logits before :math:`T` (changes labels); a task without
            an entry has none.
    """

    temperatures: dict[str, float]
    split: str = "dev"
    datasets: list[str] = field(default_factory=list)
    weights_sha256: str | None = None
    bins: int = ECE_BINS
    scores: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    weighting: str = "dataset"
    biases: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self):
        for task, t in self.temperatures.items():
            if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
                raise KgemoError(f"calibration: temperature of {task!r} must be a positive number, got {t!r}")
        for task, b in self.biases.items():
            if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in b):
                raise KgemoError(f"calibration: the class offsets of {task!r} must be finite numbers, got {b!r}")

    def temperature(self, task: str) -> float:
        return float(self.temperatures.get(task, 1.0))

    def bias(self, task: str) -> list[float] | None:
        """The class offsets of ``task``, or ``None``."""
        b = self.biases.get(task)
        return [float(x) for x in b] if b else None

    @property
    def changes_labels(self) -> bool:
        """Whether labels are the argmax of offset logits rather than of the model's own."""
        return any(any(x != 0 for x in b) for b in self.biases.values())

    def apply(self, task: str, probs: torch.Tensor) -> torch.Tensor:
        """The calibrated probabilities of ``task`` (:func:`calibrate_probabilities`)."""
        bias = self.bias(task)
        if bias is not None and len(bias) != probs.shape[-1]:
            raise KgemoError(f"calibration: {len(bias)} class offsets for {task!r}, but the model gives "
                             f"{probs.shape[-1]} classes; refit it (kgemo calibrate)")
        return calibrate_probabilities(probs, self.temperature(task), bias)

    def to_dict(self) -> dict[str, Any]:
        method = "temperature scaling: softmax(logits / T), one T per task, minimum NLL on the fit split"
        if self.biases:
            method = ("class offsets, then temperature scaling: softmax((logits + b) / T); b per class maximising "
                      "the mean of each dataset's metric on the fit split, then T by minimum NLL")
        return {"format": FORMAT, "method": method, "temperatures": dict(self.temperatures),
                "biases": {t: list(b) for t, b in self.biases.items()}, "split": self.split,
                "datasets": list(self.datasets), "weighting": self.weighting, "weights_sha256": self.weights_sha256,
                "ece_bins": self.bins, "scores": self.scores, "command": self.command}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Calibration":
        if d.get("format") not in READ_FORMATS:
            raise KgemoError(f"calibration: unknown format {d.get('format')!r} (expected one of {READ_FORMATS})")
        return cls({t: float(v) for t, v in d["temperatures"].items()}, d.get("split", "dev"),
                   list(d.get("datasets", [])), d.get("weights_sha256"), int(d.get("ece_bins", ECE_BINS)),
                   dict(d.get("scores", {})), d.get("command"), d.get("weighting", "dataset"),
                   {t: [float(x) for x in b] for t, b in (d.get("biases") or {}).items()})

    def save(self, model_dir: str | Path) -> Path:
        from ..storage import write_json

        path = Path(model_dir) / CALIBRATION_FILE
        write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> "Calibration | None":
        """The folder's calibration, or ``None`` when it has none, or one fitted for other weights (warned)."""
        from ..checksums import sha256_file
        from ..storage import read_json

        path = Path(model_dir) / CALIBRATION_FILE
        if not path.is_file():
            return None
        cal = cls.from_dict(read_json(path))
        weights = Path(model_dir) / "model.safetensors"
        if cal.weights_sha256 and weights.is_file() and sha256_file(weights) != cal.weights_sha256:
            warnings.warn(f"{path} was fitted for other weights than {weights.name}; probabilities are shown "
                          f"uncalibrated (refit: kgemo calibrate {model_dir})", stacklevel=2)
            return None
        return cal
