"""Atomic, checksummed checkpoints and the random-number state they carry.

A checkpoint is one file, ``checkpoint.pt``, replaced at every task end by writing
``checkpoint.pt.tmp`` and renaming it over the old one: a rename within a directory
is atomic, so a process killed at any moment leaves either the old checkpoint or
the new one, never a torn file. A write that fails (a full disk) removes its
partial file and leaves the old checkpoint in place.

The file is one header line, ``SEQUOIA-CHECKPOINT <format> <sha256>``, then the
``torch.save`` bytes. :func:`verify` reads the header and checks the digest before
anything is unpickled, so a truncated, zeroed or altered file, a foreign file, or
one of a newer format is refused with one line and never loaded.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> run_dir = Path(tempfile.mkdtemp())
    >>> save(run_dir, {"phase": 1}, phase=1, file_format=3)
    >>> load(verify(run_dir, file_format=3))["phase"]
    1
    >>> raw = (run_dir / FILE).read_bytes(); _ = (run_dir / FILE).write_bytes(raw[:-1] + b"x")
    >>> verify(run_dir, file_format=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    sequoia.errors.SequoiaError: ...checkpoint.pt is damaged (its checksum does not match...
"""

from __future__ import annotations

import hashlib
import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sequoia import distributed
from sequoia.errors import SequoiaError, TrainingError, disk_full
from sequoia.runs import faults

FILE = "checkpoint.pt"
MAGIC = b"SEQUOIA-CHECKPOINT"
MAX_HEADER = 200


def save(run_dir: Path, state: dict[str, Any], phase: int, file_format: int) -> None:
    """Write ``state`` as ``run_dir/checkpoint.pt``, atomically, with its format and digest.

    Raises:
        TrainingError: the file could not be written (a full disk); the previous
            checkpoint is untouched.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    header = b"%s %d %s\n" % (MAGIC, file_format, hashlib.sha256(payload).hexdigest().encode())
    target = run_dir / FILE
    partial = target.with_name(FILE + ".tmp")
    try:
        with partial.open("wb") as handle:
            handle.write(header)
            faults.at("checkpoint", phase)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        partial.unlink(missing_ok=True)
        reason = "the disk is full" if disk_full(error) else error.strerror or str(error)
        kept = "the previous checkpoint is intact" if target.exists() else "there is no earlier checkpoint"
        raise TrainingError(f"could not write the checkpoint of phase {phase} in {run_dir} ({reason}); {kept}") \
            from error
    os.replace(partial, target)


def verify(run_dir: Path, file_format: int) -> bytes:
    """The checkpoint's ``torch.save`` bytes, once its header and digest are checked.

    Raises:
        SequoiaError: the file is unreadable, foreign, of another format, or damaged.
    """
    path = run_dir / FILE
    where = f"cannot resume {run_dir}: {FILE}"
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise SequoiaError(f"{where} cannot be read ({error.strerror})") from None
    header, newline, payload = raw[:MAX_HEADER].partition(b"\n")
    fields = header.split(b" ")
    if not newline or len(fields) != 3 or fields[0] != MAGIC or not fields[1].isdigit():
        raise SequoiaError(f"{where} is not a sequoia checkpoint (empty, damaged at its start, or written by a "
                           "sequoia older than format 3); start the run again")
    found = int(fields[1])
    if found != file_format:
        newer = "a newer" if found > file_format else "an older"
        raise SequoiaError(f"{where} has format {found}, written by {newer} sequoia; this one reads format "
                           f"{file_format} (start the run again, or resume it with the sequoia that wrote it)")
    payload = raw[len(header) + 1:]
    if hashlib.sha256(payload).hexdigest().encode() != fields[2]:
        raise SequoiaError(f"{where} is damaged (its checksum does not match: truncated or changed since it was "
                           "written); start the run again")
    return payload


def load(payload: bytes) -> dict[str, Any]:
    """The checkpoint state in ``payload`` (from :func:`verify`).

    It holds pickled Python objects (replay rows, generators), so only load
    checkpoints you wrote yourself, as with any pickle: the digest proves the file is
    unchanged, not who wrote it.
    """
    return torch.load(io.BytesIO(payload), map_location=_onto_this_rank, weights_only=False)


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
