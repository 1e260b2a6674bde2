"""Where a sweep's jobs execute: worker processes on this machine, or a cluster through submitit.

Both take the same jobs (:class:`~sequoia.experiments.jobs.RunJob`) and report each
outcome as it arrives; neither keeps a queue of its own:

* :class:`LocalLauncher`: ``concurrent.futures.ProcessPoolExecutor`` with ``workers``
  processes, started fresh (``spawn``) and, on Python 3.11+, replaced after every run,
  so that no run inherits another's state. On Linux each worker dies with the driver
  (``PR_SET_PDEATHSIG``): a driver killed with SIGKILL leaves no run going on behind
  ``sequoia sweep --resume``'s back.
* :class:`SubmititLauncher`: submitit's ``AutoExecutor``: one SLURM job array
  (``cluster="slurm"``), or the same code path in local subprocesses
  (``cluster="local"``, submitit's ``LocalExecutor``: how the tests cover it).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sequoia.errors import SequoiaError, summary
from sequoia.experiments.jobs import FAILED, RunJob

Outcome = dict[str, Any]
OnDone = Callable[[RunJob, Outcome], None]
PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this process when the driver ends, however it ends (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the driver died before the line above ran
        os._exit(1)


@dataclass
class LocalLauncher:
    """``workers`` processes on this machine."""

    workers: int = 1

    def launch(self, jobs: list[RunJob], on_done: OnDone, on_submitted: Callable[[RunJob, str], None] | None = None
               ) -> None:
        """Run every job, at most ``workers`` at once; call ``on_done`` as each ends."""
        if not jobs:
            return
        fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
        with ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_die_with_parent, initargs=(os.getpid(),), **fresh) as pool:
            futures = {pool.submit(job): job for job in jobs}
            try:
                for future in as_completed(futures):
                    on_done(futures[future], _outcome(future.result))
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise


def _outcome(result: Callable[[], Outcome]) -> Outcome:
    """A job's outcome; a worker that died (killed for memory, a crash) is a failed run, not a failed sweep."""
    try:
        return result()
    except Exception as error:  # the job catches its run's errors; this is the process itself dying
        return {"state": FAILED, "message": f"the worker process failed: {summary(error)}"}


@dataclass
class SubmititLauncher:
    """Jobs through submitit: a SLURM job array, or local subprocesses (``cluster="local"``).

    ``parameters`` go to ``AutoExecutor.update_parameters`` (``timeout_min``,
    ``slurm_partition``, ``gpus_per_node``, ``cpus_per_task``, ``slurm_array_parallelism``...).
    """

    folder: Path
    cluster: str = "slurm"
    parameters: dict[str, Any] = field(default_factory=dict)

    def executor(self) -> Any:
        try:
            import submitit
        except ImportError:
            raise SequoiaError("--launcher slurm needs submitit: pip install 'sequoia[cluster]'") from None
        executor = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        executor.update_parameters(**self.parameters)
        return executor

    def launch(self, jobs: list[RunJob], on_done: OnDone, on_submitted: Callable[[RunJob, str], None] | None = None
               ) -> None:
        """Submit every job as one array; wait for each and call ``on_done`` in the order they end.

        Each job is submitted itself (not wrapped), so that submitit finds its
        ``checkpoint`` hook and requeues it on a timeout or preemption.
        """
        if not jobs:
            return
        executor = self.executor()
        with executor.batch():
            pending = [executor.submit(job) for job in jobs]
        submitted = list(pending)  # the batch gives every handle its job id when it closes
        for job, handle in zip(jobs, submitted):
            if on_submitted is not None:
                on_submitted(job, str(handle.job_id))
        _wait(dict(zip(submitted, jobs)), on_done)


def _wait(waiting: dict[Any, RunJob], on_done: OnDone) -> None:
    """Poll submitit's handles until every job has ended; report each as it does."""
    while waiting:
        finished = [handle for handle in waiting if handle.done()]
        for handle in finished:
            on_done(waiting.pop(handle), _outcome(handle.result))
        if waiting and not finished:
            time.sleep(1.0)
