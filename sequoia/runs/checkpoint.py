"""Atomic checkpoints and the random-number state they carry.

A checkpoint is one file, ``checkpoint.pt``, replaced at every task end by writing
``checkpoint.pt.tmp`` and renaming it over the old one: a rename within a directory
is atomic, so a process killed at any moment leaves either the old checkpoint or
the new one, never a torn file.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> run_dir = Path(tempfile.mkdtemp())
    >>> save(run_dir, {"phase": 1}, phase=1)
    >>> load(run_dir)["phase"]
    1
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sequoia import distributed
from sequoia.runs import faults

FILE = "checkpoint.pt"


def save(run_dir: Path, state: dict[str, Any], phase: int) -> None:
    """Write ``state`` as ``run_dir/checkpoint.pt``, atomically."""
    target = run_dir / FILE
    partial = target.with_name(FILE + ".tmp")
    with partial.open("wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    faults.at("checkpoint", phase)
    os.replace(partial, target)


def load(run_dir: Path) -> dict[str, Any]:
    """The last checkpoint in ``run_dir``.

    It holds pickled Python objects (replay rows, generators), so only load
    checkpoints you wrote yourself, as with any pickle.
    """
    return torch.load(run_dir / FILE, map_location=_onto_this_rank, weights_only=False)


def _onto_this_rank(storage: torch.UntypedStorage, location: str) -> torch.UntypedStorage:
    # CPU tensors stay on the CPU; GPU tensors (PA models) go to this rank's GPU,
    # whichever GPU the writing rank used.
    return storage if location == "cpu" else storage.cuda(distributed.local_device())


def random_state() -> dict[str, Any]:
    """The state of Python's, NumPy's and torch's global generators (CUDA's too, where present)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict[str, Any]) -> None:
    """Restore what :func:`random_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
