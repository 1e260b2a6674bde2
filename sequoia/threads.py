"""How many torch threads a run uses: chosen from the model's size and the processes sharing the cores.

A small model (the SL classifier, the DQN: thousands of parameters) gains nothing
from a second thread, and loses a great deal when the cores are busy: its threads
wait for each other on every tiny matrix product (measured on 2 cores: a DQN step
took about 0.28 ms with 1 thread and about 50 ms with 2 threads while another
process kept the cores busy). A large model (a language model) does use several
threads, but only its share of the cores: the cores divided by the runs that run
at once (``sequoia sweep --workers N``).

The rule, applied once the method has built its model:

* ``--threads N`` given: ``N`` threads;
* else ``OMP_NUM_THREADS`` set (``torchrun`` sets it to 1 per rank): torch keeps it;
* else a model under :data:`SMALL_MODEL` parameters (or a method that cannot say): 1 thread;
* else ``max(1, cores // workers)``, where ``workers`` comes from ``SEQUOIA_WORKERS``
  (set by ``sequoia sweep``; 1 for a single run).

Example:
    >>> choose(parameters=9_610, workers=1, cores=2)
    1
    >>> choose(parameters=134_515_008, workers=1, cores=2), choose(parameters=134_515_008, workers=2, cores=2)
    (2, 1)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SMALL_MODEL = 5_000_000
"""Below this many parameters a model runs on one thread."""
WORKERS_VARIABLE = "SEQUOIA_WORKERS"
"""How many runs share the machine's cores; ``sequoia sweep`` sets it in each worker."""


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the system has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def workers_sharing() -> int:
    """How many runs share the cores: ``SEQUOIA_WORKERS``, else 1."""
    text = os.environ.get(WORKERS_VARIABLE, "1")
    return int(text) if text.isdigit() and int(text) > 0 else 1


def choose(parameters: int | None, workers: int, cores: int) -> int:
    """The thread count of one run of a model with ``parameters`` parameters among ``workers`` runs."""
    if parameters is None or parameters < SMALL_MODEL:
        return 1
    return max(1, cores // max(1, workers))


@dataclass
class ThreadPolicy:
    """The rule above, for one run. ``threads``: the ``--threads`` override, if given."""

    threads: int | None = None

    def count(self, parameters: int | None) -> int | None:
        """The thread count for the run, or ``None`` where torch keeps its own (``OMP_NUM_THREADS`` set)."""
        if self.threads is not None:
            return self.threads
        if os.environ.get("OMP_NUM_THREADS"):
            return None
        return choose(parameters, workers_sharing(), available_cores())

    def apply(self, parameters: int | None) -> int:
        """Set torch's thread count for a model of ``parameters`` parameters; return the count in use."""
        import torch

        count = self.count(parameters)
        if count is not None and count != torch.get_num_threads():
            torch.set_num_threads(count)
        return torch.get_num_threads()
