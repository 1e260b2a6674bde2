"""A run's directory, checkpoints and loggers: what persists the events of a setting's loop.

A :class:`Run` is created by the runner (:mod:`sequoia.runner`: ``Run.new`` or
``Run.resume``) or by research code, and handed to :meth:`Setting.apply`, whose loop
tells it each event (it is a :class:`~sequoia.settings.events.LoopObserver`). Without
one, nothing is written, and losses are still checked.

Example:
    >>> import tempfile
    >>> from sequoia.settings.sl import IncrementalSLSetting
    >>> from sequoia.methods.naive import Naive
    >>> from sequoia.learners import Classifier
    >>> run = Run.new(tempfile.mkdtemp(), config={"seed": 0})
    >>> method = Naive().use_learner(Classifier(epochs=1))
    >>> results = IncrementalSLSetting(nb_tasks=2).apply(method, progress=False, run=run)
    >>> sorted(p.name for p in run.directory.iterdir())[:3]
    ['checkpoint.pt', 'config.yaml', 'curves.png']
"""

from __future__ import annotations

import dataclasses
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from sequoia import distributed
from sequoia.errors import SequoiaError, disk_full
from sequoia.paths import check_resumable_place, unwritable
from sequoia.results import cell_means
from sequoia.runs import checkpoint, faults
from sequoia.runs.lock import DirectoryLock
from sequoia.runs.loggers import make_loggers
from sequoia.runs.monitor import TrainingMonitor
from sequoia.settings.events import LoopContext, LoopObserver, LoopState
from sequoia.threads import ThreadPolicy
from sequoia.yaml_file import read_yaml

if TYPE_CHECKING:
    from sequoia.methods.base import Method
    from sequoia.results import Results
    from sequoia.settings.base import Setting

CHECKPOINT_FORMAT = 7
"""Version of the checkpoint layout; 2: evaluation rows hold every metric; 3: a header with a digest;
4: the run's config, so that a resume can tell an edited ``config.yaml``; 5: rows hold per-item scores;
6: settings keep what they measure at run time in typed objects (PA: its row-0 ``baseline``); 7: learners keep
their batch order and last data in one ``record`` (:class:`sequoia.learners.base.FitRecord`)."""
CHECKPOINT_KEYS = ("format", "setting_name", "method_name", "config", "loop", "setting", "method", "monitor",
                   "random", "metrics_bytes")


class Run(LoopObserver):
    """Checkpoints and metric logs of one run, in ``directory`` (``None``: in memory only).

    An observer of the setting's loop (:mod:`sequoia.settings.events`): it makes the
    directory (or restores the checkpoint it resumes) when the loop starts, logs and
    checkpoints each evaluation, and writes the results files when they are built. Only
    rank 0 of a multi-process run writes; every rank reads a checkpoint it resumes.
    """

    def __init__(self, directory: Path | None = None, config: dict[str, Any] | None = None,
                 output_root: Path | None = None, resuming: bool = False) -> None:
        self.directory = directory
        self.config = config or {}
        self.output_root = output_root
        self.resuming = resuming
        self.monitor = TrainingMonitor()
        """The loop's monitor once it started (its loggers are this run's)."""
        self._warned_no_state = False
        self.checkpointed_phase: int | None = None
        """The phase the directory's checkpoint was taken after (0: the evaluation before training)."""
        self.lock: DirectoryLock | None = None
        self._saved: dict[str, Any] | None = None
        """The checkpoint state :meth:`resume` loaded, until :meth:`open` restores it."""
        self.thread_policy: ThreadPolicy | None = None
        """Sets torch's thread count once the method has built its model (``None``: torch's own)."""
        self.exact_directory: Path | None = None
        """Where a new run goes when it must go to one given place (``--directory``); made by :meth:`open`."""

    # -- construction -------------------------------------------------------------
    @classmethod
    def new(cls, output_root: str | Path, config: dict[str, Any]) -> "Run":
        """A run that will get a new directory ``<output_root>/<setting>/<method>/<timestamp>``.

        The directory is made only once the setting's data and the method's model have
        loaded, so a run that fails on bad input leaves nothing behind.
        """
        return cls(config=config, output_root=Path(output_root))

    @classmethod
    def resume(cls, directory: str | Path) -> "Run":
        """The run in ``directory``, to be continued from its last checkpoint."""
        path = Path(directory)
        if not (path / "config.yaml").is_file():
            raise SequoiaError(f"cannot resume {directory}: not a run directory (no config.yaml)")
        if (path / "results.json").is_file():
            raise SequoiaError(f"cannot resume {directory}: the run already finished (results.json exists)")
        check_resumable_place(path)
        if not (path / checkpoint.FILE).is_file():
            raise SequoiaError(f"cannot resume {directory}: {_why_no_checkpoint(path)}; start it again")
        config = read_yaml(path / "config.yaml", f"cannot resume {directory}: config.yaml")
        if not isinstance(config, dict) or not isinstance(config.get("setting"), dict) \
                or not isinstance(config.get("method"), dict):
            raise SequoiaError(f"cannot resume {directory}: config.yaml lacks its setting and method")
        run = cls(directory=path, config=config, resuming=True)
        # Checked before anything loads: a damaged checkpoint is refused in a second, not
        # after the model and data have loaded; and only one process resumes at a time.
        payload = checkpoint.verify(path, CHECKPOINT_FORMAT)
        if distributed.launched_rank() == 0:
            run.lock = DirectoryLock.take(path)
        try:
            run._saved = run._saved_state(payload)
            _check_config_unchanged(directory, run._saved["config"], config)
        except SequoiaError:
            run.close()  # the lock, for a caller that goes on in this process
            raise
        return run

    # -- the loop's calls -----------------------------------------------------------
    def started(self, context: LoopContext) -> None:
        """Make the directory (new run) or restore the checkpoint into the loop (resumed run); start the loggers."""
        setting, method = context.setting, context.method
        self.monitor = context.monitor
        resume_step, saved = 0, None
        if self.thread_policy is not None:
            self.thread_policy.apply(method.num_parameters())
        if self.resuming:
            saved, self._saved = self._saved, None  # loaded by resume(); the loop keeps no second copy
            self._check_matches(saved, setting, method)
        elif self.output_root is not None and distributed.is_main():
            self.directory = _new_directory(self.output_root, setting.qualified_name(), method.name, self.config,
                                            self.exact_directory)
            self.lock = DirectoryLock.take(self.directory)
        if saved is not None:
            context.state = LoopState(**saved["loop"])
            self.checkpointed_phase = context.state.next_phase
            setting.load_state_dict(saved["setting"])
            method.load_state_dict(saved["method"])
            self.monitor.load_state(saved["monitor"])
            resume_step = self.monitor.step
        if self.directory is not None and distributed.is_main():
            if saved is not None:
                _truncate(self.directory, saved["metrics_bytes"])
            self._start_loggers(resume_step)
        if saved is not None:
            checkpoint.set_random_state(saved["random"])  # last: nothing above may draw from it

    def evaluated(self, context: LoopContext) -> None:
        """Log the new evaluation row and checkpoint the loop."""
        self.monitor.fault_point("evaluate")
        self.log_evaluation(context.state.rows[-1])
        self.save_checkpoint(context)

    def finished(self, context: LoopContext, results: "Results") -> None:
        """Write the results files (rank 0) and close the loggers."""
        from sequoia.runs.files import write_results

        if self.directory is not None and distributed.is_main():
            write_results(self.directory, results)
        self.close()

    def failed(self, context: LoopContext, error: BaseException) -> None:
        """Close the loggers and the directory's lock; the last checkpoint stays."""
        self.close()

    def _start_loggers(self, resume_step: int) -> None:
        """The loggers of ``config.yaml``; one that cannot start takes a new run's directory with it."""
        try:
            self.monitor.loggers = make_loggers(self.config.get("loggers", []), self.directory, resume_step,
                                                self.config)
        except SequoiaError:
            if not self.resuming:  # nothing ran yet: leave nothing behind, as for any bad input
                self.close()
                shutil.rmtree(self.directory, ignore_errors=True)
            raise

    def _saved_state(self, payload: bytes) -> dict[str, Any]:
        """The checkpoint :meth:`resume` verified, unpickled, with every key the loop needs."""
        saved = checkpoint.load(payload)
        missing = [key for key in CHECKPOINT_KEYS if key not in saved] if isinstance(saved, dict) else ["all"]
        if missing:
            raise SequoiaError(f"cannot resume {self.directory}: its checkpoint lacks {', '.join(missing)} "
                               "(not written by this sequoia); start the run again")
        return saved

    def log_evaluation(self, row: dict[str, list[list[float]]]) -> None:
        """Every metric of one evaluation, per task and averaged, as one line of ``metrics.jsonl``."""
        logged: dict[str, float] = {}
        for metric, scores in cell_means(row).items():
            logged |= {f"eval/{metric}/task_{j}": score for j, score in enumerate(scores)}
            logged[f"eval/{metric}/mean"] = sum(scores) / len(scores)
        self.monitor.log(logged)

    def save_checkpoint(self, context: LoopContext) -> None:
        """Checkpoint the state at the end of a phase (rank 0 writes; the others wait for it)."""
        if self.output_root is None and not self.resuming:
            return  # an in-memory run (the same answer on every rank, so no rank waits alone)
        if distributed.is_main() and self._write_checkpoint(context):
            self.checkpointed_phase = context.state.next_phase
        distributed.barrier()

    def _write_checkpoint(self, context: LoopContext) -> bool:
        """Write ``checkpoint.pt``; ``False`` if the method has no state to save."""
        setting, method, loop = context.setting, context.method, context.state
        method_state = method.state_dict()
        if method_state is None:
            if not self._warned_no_state:
                warnings.warn(f"method {method.name!r} has no state_dict(): this run writes no checkpoints "
                              "and cannot be resumed", stacklevel=3)
                self._warned_no_state = True
            return False
        metrics = self.directory / "metrics.jsonl"
        self.monitor.sync_logs()  # on disk before the checkpoint that counts their bytes
        state = {
            "format": CHECKPOINT_FORMAT,
            "setting_name": setting.qualified_name(),
            "method_name": method.name,
            "config": self.config,
            "loop": dataclasses.asdict(loop) | {"elapsed_s": context.elapsed()},
            "setting": setting.state_dict(),
            "method": method_state,
            "monitor": self.monitor.state(),
            "random": checkpoint.random_state(),
            "metrics_bytes": metrics.stat().st_size if metrics.exists() else 0,
        }
        checkpoint.save(self.directory, state, phase=loop.next_phase, file_format=CHECKPOINT_FORMAT)
        return True

    def recovery_hint(self) -> str:
        """What a failed run leaves behind, for the end of its error message."""
        if self.directory is None or self.checkpointed_phase is None:
            return ""  # in memory, or a rank other than 0
        return (f"; {self.directory} keeps the checkpoint taken after phase {self.checkpointed_phase}"
                f" (`sequoia --resume {self.directory}` continues from there)")

    def close(self) -> None:
        """Close the loggers and let another process into the directory."""
        for logger in self.monitor.loggers:
            logger.close()
        self.monitor.loggers = []
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _check_matches(self, saved: dict[str, Any], setting: "Setting", method: "Method") -> None:
        if saved.get("format") != CHECKPOINT_FORMAT:
            raise SequoiaError(f"cannot resume {self.directory}: its checkpoint has format {saved.get('format')}, "
                               f"this sequoia reads format {CHECKPOINT_FORMAT} (start the run again)")
        found = (saved.get("setting_name"), saved.get("method_name"))
        if found != (setting.qualified_name(), method.name):
            raise SequoiaError(f"cannot resume {self.directory}: its checkpoint is from {found[0]} / {found[1]}, "
                               f"not {setting.qualified_name()} / {method.name}")
        started = (saved.get("config") or {}).get("resolved", {}).get("setting", {})
        for key, value in setting.resolved().items():
            if key in started and started[key] != value:
                raise SequoiaError(f"cannot resume {self.directory}: it ran with setting.{key} {started[key]} "
                                   f"(setting.{key} {getattr(setting, key, '?')} resolved on its machine), this "
                                   f"machine resolves it to {value}; resume where it started, or set "
                                   f"--setting.{key} {started[key]} in a new run")


def _check_config_unchanged(directory: str | Path, started: dict[str, Any], now: dict[str, Any]) -> None:
    """Refuse a ``config.yaml`` edited since the run started: a resume continues the run as configured."""
    key = _first_difference(started, now)
    if key is not None:
        raise SequoiaError(f"cannot resume {directory}: config.yaml changed since the run started ({key}: "
                           f"{_at(started, key)!r} then, {_at(now, key)!r} now); restore it, or start a new run "
                           "(sequoia --config FILE)")


class _Absent:
    def __repr__(self) -> str:
        return "absent"


_ABSENT = _Absent()


def _first_difference(old: Any, new: Any, prefix: str = "") -> str | None:
    """The first dotted key whose value differs between two nested mappings, or ``None``.

    Example:
        >>> _first_difference({"setting": {"nb_tasks": 2}}, {"setting": {"nb_tasks": 3}})
        'setting.nb_tasks'
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            found = _first_difference(old.get(key, _ABSENT), new.get(key, _ABSENT), f"{prefix}{key}.")
            if found is not None:
                return found
        return None
    same = type(old) is type(new) and old == new
    return None if same else prefix.rstrip(".") or "(the whole file)"


def _at(config: Any, key: str) -> Any:
    for part in key.split(".") if key != "(the whole file)" else []:
        config = config.get(part, _ABSENT) if isinstance(config, dict) else _ABSENT
    return config


def check_output_root(root: Path, option: str = "--output") -> None:
    """Refuse an output location no run directory can be made in, before anything loads.

    The nearest existing ancestor must be a writable directory: ``--output`` naming a
    file, a path under a file, or a read-only place is one line now rather than after
    the model has loaded. What only creating can reveal (``/proc``, a full disk) is
    caught when the directory is made.
    """
    problem = unwritable(root)
    if problem:
        raise SequoiaError(f"{option} {root}: {problem}")


def _new_directory(root: Path, setting: str, method: str, config: dict[str, Any], exact: Path | None = None) -> Path:
    """A new run directory holding ``config.yaml`` (at ``exact`` if given); a failure removes what it made.

    A failure is one line.
    """
    from sequoia.runs.files import new_run_dir

    directory = None
    try:
        if exact is not None:
            exact.mkdir(parents=True)  # FileExistsError if it exists: never write into another run
            directory = exact
        else:
            directory = new_run_dir(root, setting, method)
        faults.at("start", 0)
        _write_yaml(directory / "config.yaml", config)
    except OSError as error:
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        reason = "the disk is full" if disk_full(error) else error.strerror or error
        where = f"--directory {exact}" if exact is not None else f"--output {root}"
        raise SequoiaError(f"{where}: cannot make a run directory there ({reason})") from None
    return directory


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _why_no_checkpoint(path: Path) -> str:
    """Why a run directory holds no checkpoint: its method saves no state, or the run stopped too early.

    Example:
        >>> import tempfile
        >>> _why_no_checkpoint(Path(tempfile.mkdtemp()))
        'no checkpoint yet (the run stopped before its first evaluation ended)'
    """
    from sequoia import registry

    try:
        name = read_yaml(path / "config.yaml", "config.yaml")["method"]["name"]
        method = registry.methods().get(name)
    except (SequoiaError, KeyError, TypeError):
        method = None  # a damaged config.yaml is refused with its own message once a checkpoint exists
    if method is not None and not method.saves_state():
        return f"method {name!r} saves no state, so its runs write no checkpoints (the run warned so when it started)"
    return "no checkpoint yet (the run stopped before its first evaluation ended)"


def _truncate(directory: Path, size: int) -> None:
    """Cut ``metrics.jsonl`` back to the ``size`` bytes its checkpoint counted.

    Lines logged after the checkpoint belong to work the resumed run redoes. A file
    shorter than that, or with NUL bytes in what is kept, was damaged after the
    checkpoint (a crash of the machine, not of the process): extending it would fill
    it with NUL bytes, so the run is refused instead.
    """
    path = directory / "metrics.jsonl"
    if not path.exists() and size == 0:
        return
    kept = path.read_bytes()[:size] if path.exists() else b""
    if len(kept) < size or b"\0" in kept or (kept and not kept.endswith(b"\n")):
        raise SequoiaError(f"cannot resume {directory}: metrics.jsonl no longer holds the {size} bytes its "
                           "checkpoint counted (damaged after the checkpoint); start the run again")
    with path.open("r+b") as handle:
        handle.truncate(size)
