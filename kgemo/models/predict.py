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
                    device: str | torch.device = "cpu", explain: bool = False
                    ) -> Iterator[tuple[Batch, dict[str, torch.Tensor], dict[str, Any]]]:
    """Yield ``(batch, probabilities per task, evidence)`` for consecutive batches of ``graphs`` (on CPU)."""
    model.eval().to(device)
    for batch in batches(graphs, batch_size, transform):
        dev_batch = batch.to(device)
        if explain:
            logits, evidence = model.forward_explain(dev_batch)
            evidence = {k: v.cpu() if torch.is_tensor(v) else v for k, v in evidence.items()}
        else:
            logits, evidence = model(dev_batch), {}
        probs = {t: torch.softmax(v.float(), -1).cpu() for t, v in logits.items()}
        yield batch, probs, evidence


def predict(model: KGModel, graphs: Sequence[HeteroData], transform=None, batch_size: int = 32,
            device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Class probabilities per task for every utterance of ``graphs``, concatenated in order."""
    out: dict[str, list[torch.Tensor]] = {}
    for _, probs, _ in predict_batches(model, graphs, transform, batch_size, device):
        for t, p in probs.items():
            out.setdefault(t, []).append(p)
    return {t: torch.cat(v) for t, v in out.items()}
