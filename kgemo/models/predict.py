"""Inference over graphs: batched, no grad, on any device; optional knowledge evidence."""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch
from torch_geometric.data import Batch, HeteroData

from ..graphs.batching import batches
from .base import KGModel

__all__ = ["predict_batches", "predict"]


@torch.no_grad()
def predict_batches(model: KGModel, graphs: Sequence[HeteroData], transform=None, batch_size: int = 32,
                    device: str | torch.device = "cpu", explain: bool = False, logits: bool = False
                    ) -> Iterator[tuple[Batch, dict[str, torch.Tensor], dict[str, Any]]]:
    """Yield ``(batch, probabilities per task, evidence)`` for consecutive batches of ``graphs`` (on CPU); with
    ``logits``, the model's logits instead of the probabilities (calibration fits on them)."""
    model.eval().to(device)
    for batch in batches(graphs, batch_size, transform):
        dev_batch = batch.to(device)
        if explain:
            out, evidence = model.forward_explain(dev_batch)
            evidence = {k: v.cpu() if torch.is_tensor(v) else v for k, v in evidence.items()}
        else:
            out, evidence = model(dev_batch), {}
        if logits:
            yield batch, {t: v.cpu() for t, v in out.items()}, evidence
        else:
            yield batch, {t: torch.softmax(v.float(), -1).cpu() for t, v in out.items()}, evidence


def predict(model: KGModel, graphs: Sequence[HeteroData], transform=None, batch_size: int = 32,
            device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Class probabilities per task for every utterance of ``graphs``, concatenated in order."""
    out: dict[str, list[torch.Tensor]] = {}
    for _, probs, _ in predict_batches(model, graphs, transform, batch_size, device):
        for t, p in probs.items():
            out.setdefault(t, []).append(p)
    return {t: torch.cat(v) for t, v in out.items()}
