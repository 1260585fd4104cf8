"""Where computation runs: one place that decides between CUDA and the CPU, and the precision that goes with it."""
from __future__ import annotations

from typing import Any

__all__ = ["pick_device", "cuda_available", "mixed_precision", "uses_cuda", "lightning_precision"]


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (torch is imported only when asked)."""
    import torch

    return torch.cuda.is_available()


def pick_device(device: Any = None) -> str:
    """``device`` as a string (``"cpu"``, ``"cuda:1"``...); ``None`` means CUDA when available, else the CPU."""
    if device is not None:
        return str(device)
    return "cuda" if cuda_available() else "cpu"


def mixed_precision(device: Any = None) -> str:
    """Lightning's precision for ``device``: bf16 (or fp16 where bf16 is missing) mixed on CUDA, fp32 on the CPU,
    where half precision is slower and less exact."""
    if not pick_device(device).startswith("cuda"):
        return "32-true"
    import torch

    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def uses_cuda(accelerator: str = "auto") -> bool:
    """Whether a Lightning run with ``train.accelerator`` trains on CUDA: ``auto``, ``gpu`` or ``cuda`` where a
    CUDA device is present."""
    return accelerator in ("auto", "gpu", "cuda") and cuda_available()


def lightning_precision(setting: str, accelerator: str = "auto") -> str:
    """Lightning's precision for ``train.precision``: as given, or for ``auto`` the mixed precision of the device
    that ``accelerator`` picks (:func:`mixed_precision`; ``32-true`` on the CPU)."""
    if setting != "auto":
        return setting
    return mixed_precision("cuda" if uses_cuda(accelerator) else "cpu")
