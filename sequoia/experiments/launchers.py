"""Where a sweep's jobs execute: worker processes on this machine, or a cluster through submitit.

Both take the same jobs (:class:`~sequoia.experiments.jobs.RunJob`) and report each
outcome as it arrives; neither keeps a queue of its own:

* :class:`LocalLauncher`: ``concurrent.futures.ProcessPoolExecutor`` with ``workers``
  processes, started fresh (``spawn``) and, on Python 3.11+, replaced after every run,
  so that no run inherits another's state. On Linux each worker dies with the driver
  (``PR_SET_PDEATHSIG``): a driver killed with SIGKILL leaves no run going on behind
  ``sequoia sweep --resume``'s back. A SIGINT or SIGTERM to the driver is forwarded to
  the workers at once: each run stops where it is, keeping its last checkpoint (what a
  scheduler's grace period allows), and the driver records them as interrupted and stops.
* :class:`SubmititLauncher`: submitit's ``AutoExecutor``: one SLURM job array
  (``cluster="slurm"``), or the same code path in local subprocesses
  (``cluster="local"``, submitit's ``LocalExecutor``: how the tests cover it).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sequoia.console import Interrupted, exit_now
from sequoia.errors import SequoiaError, summary
from sequoia.experiments.jobs import FAILED, STOP_MARKER, RunJob

Outcome = dict[str, Any]
OnDone = Callable[[RunJob, Outcome], None]
PR_SET_PDEATHSIG = 1


def _start_worker(parent: int) -> None:
    """Worker initializer: signals end the run in hand as in a ``sequoia`` process; die with the driver (Linux)."""
    from sequoia.console import install_signal_handlers

    install_signal_handlers(second_ends_at_once=False)
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
        """Run every job, at most ``workers`` at once; call ``on_done`` as each ends.

        A SIGINT or SIGTERM stops the sweep: no job starts any more, the running ones get the
        signal and end at their checkpoints, each is reported, and :class:`Interrupted` is raised.
        """
        if not jobs:
            return
        _clear_stop(jobs)
        fresh = {"max_tasks_per_child": 1} if sys.version_info >= (3, 11) else {}
        with ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker, initargs=(os.getpid(),), **fresh) as pool, \
                _signals_as_requests() as received:
            pending = {pool.submit(job): job for job in jobs}
            while pending and not received:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    on_done(pending.pop(future), _outcome(future.result))
            if received:
                if pending:
                    _stop(pool, pending, received[0], on_done)
                raise Interrupted(received[0])


@contextlib.contextmanager
def _signals_as_requests() -> Iterator[list[int]]:
    """SIGINT and SIGTERM recorded (in the yielded list) instead of raised, while the driver waits on its workers.

    An exception raised by a signal handler lands wherever the main thread is, and inside
    concurrent.futures' waiting it can leave a future's lock held: the driver then hangs
    for ever. A second signal ends the driver at once (its workers die with it). Outside
    the main thread, where Python allows no handlers, signals stay as they were.
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def record(signum: int, frame: Any) -> None:
        if received:
            exit_now(signum)
        received.append(signum)

    previous = {signum: signal.signal(signum, record) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _clear_stop(jobs: list[RunJob]) -> None:
    """Remove the marker a stopped driver left: this launch starts its jobs."""
    Path(jobs[0].sweep_dir, STOP_MARKER).unlink(missing_ok=True)


def _stop(pool: ProcessPoolExecutor, pending: dict[Any, RunJob], signum: int, on_done: OnDone) -> None:
    """No job starts any more; the running ones get ``signum``; wait for them and report each.

    (Not ``pool.shutdown(wait=False)``: in Python 3.11 it drops the pool's process table,
    which the pool's own thread still reads when a worker ends after its one job.)
    """
    # A job already handed to a worker process but not started there sees the marker and does not start.
    marker = Path(next(iter(pending.values())).sweep_dir, STOP_MARKER)
    marker.touch()
    for future in pending:
        future.cancel()  # those still queued here
    for pid in list(getattr(pool, "_processes", None) or {}):  # process id -> process; no public table
        try:
            os.kill(pid, signum)
        except ProcessLookupError:  # ended meanwhile
            pass
    for future, job in pending.items():
        if not future.cancelled():
            on_done(job, _outcome(future.result))
    marker.unlink(missing_ok=True)


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
        _clear_stop(jobs)
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
