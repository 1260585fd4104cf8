"""What a run was computed from: the code's commit, the config, and a checksum of every input.

Every ``metrics.json`` carries a ``provenance`` block (written by :func:`~kgemo.training.fit`), which
``scripts/evaluate.py --all`` copies into the row of ``docs/results.json`` and ``--check`` compares with what the
current checkout would use::

    {"commit": "d4e8e87...", "dirty": [],                  # the source tree's commit; files changed from it
     "config": {"file": "configs/ket_meld.yaml", "sha256": "...", "overrides": ["seed=0"]},
     "resolved_config_sha256": "...",                      # the typed config after defaults and overrides
     "inputs": {"data": {"meld": {"meld/train_sent_emo.csv": "..."}},
                "encoder": {"name": "default", "id": "...", "files_sha256": "..."},
                "knowledge": {"conceptnet": "..."},                 # each loaded source's own checksum
                "knowledge_tables": {"conceptnet": {"path": "default", "checksum": "..."}},  # from the caches' meta
                "init_from": {"path": "runs/x/seed0/model", "config": "x", "weights_sha256": "..."}},
     "environment": {"python": "3.11.7", "torch": "2.13.0+cpu", "machine": "x86_64", "cpu_capability": "AVX2",
                     "threads": 2, "kernel_pins": {"ATEN_CPU_CAPABILITY": "avx2", ...}}}   # pins: only when set

A run made from a tree with uncommitted changes under ``kgemo/`` or ``configs/`` lists them in ``dirty``: such a
row cannot be rebuilt from its commit, and ``--check`` says so.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..checksums import sha256_file, sha256_json
from ..knowledge.sources import table_checksums
from ..storage import project_root

__all__ = ["source_commit", "config_origin", "folder_sha256", "data_checksums", "encoder_checksums", "environment",
           "provenance_block", "run_provenance", "resolved_config_sha256", "CODE_PATHS", "KERNEL_PINS",
           "KERNEL_PIN_NAMES"]

#: The parts of the tree that decide a run's numbers; uncommitted changes there make a run "dirty".
CODE_PATHS = ("kgemo", "configs", "pyproject.toml")


def _git(tree: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def source_commit(tree: Path | None = None) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": [changed files under CODE_PATHS]}`` of the checkout holding kgemo.

    ``commit`` is None when kgemo is not run from a git checkout (installed from a wheel)."""
    tree = Path(tree) if tree is not None else project_root()
    commit = _git(tree, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": []}
    status = _git(tree, "status", "--porcelain", "--untracked-files=normal", "--", *CODE_PATHS) or ""
    # Porcelain lines are "XY path" (a rename: "XY old -> new"); the status letters are not needed here.
    paths = (line.split(maxsplit=1)[1].split(" -> ")[-1] for line in status.splitlines() if line.strip())
    dirty = sorted(p for p in paths if not p.endswith(".pyc"))
    return {"commit": commit, "dirty": dirty}


def _relative(path: Path) -> str:
    try:
        return path.resolve().relative_to(project_root()).as_posix()
    except ValueError:
        return str(path)


def config_origin(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The config file (relative to the checkout when inside it), its sha256 and the overrides given with it."""
    path = Path(path)
    return {"file": _relative(path), "sha256": sha256_file(path), "overrides": list(overrides)}


def resolved_config_sha256(config_dict: Mapping[str, Any]) -> str:
    """Checksum of a resolved config (``ExperimentConfig.to_dict()``) without the fields that name the run's
    place (``seed``, ``output_dir``): two seeds of one row share it, and a changed default shows in it."""
    return sha256_json({k: v for k, v in config_dict.items() if k not in ("seed", "output_dir")})


def folder_sha256(folder: str | Path) -> str:
    """One checksum of every file in a folder (relative path + content), independent of listing order."""
    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return sha256_json({p.relative_to(folder).as_posix(): sha256_file(p) for p in files})


def data_checksums(datasets: Sequence[str], root: str | None = None, **options) -> dict[str, dict[str, str]]:
    """``{dataset: {file relative to the data root: sha256}}`` over the train, dev and test splits."""
    from ..data import dataset_checksums

    out: dict[str, dict[str, str]] = {}
    for name in datasets:
        files: dict[str, str] = {}
        for split in ("train", "dev", "test"):
            files.update(dataset_checksums(name, split, root=root, **options))
        out[name] = dict(sorted(files.items()))
    return out


def encoder_checksums(name: str, encoder: Any) -> dict[str, Any]:
    """The encoder as named, its id (weights checksum, max length, input format) and a checksum of its folder."""
    out: dict[str, Any] = {"name": str(name), "id": str(encoder.id)}
    folder = getattr(encoder, "folder", None)
    if folder is None:
        source = getattr(encoder, "source", None)
        folder = getattr(source, "path", None)
    if folder is not None and Path(folder).is_dir():
        out["files_sha256"] = folder_sha256(folder)
    return out


#: Environment variables that pin the CPU kernels of torch (ATen), MKL and oneDNN to one instruction set, so a
#: machine with newer vector instructions computes what an older one does, to the last bit (measured: the
#: cogat_mastodon row, recorded under ``avx2`` pins on an AVX-512 machine, equals a plain run on an AVX2 machine).
KERNEL_PINS = {"avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}}
#: Every variable some pin sets (recorded when set; dropped by ``reproduce.py --kernels native``).
KERNEL_PIN_NAMES = tuple(sorted({name for pins in KERNEL_PINS.values() for name in pins}))


def environment() -> dict[str, Any]:
    """Python, torch, CPU architecture, the vector instructions torch's CPU kernels use (``AVX2``, ``AVX512``: their
    results can differ in the last bits), the kernel pins set (:data:`KERNEL_PINS`; only when some are) and torch
    threads: what may move the last bits between machines."""
    import torch

    env = {"python": platform.python_version(), "torch": str(torch.__version__), "machine": platform.machine(),
           "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
           "platform": sys.platform}
    pins = {name: os.environ[name] for name in KERNEL_PIN_NAMES if os.environ.get(name)}
    if pins:
        env["kernel_pins"] = pins
    return env


def provenance_block(config_dict: Mapping[str, Any], origin: Mapping[str, Any] | None,
                     inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The block every ``metrics.json`` carries (graph training and encoder fine-tuning alike)."""
    from .. import __version__

    return {**source_commit(), "kgemo": __version__, "config": dict(origin) if origin else None,
            "resolved_config_sha256": resolved_config_sha256(config_dict), "inputs": dict(inputs),
            "environment": environment()}


def run_provenance(config: Any, pipeline: Any, data_in_memory: bool = False) -> dict[str, Any]:
    """The provenance block of a run of ``config`` (an ``ExperimentConfig``) whose inputs ``pipeline`` made.

    ``data_in_memory``: the conversations were handed to the trainer (tests, sweeps), not loaded from the
    datasets' files, so no file checksum describes them."""
    data = config.data
    inputs: dict[str, Any] = {
        "data": ("given in memory" if data_in_memory
                 else data_checksums([*data.datasets, *data.target_datasets], root=data.root)),
        "encoder": encoder_checksums(data.encoder, pipeline.encoder),
        "knowledge": {k: getattr(v, "checksum", None) for k, v in pipeline.knowledge.items()},
        "knowledge_tables": table_checksums(config.knowledge),
    }
    if config.train.init_from:
        from ..annotate.annotator import resolve_model_path  # "default", a run folder or a model folder

        folder = Path(resolve_model_path(config.train.init_from.format(name=config.name, seed=config.seed)))
        weights = folder / "model.safetensors"
        made_by = None
        run_config = folder.parent / "config.yaml"  # the run that made it (none for the packaged default)
        if run_config.is_file():
            import yaml

            made_by = (yaml.safe_load(run_config.read_text()) or {}).get("name")
        inputs["init_from"] = {"path": str(config.train.init_from), "config": made_by,
                               "weights_sha256": sha256_file(weights) if weights.is_file() else None}
    return provenance_block(config.to_dict(), getattr(config, "origin", None), inputs)
