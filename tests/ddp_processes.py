"""Run a test function in N CPU processes joined in one gloo group, started the way torchrun starts them.

Used by the DDP tests (tests/training/test_ddp.py, tests/adapt/test_ddp_training.py). Each process gets the
environment that names the group (``MASTER_ADDR``, ``WORLD_SIZE``, ``RANK``, ...), runs ``fn(rank, world, *args)``,
then leaves the group explicitly: a barrier (every process has finished, none is still in a collective) and
``destroy_process_group``. A gloo group left to the interpreter's exit aborts the process now and then
("terminate called without an active exception", SIGABRT) after all the work is done — gloo's threads still hold
tensors while Python tears itself down: 8 of 30 runs of a bare 2-process gloo script (a few all-reduces, then
return) aborted here, 0 of 60 with a barrier and destroy_process_group first. kgemo's own processes register the
clean-up at exit (kgemo.training.distributed); the tests also do it themselves, where a reader sees it.
"""
from __future__ import annotations

import os
import socket
import sys
import time
from typing import Any, Callable, Sequence

import pytest
import torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(fn: Callable[..., None], args: Sequence[Any] = (), world: int = 2, timeout: float = 600) -> None:
    """``fn(rank, world, *args)`` in ``world`` spawned processes (``fn`` defined at a module's top level); fails the
    test when one raises, dies, or they do not all finish within ``timeout`` seconds."""
    import torch.multiprocessing as mp

    ctx = mp.spawn(_process, args=(fn, world, free_port(), tuple(args)), nprocs=world, join=False)
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"DDP processes did not finish in {timeout:.0f} s")


def _process(rank: int, fn: Callable[..., None], world: int, port: int, args: tuple) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank), NODE_RANK="0")
    torch.set_num_threads(1)
    fn(rank, world, *args)
    # Only after a clean finish: a process that raised leaves the group to the spawner (a barrier would wait for it).
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
