"""Deliberate failures, for the tests that prove runs survive them.

Set ``SEQUOIA_FAULT`` to ``<kind>@<place>`` to make a run fail at one point:

* ``kill@phase=2,step=3``: the process sends itself SIGKILL at training step 3 of phase 2;
* ``nan@phase=2,step=3``: that step's loss becomes NaN;
* ``oom@phase=1,step=1``: that step raises ``torch.OutOfMemoryError``;
* ``kill@evaluate=2``: SIGKILL while evaluating after phase 2;
* ``kill@checkpoint=2``: SIGKILL while phase 2's checkpoint is half written.

Phase 0 is the evaluation before training; phase ``i`` trains on task ``i - 1``.
Unset (always, outside tests), every hook here returns at once.

Example:
    >>> parse("kill@phase=2,step=3")
    ('kill', {'phase': 2, 'step': 3})
"""

from __future__ import annotations

import os
import signal

import torch

ENVIRONMENT_VARIABLE = "SEQUOIA_FAULT"
KINDS = ("kill", "nan", "oom")


def parse(spec: str) -> tuple[str, dict[str, int]]:
    """``kind@key=value,...`` as ``(kind, {key: value})``."""
    kind, _, place = spec.partition("@")
    if kind not in KINDS or not place:
        raise ValueError(f"{ENVIRONMENT_VARIABLE}={spec!r}: expected <{'|'.join(KINDS)}>@<key=value,...>")
    where = {}
    for item in place.split(","):
        key, _, value = item.partition("=")
        where[key.strip()] = int(value)
    return kind, where


def _planned(**here: int) -> str | None:
    spec = os.environ.get(ENVIRONMENT_VARIABLE)
    if not spec:
        return None
    kind, where = parse(spec)
    return kind if where == here else None


def at(place: str, phase: int) -> None:
    """A fault hook outside training steps (``evaluate``, ``checkpoint``)."""
    if _planned(**{place: phase}) == "kill":
        os.kill(os.getpid(), signal.SIGKILL)


def at_step(phase: int, step: int, loss: torch.Tensor) -> torch.Tensor:
    """The fault hook of a training step: returns the loss, perhaps made NaN."""
    kind = _planned(phase=phase, step=step)
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "oom":
        raise torch.cuda.OutOfMemoryError("injected out-of-memory")
    if kind == "nan":
        return loss * float("nan")
    return loss
