"""Fit a model folder's calibration: ``kgemo calibrate MODEL_DIR`` (see :mod:`kgemo.annotate.calibration`)."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import KgemoError
from ..metrics import score
from ..metrics.calibration import (ECE_BINS, expected_calibration_error, fit_class_bias, fit_temperature,
                                   negative_log_likelihood, softmax)
from .annotator import resolve_model_path
from .calibration import Calibration

__all__ = ["fit_calibration", "model_logits", "card_section", "with_card_section"]

_DIGITS = 6
_CARD_START, _CARD_END = "<!-- calibration -->", "<!-- /calibration -->"


# -- fitting ------------------------------------------------------------------------------------------------------
def model_logits(model, graphs, transform=None, batch_size: int = 32) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """task → (logits ``[n, classes]`` float64, gold class ids ``[n]``, -1 = unlabelled) over ``graphs``, in order."""
    from ..models.predict import predict_batches

    out: dict[str, tuple[list, list]] = {t: ([], []) for t in model.tasks}
    for batch, logits, _ in predict_batches(model, graphs, transform, batch_size, logits=True):
        for task in model.tasks:
            out[task][0].append(logits[task].double().cpu().numpy())
            out[task][1].append(batch["utterance"][f"y_{task}"].cpu().numpy())
    return {t: (np.concatenate(z), np.concatenate(y)) for t, (z, y) in out.items()}


def _scores(z: np.ndarray, y: np.ndarray, t: float, bins: int, bias: np.ndarray | None = None,
            metric: tuple[str, Any] | None = None) -> dict[str, Any]:
    """ECE, NLL and accuracy before (the model's logits) and after (``(z + bias) / t``); with ``metric`` (its name
    and label space), the dataset's metric before and after too (offsets change labels)."""
    keep = y >= 0
    za = z if bias is None else z + bias
    before, after = softmax(z), softmax(za, t)
    out = {"utterances": int(keep.sum()),
           "accuracy": round(float((z.argmax(1)[keep] == y[keep]).mean()) if keep.any() else 0.0, _DIGITS),
           "ece_before": round(expected_calibration_error(before, y, bins), _DIGITS),
           "ece_after": round(expected_calibration_error(after, y, bins), _DIGITS),
           "nll_before": round(negative_log_likelihood(z, y), _DIGITS),
           "nll_after": round(negative_log_likelihood(za, y, t), _DIGITS)}
    if bias is not None:
        out["accuracy_after"] = round(float((za.argmax(1)[keep] == y[keep]).mean()) if keep.any() else 0.0, _DIGITS)
    if metric is not None and keep.any():
        name, space = metric
        out["metric"] = name
        out["metric_before"] = round(score(name, y[keep], z.argmax(1)[keep], space), 4)
        out["metric_after"] = round(score(name, y[keep], za.argmax(1)[keep], space), 4)
    return out


def fit_calibration(model_dir: str | Path, split: str = "dev", datasets: Sequence[str] | None = None,
                    root: str | None = None, report_splits: Sequence[str] = ("dev", "test"), bins: int = ECE_BINS,
                    weighting: str = "dataset", write: bool = True, command: str | None = None,
                    encoder: Any = None, class_bias: bool = False) -> Calibration:
    """Fit one temperature per task of a saved model on ``split`` and (``write``) save it in the folder.

    Args:
        model_dir: a model folder, a run folder, or ``"default"`` (the shipped model).
        split: the split to fit on (dev: never the test split the model is reported on).
        datasets: default: those the model was trained on (for an adapted model, its targets); the fit is over
            their ``split`` parts together.
        root: dataset root (default ``KGEMO_DATA`` or ``../shared/data``).
        report_splits: splits on which ECE and NLL before / after are measured, per dataset.
        bins: ECE bins.
        weighting: ``"dataset"`` (default): the NLL minimised is the mean of each dataset's mean NLL, so every
            dataset counts the same whatever its size (the default annotator's MELD dev has 1,109 utterances,
            DailyDialog's 8,069); ``"utterance"``: every utterance counts the same (one pooled NLL).
        write: save ``calibration.json`` and the model card's calibration section.
        command: recorded as the command that rebuilds it (default: ``kgemo calibrate ...``).
        encoder: an encoder to use instead of the one the spec names (tests).
        class_bias: first choose one offset per class that maximises the mean of each dataset's own metric on
            ``split`` (:func:`~kgemo.metrics.calibration.fit_class_bias`; it changes labels), then fit :math:`T` on
            the offset logits.
    """
    from ..checksums import sha256_file
    from ..data.registry import get_dataset
    from ..pipeline import load_model_and_pipeline
    from ..storage import atomic_write
    from ..training.config import DataConfig
    from ..training.data import prepare_data

    if weighting not in ("dataset", "utterance"):
        raise ValueError(f"weighting must be 'dataset' or 'utterance', got {weighting!r}")
    path = resolve_model_path(model_dir)
    model, pipeline, spec = load_model_and_pipeline(path, "cpu", encoder=encoder)
    info = spec.data or {}
    trained_on = list(info.get("target_datasets") or info.get("datasets") or [])
    datasets = list(datasets or trained_on)
    if not datasets:
        raise KgemoError(f"{path}: the model folder records no training data; name the datasets to fit on")
    for name in datasets:
        get_dataset(name)  # an unknown name fails here, before any encoding

    def run(ds: str, sp: str):
        data = DataConfig(datasets=[ds], tasks=list(info.get("tasks") or model.tasks),
                          label_space=info.get("label_space"),
                          metrics=dict(info.get("metrics") or {}), encoder=spec.encoder, root=root)
        prepared = prepare_data(data, splits=(sp,), pipeline=pipeline)
        return model_logits(model, prepared.graphs[sp], pipeline.transform)

    splits = list(dict.fromkeys([split, *report_splits]))
    outputs = {sp: {ds: run(ds, sp) for ds in datasets} for sp in splits}
    spaces = model.label_spaces
    metric = {(ds, task): (get_dataset(ds).metric(task), spaces[task]) for ds in datasets for task in model.tasks}
    temperatures, biases = {}, {}
    for task in model.tasks:
        parts = [outputs[split][ds][task] for ds in datasets]
        if class_bias:
            # Each dataset counts once, scored by its own metric (MELD weighted F1, DailyDialog micro F1 w/o neutral).
            scorers = [lambda y, p, m=metric[ds, task]: score(m[0], y, p, m[1]) for ds in datasets]
            bias = fit_class_bias([p[0] for p in parts], [p[1] for p in parts], scorers)
            biases[task] = [round(float(b), 4) for b in bias]   # the values stored are the ones applied
        z, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        if task in biases:
            z = z + np.asarray(biases[task])
        weight = None
        if weighting == "dataset":  # 1 / (labelled utterances of its dataset): each dataset's mean NLL counts once
            weight = np.concatenate([np.full(len(p[1]), 1.0 / max(1, int((p[1] >= 0).sum()))) for p in parts])
        temperatures[task] = round(fit_temperature(z, y, weight=weight), 4)  # the value stored is the one applied
    scores = {sp: {ds: {task: _scores(*outputs[sp][ds][task], temperatures[task], bins,
                                      np.asarray(biases[task]) if task in biases else None, metric[ds, task])
                        for task in model.tasks}
                   for ds in datasets} for sp in splits}
    name = "default" if str(model_dir) == "default" else str(model_dir)
    if command is None:
        command = f"kgemo calibrate {name} --split {split}"
        if datasets != trained_on:
            command += " --dataset " + " ".join(datasets)
        if weighting != "dataset":
            command += f" --weighting {weighting}"
        if class_bias:
            command += " --class-bias"
    cal = Calibration(temperatures, split, datasets, sha256_file(path / "model.safetensors"), bins, scores, command,
                      weighting, biases)
    if write:
        cal.save(path)
        card = path / "README.md"
        if card.is_file():
            text = with_card_section(card.read_text(encoding="utf-8"), cal)
            with atomic_write(card, "w", encoding="utf-8") as fh:
                fh.write(text)
    return cal


# -- the model card -----------------------------------------------------------------------------------------------
def card_section(cal: Calibration) -> str:
    """The model card's calibration section (markdown, between markers so that a refit replaces it)."""
    fitted_on = (f"on the {cal.split} split of {' + '.join(cal.datasets)}")
    nll_fit = ("by minimum negative log-likelihood"
               + (" (each dataset's mean NLL weighted equally)" if cal.weighting == "dataset" and len(cal.datasets) > 1
                  else ""))
    if cal.biases:
        intro = (f"Probabilities are softmax((logits + b) / T): one offset b per class, chosen {fitted_on} to "
                 "maximise the mean of each dataset's own metric (logit adjustment, Menon et al., 2021; it changes "
                 f"labels: the label is the argmax), then one T per task (temperature scaling, Guo et al., 2017) "
                 f"{nll_fit}. `calibration.json` holds b, T and these numbers; the annotator applies them to every "
                 "label and probability it shows.")
    else:
        intro = (f"Probabilities are temperature-scaled (Guo et al., 2017): softmax(logits / T), one T per task, "
                 f"fitted {fitted_on} {nll_fit}; the argmax label never changes. `calibration.json` holds T and "
                 "these numbers; the annotator applies it to every probability it shows.")
    lines = [_CARD_START, "## Calibration", "", intro, ""]
    for task, t in cal.temperatures.items():
        n = sum(cal.scores.get(cal.split, {}).get(ds, {}).get(task, {}).get("utterances", 0) for ds in cal.datasets)
        offsets = cal.bias(task)
        lines.append(f"- {task}: T = {t:.4g}" + (f", b = [{', '.join(f'{x:+.2f}' for x in offsets)}]" if offsets
                                                   else "") + f" (fitted on {n:,} {cal.split} utterances).")
    with_metric = any("metric_after" in s for per_ds in cal.scores.values() for per_task in per_ds.values()
                      for s in per_task.values())
    lines += ["", f"Expected calibration error ({cal.bins} equal-width bins of the top probability), NLL"
              + (" and each dataset's metric" if with_metric else "") + ", each dataset's split alone:", "",
              "| split | dataset | task | utterances | ECE before | ECE after | NLL before | NLL after |"
              + (" metric | before | after |" if with_metric else ""),
              "|---|---|---|---:|---:|---:|---:|---:|" + ("---|---:|---:|" if with_metric else "")]
    for sp, per_ds in cal.scores.items():
        for ds, per_task in per_ds.items():
            for task, s in per_task.items():
                row = (f"| {sp} | {ds} | {task} | {s['utterances']:,} | {s['ece_before']:.3f} | "
                       f"{s['ece_after']:.3f} | {s['nll_before']:.3f} | {s['nll_after']:.3f} |")
                if with_metric:
                    row += (f" {s['metric']} | {s['metric_before']:.2f} | {s['metric_after']:.2f} |"
                            if "metric_after" in s else " | | |")
                lines.append(row)
    lines += ["", f"Command: `{cal.command}`.", _CARD_END]
    return "\n".join(lines) + "\n"


def with_card_section(card: str, cal: Calibration) -> str:
    """``card`` with its calibration section replaced (or added at the end)."""
    section = card_section(cal)
    pattern = re.compile(re.escape(_CARD_START) + r".*?" + re.escape(_CARD_END) + r"\n?", re.S)
    if pattern.search(card):
        return pattern.sub(lambda _: section, card, count=1)
    return card.rstrip("\n") + "\n\n" + section
