"""Deliberate failures, for the tests that prove runs survive them.

Set ``SEQUOIA_FAULT`` to ``<kind>@<place>`` to make a run fail at one point:

* ``kill@phase=2,step=3``: the process sends itself SIGKILL at training step 3 of phase 2;
* ``nan@phase=2,step=3``: that step's loss becomes NaN;
* ``oom@phase=1,step=1``: that step raises ``torch.OutOfMemoryError``;
* ``kill@evaluate=2``: SIGKILL while evaluating after phase 2;
* ``kill@checkpoint=2``: SIGKILL while phase 2's checkpoint is half written;
* ``full@checkpoint=2``: the disk fills up while phase 2's checkpoint is written;
* ``full@evaluate=1``: the disk fills up while the evaluation after phase 1 is logged;
* ``full@start=0``: the disk is full when the run directory is made.

Phase 0 is the evaluation before training; phase ``i`` trains on task ``i - 1``.
The variable is read when a run's monitor is made (:func:`planned`); unset, the
training path only tests one attribute for ``None``.

Example:
    >>> fault = Fault.parse("kill@phase=2,step=3")
    >>> fault.kind, fault.where
    ('kill', {'phase': 2, 'step': 3})
"""

from __future__ import annotations

import errno
import os
import signal
from dataclasses import dataclass

import torch

from sequoia.errors import SequoiaError

ENVIRONMENT_VARIABLE = "SEQUOIA_FAULT"
KINDS = ("kill", "nan", "oom", "full")


@dataclass(frozen=True)
class Fault:
    """One planned failure: what happens (``kind``) and where (``where``)."""

    kind: str
    where: dict[str, int]

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """``kind@key=value,...`` as a fault; anything else is a one-line error."""
        kind, _, place = spec.partition("@")
        where = {}
        for item in place.split(",") if place else []:
            key, _, value = item.partition("=")
            if not key.strip() or not value.strip().isdigit():
                where = {}
                break
            where[key.strip()] = int(value)
        if kind not in KINDS or not where:
            raise SequoiaError(f"{ENVIRONMENT_VARIABLE}={spec!r}: expected <{'|'.join(KINDS)}>@<place>=<n>[,step=<n>]"
                               " (a test hook; unset it)")
        return cls(kind, where)

    def at(self, place: str, phase: int) -> None:
        """A point outside training steps (``start``, ``evaluate``, ``checkpoint``)."""
        if self.where != {place: phase}:
            return
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "full":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def at_step(self, phase: int, step: int, loss: torch.Tensor) -> torch.Tensor:
        """A training step: returns the loss, perhaps made NaN."""
        if self.where != {"phase": phase, "step": step}:
            return loss
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if self.kind == "oom":
            raise torch.cuda.OutOfMemoryError("injected out-of-memory")
        return loss * float("nan")


def planned() -> Fault | None:
    """The fault ``SEQUOIA_FAULT`` asks for, or ``None`` (always, outside tests)."""
    spec = os.environ.get(ENVIRONMENT_VARIABLE)
    return Fault.parse(spec) if spec else None


def at(place: str, phase: int) -> None:
    """A fault point outside the training path (checkpoint writing)."""
    fault = planned()
    if fault is not None:
        fault.at(place, phase)
