"""What the encoders share at run time: :class:`LazyModel` (cheap ids, the model loaded on first use), the device
and CPU threads, input checks, longest-first batching, progress bars and the truncation warning."""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataFormatError
from .model_source import ModelSource, encoder_id, resolve_model

__all__ = ["LazyModel", "TruncationWarning", "pick_device", "available_cpus", "configure_threads", "check_texts",
           "length_order", "show_bar", "warn_truncated", "PROGRESS_MIN_ITEMS"]

# Inputs longer than this (texts) get a progress bar when the caller does not say.
PROGRESS_MIN_ITEMS = 1024


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
