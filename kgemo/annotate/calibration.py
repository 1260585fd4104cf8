r"""Calibrated probabilities for a saved model: one temperature per task, fitted on dev, kept in the model folder.

A model trained with cross-entropy is usually over-confident: it says 0.9 where it is right 75% of the time.
:func:`kgemo.annotate.calibrate.fit_calibration` (``kgemo calibrate MODEL_DIR``) runs a model folder over a
labelled split (dev by default; the datasets it was trained on, through the same input pipeline and caches as
``kgemo evaluate``), fits :math:`T` per task by minimising the negative log-likelihood
(:func:`kgemo.metrics.calibration.fit_temperature`) and writes ``calibration.json`` beside the weights, with the
expected calibration error before and after on every dataset's dev and test split, and the same numbers into the
model card (``README.md``, between ``<!-- calibration -->`` markers).

The :class:`~kgemo.annotate.Annotator` loads the file with the model and shows
:math:`\mathrm{softmax}(\mathbf z / T)` everywhere a probability appears — the table, JSON, JSONL, the HTML bars,
RDF's ``kg:emotionProbability``, networkx, and the occlusion effects (a drop of the shown probability). Labels are
the argmax of the logits and never change. A ``calibration.json`` fitted for other weights (its ``weights_sha256``
differs from ``model.safetensors``) is ignored with a warning: refit it with ``kgemo calibrate MODEL_DIR``.

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
from typing import Any, Mapping

import torch

from ..errors import KgemoError
from ..metrics.calibration import ECE_BINS

__all__ = ["Calibration", "CALIBRATION_FILE", "calibrate_probabilities"]

#: The file in a model folder that holds its temperatures.
CALIBRATION_FILE = "calibration.json"
FORMAT = "kgemo-calibration/1"


def calibrate_probabilities(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    r""":math:`\mathrm{softmax}(\mathbf z / T)` from ``probs`` = :math:`\mathrm{softmax}(\mathbf z)` ``[n, classes]``:
    :math:`\log p = \mathbf z - \mathrm{logsumexp}(\mathbf z)` differs from the logits by a constant per row, which
    the softmax cancels. ``T == 1`` returns ``probs`` itself, untouched."""
    if temperature == 1.0:
        return probs
    return torch.softmax(torch.log(probs.double()) / float(temperature), -1)


@dataclass
class Calibration:
    """Temperatures per task and how they were obtained (the content of ``calibration.json``).

    Args:
        temperatures: task → :math:`T` (> 0; 1 leaves the probabilities as the model gives them).
        split: the split :math:`T` was fitted on.
        datasets: the datasets of that split.
        weights_sha256: sha256 of the ``model.safetensors`` it was fitted for.
        bins: ECE bins.
        scores: split → dataset → task → ``utterances``, ``accuracy``, ``ece_before``, ``ece_after``,
            ``nll_before``, ``nll_after`` (the fit split and the others scored).
        command: the command that rebuilds it.
        weighting: how the fit weighed the datasets (``dataset``: each dataset's mean NLL once; ``utterance``).
    """

    temperatures: dict[str, float]
    split: str = "dev"
    datasets: list[str] = field(default_factory=list)
    weights_sha256: str | None = None
    bins: int = ECE_BINS
    scores: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    weighting: str = "dataset"

    def __post_init__(self):
        for task, t in self.temperatures.items():
            if not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0):
                raise KgemoError(f"calibration: temperature of {task!r} must be a positive number, got {t!r}")

    def temperature(self, task: str) -> float:
        return float(self.temperatures.get(task, 1.0))

    def apply(self, task: str, probs: torch.Tensor) -> torch.Tensor:
        """The calibrated probabilities of ``task`` (:func:`calibrate_probabilities`)."""
        return calibrate_probabilities(probs, self.temperature(task))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "method": "temperature scaling: softmax(logits / T), one T per task, minimum NLL "
                "on the fit split", "temperatures": dict(self.temperatures), "split": self.split,
                "datasets": list(self.datasets), "weighting": self.weighting, "weights_sha256": self.weights_sha256,
                "ece_bins": self.bins, "scores": self.scores, "command": self.command}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Calibration":
        if d.get("format") != FORMAT:
            raise KgemoError(f"calibration: unknown format {d.get('format')!r} (expected {FORMAT!r})")
        return cls({t: float(v) for t, v in d["temperatures"].items()}, d.get("split", "dev"),
                   list(d.get("datasets", [])), d.get("weights_sha256"), int(d.get("ece_bins", ECE_BINS)),
                   dict(d.get("scores", {})), d.get("command"), d.get("weighting", "dataset"))

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
