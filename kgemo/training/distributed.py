"""Data parallel training and evaluation that score like one process (PyTorch DDP through Lightning).

``train.strategy: ddp`` with ``train.devices: N`` (and ``train.num_nodes: M``) runs one process per device;
Lightning's DDP averages the gradients. What kgemo adds, so that N processes compute what one does:

* **Train batches** (:class:`GlobalBatchSampler`): the epoch's order is a permutation seeded by (seed, epoch) —
  the same in every process, in a one-process run and after a resume. Each step takes the next
  ``train.batch_size`` conversations (the *global* batch) and process ``r`` of ``N`` trains on ``batch[r::N]``.
  A process whose share is empty (a last batch shorter than N) gets a copy of one conversation with every label
  removed: zero loss, zero gradient, but it takes the step with the others (and its collectives). Its utterances
  are marked (index -1): a model's own training terms and statistics leave them out (they keep their domain).
* **Loss** (:meth:`~kgemo.training.module.TaskModule.loss`): each process divides its summed cross-entropy by the
  *global* (weighted) number of labelled utterances (one all-reduce per task and step) and multiplies by N, so the
  averaged gradient is the gradient of the one-process loss over the global batch. Training then differs from one
  process only by the order of floating-point sums (and by dropout, whose masks each process draws itself).
* **A model's own training terms and statistics** (``forward_train``: the domain losses and class centres of
  :mod:`kgemo.adapt`) get ``padding`` (the utterances of padding copies, which take part in nothing) and
  ``reduce`` = :func:`sum_over_processes`: every sum over the batch that a term or a moving average divides by, or
  takes a mean of, is summed over the processes first, so each process computes the one-process value on the
  global batch — the domain loss's per-domain sums, the centres' per-class sums and counts. The trainer multiplies
  such a term's gradient by N, as it does the cross-entropy's. The centres (buffers, never broadcast: see
  :func:`ddp_strategy`) thus take the same step in every process, the one-process step.
* **Evaluation** (:class:`EvalBatchSampler`, :func:`gather_in_order`, :func:`predict_distributed`): the batches
  one process would form (same order, same size) are dealt round-robin to the processes — no padding, no
  repetition (Lightning's ``DistributedSampler`` repeats conversations to even out the ranks, which would count
  them twice) — and the outputs are gathered with their conversation index and put back in one-process order.
  Every batch being exactly a one-process batch, predictions are identical, bit for bit, on the same hardware.
  Ranks with fewer batches take an empty-label copy so that every rank runs the same number of steps.

Launch: ``kgemo train CONFIG train.strategy=ddp train.devices=N`` on one machine (Lightning starts the other
processes), or ``torchrun`` / SLURM for several machines (see docs/training.md).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

__all__ = ["world", "EpochPermutation", "GlobalBatchSampler", "EvalBatchSampler", "graph_loader", "masked_copy",
           "gather_in_order", "utterance_index", "sum_over_processes", "predict_distributed", "ddp_strategy",
           "init_from_env", "GraphDataModule"]

#: graph-level attribute of a collated batch: the conversation index of each graph (-1 = a padding copy).
INDEX_KEY = "kgemo_index"


def world() -> tuple[int, int]:
    """``(rank, world size)`` of this process: from ``torch.distributed`` when a group is up, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def init_from_env() -> bool:
    """Join the process group described by the environment (``torchrun``: ``WORLD_SIZE``, ``RANK``,
    ``MASTER_ADDR``, ...) when there is one and no group is up yet — NCCL with CUDA, gloo otherwise. Returns whether
    this process is part of a group of more than one."""
    import os

    if torch.distributed.is_initialized():
        return torch.distributed.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    _destroy_group_at_exit()
    return True


_exit_hook_registered = False


def _destroy_group_at_exit() -> None:
    """Destroy the process group when the interpreter exits, before it tears itself down (registered once).

    A gloo group left to the interpreter's finalisation aborts the process now and then ("terminate called without
    an active exception", SIGABRT) after the work is done: its threads still hold tensors when Python is gone.
    Lightning registers this clean-up for NCCL only; kgemo registers it for any backend."""
    global _exit_hook_registered
    if not _exit_hook_registered:
        import atexit

        atexit.register(_destroy_group)
        _exit_hook_registered = True


def _destroy_group() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def masked_copy(graph):
    """A copy of ``graph`` with every utterance label set to -1 (ignored by the loss and the metrics)."""
    out = graph.clone()
    store = out["utterance"]
    for key in list(store.keys()):
        if key.startswith("y_"):
            store[key] = torch.full_like(store[key], -1)
    return out


class EpochPermutation(Sampler[int]):
    """The conversations of an epoch in a random order seeded by ``(seed, epoch)`` (``shuffle=False``: in order).

    Lightning calls :meth:`set_epoch` at the start of every epoch (through the batch sampler's ``sampler``)."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator()
        g.manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


class GlobalBatchSampler(Sampler[list[int]]):
    """Global batches of ``batch_size`` conversations, split over ``world_size`` processes (``batch[rank::world]``).

    A negative index ``-1 - i`` asks the dataset for :func:`masked_copy` of conversation ``i`` (a process whose
    share of the last batch is empty). Every process yields ``ceil(n / batch_size)`` batches.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.sampler = EpochPermutation(n, seed, shuffle)
        self.batch_size, self.rank, self.world_size = batch_size, rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return math.ceil(len(self.sampler) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(self.sampler)
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            mine = batch[self.rank::self.world_size]
            yield mine if mine else [-1 - batch[0]]


class EvalBatchSampler(Sampler[list[int]]):
    """The one-process evaluation batches (``batch_size`` consecutive conversations, in order), dealt round-robin:
    batch ``b`` goes to process ``b % world_size``. Processes left with fewer batches get ``[-1]`` batches (a
    label-less copy of conversation 0, index -1: dropped when gathering), so all run the same number of steps."""

    def __init__(self, n: int, batch_size: int, rank: int = 0, world_size: int = 1):
        self.n, self.batch_size, self.rank, self.world_size = n, batch_size, rank, world_size
        self.batches = math.ceil(n / batch_size) if n else 0

    def __len__(self) -> int:
        return math.ceil(self.batches / self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(len(self)):
            b = step * self.world_size + self.rank
            yield list(range(b * self.batch_size, min(self.n, (b + 1) * self.batch_size))) if b < self.batches \
                else [-1]


class _Graphs(Dataset):
    def __init__(self, graphs: Sequence[Any]):
        self.graphs = graphs

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, i: int):
        return (i, self.graphs[i]) if i >= 0 else (-1, masked_copy(self.graphs[-1 - i]))


class _Collate:
    """PyG batch of the graphs, ``transform`` applied, and each graph's conversation index attached."""

    def __init__(self, transform: Callable | None):
        self.transform = transform

    def __call__(self, items):
        from torch_geometric.data import Batch

        batch = Batch.from_data_list([g for _, g in items])
        if self.transform is not None:
            batch = self.transform(batch)
        batch[INDEX_KEY] = torch.tensor([i for i, _ in items], dtype=torch.long)
        return batch


def graph_loader(graphs: Sequence[Any], batch_sampler: Sampler[list[int]], transform: Callable | None = None,
                 num_workers: int = 0) -> DataLoader:
    """A ``DataLoader`` over ``graphs`` driven by ``batch_sampler`` (:class:`GlobalBatchSampler` or
    :class:`EvalBatchSampler`); batches carry each graph's conversation index."""
    return DataLoader(_Graphs(list(graphs)), batch_sampler=batch_sampler, collate_fn=_Collate(transform),
                      num_workers=num_workers)


def utterance_index(batch) -> torch.Tensor | None:
    """The conversation index of every utterance of a batch made by :func:`graph_loader` (None otherwise)."""
    index = batch[INDEX_KEY] if INDEX_KEY in batch else None
    if index is None:
        return None
    return index.to(batch["utterance"].batch.device)[batch["utterance"].batch]


def sum_over_processes(value: torch.Tensor) -> torch.Tensor:
    r"""``value`` summed over the processes of the group (an all-reduce), with the gradient of this process's own
    ``value``: :math:`\sum_r v_r` forward, :math:`\partial / \partial v_{\text{own}} = 1` backward.

    For a term of the global batch built from sums over its utterances (a weighted mean, a class mean): each process
    gets the one-process value, and its gradient with respect to its own utterances. Every process must call it
    the same number of times, in the same order, whatever its share holds (an empty sum is a zero).
    """
    total = value.detach().clone()
    torch.distributed.all_reduce(total)
    # total + (v - v): the value is exactly the sum (the same bits in every process), the gradient flows into v
    return total + (value - value.detach()) if value.requires_grad else total


def gather_in_order(tensors: dict[str, torch.Tensor], order: torch.Tensor | None,
                    all_gather: Callable[[torch.Tensor], torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Every process's 1-d ``tensors`` (one value per utterance) gathered and put in one-process order.

    ``order`` holds each utterance's conversation index (-1 = padding, dropped). Utterances are sorted by it,
    stably, so that they come out as one process evaluating the conversations in order lists them. Processes hold
    different numbers of utterances: each pads to the longest before ``all_gather`` (``[world, n]``; Lightning's
    ``LightningModule.all_gather`` or, by default, ``torch.distributed``). Returns CPU tensors.
    """
    rank, size = world()
    if order is None:
        order = torch.zeros(len(next(iter(tensors.values()))), dtype=torch.long)
    if size > 1:
        gather = all_gather or _all_gather
        longest = int(gather(torch.tensor([order.numel()], device=order.device)).max())

        def padded(t: torch.Tensor) -> torch.Tensor:
            out = torch.full((longest,), -1, dtype=t.dtype, device=t.device)
            out[: t.numel()] = t
            return gather(out).reshape(-1)

        order = padded(order)
        tensors = {k: padded(v) for k, v in tensors.items()}
    order = order.cpu()
    keep = torch.nonzero(order >= 0).squeeze(1)
    perm = keep[torch.sort(order[keep], stable=True).indices]
    return {k: v.cpu()[perm] for k, v in tensors.items()}


def _all_gather(t: torch.Tensor) -> torch.Tensor:
    parts = [torch.empty_like(t) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, t.contiguous())
    return torch.stack(parts)


def predict_distributed(model, graphs: Sequence[Any], transform=None, batch_size: int = 32,
                        device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """:func:`kgemo.models.predict.predict` shared by the processes of a group: process ``r`` runs the one-process
    batches ``r, r + N, ...`` and every process gets all probabilities back, in order (one ``all_gather_object``).
    The same as ``predict`` in one process, bit for bit on the same hardware: each batch is the same batch."""
    from ..models.predict import predict

    rank, size = world()
    if size == 1:
        return predict(model, graphs, transform, batch_size, device)
    n_batches = math.ceil(len(graphs) / batch_size)
    mine = {b: predict(model, graphs[b * batch_size:(b + 1) * batch_size], transform, batch_size, device)
            for b in range(rank, n_batches, size)}
    everyone: list[dict[int, dict[str, torch.Tensor]] | None] = [None] * size
    torch.distributed.all_gather_object(everyone, mine)
    merged = {b: probs for part in everyone for b, probs in (part or {}).items()}
    tasks = next(iter(merged.values())).keys() if merged else ()
    return {t: torch.cat([merged[b][t] for b in range(n_batches)]) for t in tasks}


def ddp_strategy(name: Any, accelerator: str = "auto") -> Any:
    """The Lightning strategy for ``train.strategy``: ``ddp`` (and ``ddp_spawn``, ``ddp_fork``,
    ``ddp_notebook``) as a ``DDPStrategy`` that finds parameters a batch leaves unused (models skip knowledge
    layers on batches without concepts or events) and does not re-broadcast buffers every step: kgemo's buffers are
    constants (class weights, fixed mixing weights), or statistics that every process initialises from the same
    data and then updates from sums over the processes (:mod:`kgemo.adapt`'s class centres and class proportions,
    through :func:`sum_over_processes`), so they stay the same everywhere. Anything else is passed to Lightning
    unchanged. The process group is destroyed at exit (:func:`_destroy_group_at_exit`).
    """
    if not isinstance(name, str) or name not in ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook"):
        return name
    _destroy_group_at_exit()
    from lightning.pytorch.strategies import DDPStrategy

    import inspect

    from torch.nn.parallel import DistributedDataParallel

    start = {"ddp": "popen", "ddp_spawn": "spawn", "ddp_fork": "fork", "ddp_notebook": "fork"}[name]
    # torch ≥ 2.12 names it forward_sync_buffers (broadcast_buffers warns); both are DDP's own arguments.
    sync = ("forward_sync_buffers" if "forward_sync_buffers" in
            inspect.signature(DistributedDataParallel.__init__).parameters else "broadcast_buffers")
    return DDPStrategy(start_method=start, find_unused_parameters=True, **{sync: False})


class GraphDataModule(L.LightningDataModule):
    """The train and dev loaders of :func:`~kgemo.training.fit`, made inside each process (Lightning calls the
    hooks there), so that every DDP process — started by Lightning, torchrun or SLURM — takes its own share.

    Args:
        train, dev: the graphs of each split.
        batch_size: conversations per optimisation step, over all processes together (the global batch).
        eval_batch_size: conversations per evaluation batch (the one-process batches, dealt to the processes).
        seed: seeds the order of every epoch (with the epoch number).
        transform: the pipeline's per-batch transform.
    """

    def __init__(self, train: Sequence[Any], dev: Sequence[Any], batch_size: int, eval_batch_size: int,
                 seed: int = 0, transform: Callable | None = None, num_workers: int = 0):
        super().__init__()
        self.train, self.dev = list(train), list(dev)
        self.batch_size, self.eval_batch_size, self.seed = batch_size, eval_batch_size, seed
        self.transform, self.num_workers = transform, num_workers

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train) / self.batch_size)

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (0, 1) if trainer is None else (trainer.global_rank, trainer.world_size)

    def train_dataloader(self) -> DataLoader:
        rank, size = self._rank()
        sampler = GlobalBatchSampler(len(self.train), self.batch_size, self.seed, rank, size)
        return graph_loader(self.train, sampler, self.transform, self.num_workers)

    def val_dataloader(self) -> DataLoader:
        rank, size = self._rank()
        return graph_loader(self.dev, EvalBatchSampler(len(self.dev), self.eval_batch_size, rank, size),
                            self.transform, self.num_workers)
