"""Data parallelism over several processes (``torchrun`` or ``accelerate launch``).

Every rank runs the whole program with the same seed, so all ranks build the same
model, draw the same batches and keep the same replay memory. Only the work is
split:

* training: each rank computes the loss of its share of every batch, weighted by
  that share, and one all-reduce sums the gradients before the optimizer step
  (DDP's scheme), so every rank takes the step a single process would take on the
  whole batch, up to floating-point rounding;
* evaluation: each rank scores a contiguous slice of the test rows and the slices
  are gathered;
* files: only rank 0 writes.

The process group is created from the environment the launchers set (``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``...): NCCL when CUDA is present, gloo on the CPU.
With one process every helper here is the identity.

Example:
    >>> world_size(), rank(), is_main()
    (1, 0, True)
    >>> shard_bounds(10)
    (0, 10)
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.distributed as dist

from sequoia.errors import SequoiaError


def _integer(name: str, default: int, low: int, high: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise SequoiaError(f"environment variable {name}={text!r}: expected an integer from {low} to {high}")
    return int(text)


def _thread_counts(name: str) -> None:
    """OpenMP's thread counts: one whole number from 1, or a comma list of them (one per nesting level)."""
    text = os.environ.get(name, "").strip()
    parts = text.split(",") if text else []
    if not all(part.strip().isdigit() and 1 <= int(part) <= 4096 for part in parts):
        raise SequoiaError(f"environment variable {name}={text!r}: expected an integer from 1 to 4096 "
                           "(or a comma list of them, one per nesting level)")


def check_environment() -> None:
    """The variables launchers and torch read, checked before anything is made (one line each).

    ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` are whole numbers with ``RANK < WORLD_SIZE``; with
    several processes, ``MASTER_ADDR`` and ``MASTER_PORT`` (1-65535) are set; ``OMP_NUM_THREADS``,
    if set, is a whole number from 1 up or OpenMP's comma list of them.

    Example:
        >>> os.environ["WORLD_SIZE"] = "two"
        >>> check_environment()
        Traceback (most recent call last):
        ...
        sequoia.errors.SequoiaError: environment variable WORLD_SIZE='two': expected an integer from 1 to 65536
        >>> del os.environ["WORLD_SIZE"]
        >>> check_environment()
    """
    size = _integer("WORLD_SIZE", 1, 1, 65_536)
    rank = _integer("RANK", 0, 0, 65_535)
    _integer("LOCAL_RANK", 0, 0, 65_535)
    _thread_counts("OMP_NUM_THREADS")
    if rank >= size:
        raise SequoiaError(f"environment variables RANK={rank} and WORLD_SIZE={size}: RANK must be below WORLD_SIZE")
    if size > 1:
        _integer("MASTER_PORT", 0, 1, 65_535)
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(name, "").strip():
                raise SequoiaError(f"environment variable WORLD_SIZE={size} without {name}: start the processes "
                                   "with torchrun or accelerate launch, which set both")


def launched() -> bool:
    """Whether a launcher started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def launched_rank() -> int:
    """This process's rank as its launcher set it, readable before the process group exists."""
    return int(os.environ.get("RANK", "0"))


def init_from_environment() -> None:
    """Join the process group the launcher describes; nothing when run as one process."""
    if not launched() or dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(local_device())
        # NCCL for the GPU tensors of PA models, gloo for the CPU tensors of SL and RL learners.
        dist.init_process_group("cpu:gloo,cuda:nccl")
    else:
        dist.init_process_group("gloo")
    if is_main():
        print(f"sequoia: {world_size()} processes ({dist.get_backend()})", file=sys.stderr)  # noqa: T201


def local_device() -> torch.device:
    """This rank's accelerator (``cuda:LOCAL_RANK``) where CUDA is present, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Whether this process writes files and prints results (rank 0)."""
    return rank() == 0


def shard_bounds(n: int) -> tuple[int, int]:
    """The contiguous slice ``[start, stop)`` of ``n`` rows this rank handles (balanced, in rank order)."""
    size, index = world_size(), rank()
    return index * n // size, (index + 1) * n // size


def all_reduce_sum(tensors: Sequence[torch.Tensor]) -> None:
    """Sum ``tensors`` over ranks, in place, with one collective call per device and dtype."""
    if world_size() == 1 or not tensors:
        return
    groups: dict[tuple, list[torch.Tensor]] = {}
    for tensor in tensors:
        groups.setdefault((tensor.device, tensor.dtype), []).append(tensor)
    for group in groups.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.all_reduce(flat)
        offset = 0
        for tensor in group:
            tensor.copy_(flat[offset : offset + tensor.numel()].view_as(tensor))
            offset += tensor.numel()


def map_shards(function: Callable[[Any], Any], rows: Sequence | torch.Tensor) -> torch.Tensor:
    """``function(rows)`` computed as slices on every rank and gathered into one tensor.

    ``function`` must return one value per row (a tensor or array of length ``len(slice)``).
    """
    if world_size() == 1:
        return torch.as_tensor(function(rows))
    start, stop = shard_bounds(len(rows))
    local = torch.as_tensor(function(rows[start:stop]) if stop > start else [])
    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, local.cpu())
    filled = [torch.as_tensor(part) for part in parts if len(part)]
    return torch.cat(filled) if filled else local


def barrier() -> None:
    """Wait for every rank (e.g. until rank 0 has written a checkpoint)."""
    if world_size() > 1:
        dist.barrier()
