"""One run of a sweep as a job: a picklable call that a worker process or a cluster node executes.

A job is idempotent, which is what lets a sweep resume after anything: it looks at
its run directory first. A finished run (``results.json``) is kept as it is; a run
with a checkpoint is resumed (``sequoia --resume``); a run that never reached its
first checkpoint is started again from nothing. A job holds its run's options as data
(an :class:`~sequoia.experiment.ExperimentConfig` is built from them) and hands them to
the runner (:mod:`sequoia.runner`) in its own process; its output goes to
``logs/<name>.log`` in the sweep directory, ending as a command does (:mod:`sequoia.exits`).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> sweep_dir = Path(tempfile.mkdtemp())
    >>> job = RunJob("000-a", {"setting": "sl.incremental", "method": "naive", "setting.nb_tasks": 2,
    ...              "learner.epochs": 1}, str(sweep_dir))
    >>> outcome = job()
    >>> outcome["state"], outcome["seconds"] > 0
    ('finished', True)
    >>> job()  # a second call keeps what the first made
    {'state': 'finished', 'message': 'already finished'}
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sequoia import cache_directories, distributed
from sequoia.errors import SequoiaError
from sequoia.exits import guarded
from sequoia.experiment import ExperimentConfig
from sequoia.experiments.spec import arguments
from sequoia.library_output import quiet_libraries, verbose_requested
from sequoia.runner import run_config, run_resumed
from sequoia.runs.lock import DirectoryLock
from sequoia.threads import WORKERS_VARIABLE

FINISHED, FAILED, INTERRUPTED, PENDING, STARTED = "finished", "failed", "interrupted", "pending", "started"
STOP_MARKER = ".stopping"
"""Written in the sweep directory by a driver that a signal stops: a job that has not started does not start."""


def disk_state(run_dir: Path) -> str:
    """What a run directory says of its run: finished, interrupted (resumable), started (no checkpoint) or pending."""
    if (run_dir / "results.json").is_file():
        return FINISHED
    if (run_dir / "checkpoint.pt").is_file():
        return INTERRUPTED
    return STARTED if run_dir.exists() else PENDING


@dataclass
class RunJob:
    """Run (or resume, or keep) the run ``name`` of the sweep in ``sweep_dir``.

    Attributes:
        name: the run's directory name under ``runs/``.
        options: the run's options, as a sweep holds them (``setting``, ``method``, ``seed``, ``learner.lr``...).
        sweep_dir: the sweep directory.
        workers: how many runs share this machine's cores (the thread policy reads it).
        threads: ``--threads`` for the run, or ``None`` for the thread policy.
    """

    name: str
    options: dict[str, Any]
    sweep_dir: str
    workers: int = 1
    threads: int | None = None

    @property
    def run_dir(self) -> Path:
        return Path(self.sweep_dir) / "runs" / self.name

    def command(self) -> Callable[[], int]:
        """What brings the run to its end from where its directory is: a new run, or the resumed one."""
        state = disk_state(self.run_dir)
        if state == INTERRUPTED:
            return partial(run_resumed, self.run_dir, quiet=True, threads=self.threads)
        if state == STARTED:
            # Stopped before its first checkpoint: nothing in it can be continued. The
            # lock refuses a directory another process still runs in (one line).
            if (self.run_dir / "config.yaml").is_file():
                DirectoryLock.take(self.run_dir).release()
            shutil.rmtree(self.run_dir)
        config = ExperimentConfig.from_options(self.options)
        return partial(run_config, config, directory=self.run_dir, quiet=True, threads=self.threads)

    def shown(self) -> str:
        """The run as the ``sequoia`` command that would do the same, for its log."""
        if disk_state(self.run_dir) == INTERRUPTED:
            return f"sequoia --resume {self.run_dir} --quiet"
        return f"sequoia {' '.join(arguments(self.options))} --directory {self.run_dir} --quiet"

    def __call__(self) -> dict[str, Any]:
        """Execute the run in this process; return its state, a one-line message and how long it took."""
        if disk_state(self.run_dir) == FINISHED:
            return {"state": FINISHED, "message": "already finished"}
        if (Path(self.sweep_dir) / STOP_MARKER).exists():
            return {"state": PENDING, "message": "not started: the sweep was stopping"}
        started = time.perf_counter()
        outcome = self._execute()
        return {**outcome, "seconds": time.perf_counter() - started}

    def _execute(self) -> dict[str, Any]:
        os.environ[WORKERS_VARIABLE] = str(self.workers)
        log = Path(self.sweep_dir) / "logs" / f"{self.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as handle, contextlib.redirect_stdout(handle), \
                contextlib.redirect_stderr(handle):
            print(f"$ {self.shown()}", flush=True)
            try:
                command = self.command()
            except SequoiaError as error:
                return {"state": FAILED, "message": str(error)}
            code = guarded(partial(self._run, command))
        if code == 0:
            return {"state": FINISHED, "message": ""}
        state = INTERRUPTED if code in (130, 143) else FAILED
        return {"state": state, "message": last_error(log) or f"exit code {code}"}

    @staticmethod
    def _run(command: Callable[[], int]) -> int:
        """The run, in this process, after the environment checks a command makes first."""
        quiet_libraries(verbose=verbose_requested([], os.environ))
        distributed.check_environment()
        cache_directories.check()
        return command()

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's hook on a timeout or preemption: submit the same job again (it resumes its run)."""
        import submitit

        return submitit.helpers.DelayedSubmission(self)


def last_error(log: Path) -> str:
    """The last ``sequoia:`` line of a run's log: its one-line error."""
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.startswith("sequoia:")]
    return lines[-1] if lines else ""
