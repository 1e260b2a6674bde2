"""The runner: a setting, a method and a run directory put together, and the run carried out.

The setting's loop reports what happens; the :class:`~sequoia.runs.Run` it is given
persists it (the directory, checkpoints, logs, results files). The runner makes that
run directory (or opens the one a resume continues), hands it to the loop, and says
what a failure left behind. The command line and a sweep's runs both come here:
:func:`run_config` for a new run of an :class:`~sequoia.experiment.ExperimentConfig`,
:func:`run_resumed` for a run that stopped.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sequoia.experiment import ExperimentConfig
    >>> config = ExperimentConfig.from_options({"setting": "sl.incremental", "method": "naive",
    ...                                         "setting.nb_tasks": "2", "learner.epochs": "1"})
    >>> directory = Path(tempfile.mkdtemp()) / "run"
    >>> run_config(config, directory=directory, quiet=True, show=False)
    0
    >>> (directory / "results.json").is_file()
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sequoia import distributed
from sequoia.errors import SequoiaError, TrainingError, disk_full
from sequoia.experiment import ExperimentConfig, build, check_config_keys, describe
from sequoia.runs.loggers import check_logger_names
from sequoia.runs.run import Run, check_output_root
from sequoia.threads import ThreadPolicy

MAX_THREADS = 1024


def run_config(config: ExperimentConfig, *, output: str | None = None, directory: str | Path | None = None,
               quiet: bool = False, threads: int | None = None, show: bool = True) -> int:
    """Build what ``config`` describes and run it in a new run directory (under ``output``, or at ``directory``)."""
    setting, method = build(config)
    return execute(new_run(config, setting, method, output, directory), setting, method, config.run_seed(),
                   quiet=quiet, threads=threads, show=show)


def run_resumed(directory: str | Path, *, quiet: bool = False, threads: int | None = None, show: bool = True) -> int:
    """Continue the run in ``directory`` from its last checkpoint, as it was configured."""
    run, config = open_resumed(directory)
    try:
        setting, method = build(config)
    except BaseException:
        run.close()
        raise
    return execute(run, setting, method, config.run_seed(), quiet=quiet, threads=threads, show=show)


def open_resumed(directory: str | Path) -> tuple[Run, ExperimentConfig]:
    """The run in ``directory`` to continue, and its recorded config."""
    run = Run.resume(directory)
    try:
        check_config_keys(run.config, f"cannot resume {directory}: its config.yaml")
    except SequoiaError:
        run.close()
        raise
    return run, ExperimentConfig(file=run.config)


def new_run(config: ExperimentConfig, setting: Any, method: Any, output: str | None,
            directory: str | Path | None) -> Run:
    """A run to be made under ``output`` (or at ``directory``), its loggers and location checked first."""
    loggers = config.run_loggers()
    check_logger_names(loggers)
    check_placement(output, directory)
    run = Run.new(output or "results", describe(setting, method, config.run_seed(), loggers))
    run.exact_directory = Path(directory) if directory else None
    return run


def check_placement(output: str | None, directory: str | Path | None) -> None:
    """``--output`` or ``--directory`` (a new one), in a place a run directory can be made."""
    if directory and output:
        raise SequoiaError("give --output (where run directories go) or --directory (the run directory), not both")
    if directory and Path(directory).exists():
        raise SequoiaError(f"--directory {directory} already exists: a run directory is made new "
                           f"(`sequoia --resume {directory}` continues a run)")
    check_output_root(Path(directory or output or "results"), "--directory" if directory else "--output")


def check_threads(threads: int | None) -> int | None:
    """``--threads``, checked: from 1 to :data:`MAX_THREADS`, or ``None`` (the thread policy decides)."""
    if threads is not None and not 1 <= threads <= MAX_THREADS:
        raise SequoiaError(f"invalid --threads {threads}: expected an integer from 1 to {MAX_THREADS}")
    return threads


def execute(run: Run, setting: Any, method: Any, seed: int, *, quiet: bool = False, threads: int | None = None,
            show: bool = True) -> int:
    """Run the loop with ``run`` observing it; print the results (``show``) and where they are."""
    run.thread_policy = ThreadPolicy(check_threads(threads))
    try:
        results = setting.apply(method, seed=seed, progress=not quiet, run=run)
    except TrainingError as error:
        raise type(error)(f"{error}{run.recovery_hint()}") from error
    except (KeyboardInterrupt, BrokenPipeError) as error:
        error.recovery_hint = run.recovery_hint()
        raise
    except OSError as error:
        if not disk_full(error):
            error.run_directory = run.directory
            raise
        # The checkpoint writer says which checkpoint survived; any other write (a metrics
        # line, results.json) fails here, after the last checkpoint, which stays resumable.
        raise TrainingError(f"the disk is full (writing in {error.filename or run.directory})"
                            f"{run.recovery_hint()}") from None
    except Exception as error:
        error.run_directory = run.directory  # where an internal error's traceback is written
        error.recovery_hint = run.recovery_hint()  # said only if a signal caused the error
        raise
    finally:
        run.close()  # the directory's lock, even where the run failed before it opened
    if show and distributed.is_main():
        try:
            print(results.summary())
            print(f"\nrun directory: {run.directory}", flush=True)
        except OSError as error:  # a reader gone, a full device: the results are saved all the same
            error.recovery_hint = f"; the run finished: its results are in {run.directory}"
            raise
    return 0
