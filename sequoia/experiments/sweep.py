"""A sweep directory: its runs, their index, and the driver that brings them all to an end.

Layout::

    <sweep>/
      sweep.yaml        the sweep (base, axes, seeds) and how it launches; `sequoia sweep <sweep>/sweep.yaml`
                        runs it again elsewhere
      index.json        every run: name, seed, axis values, state, last message, cluster job id
      runs/<name>/      an ordinary run directory (config.yaml, checkpoint.pt, results.json...)
      logs/<name>.log   what the run printed
      summary.*         statistics over seeds per configuration (sequoia.experiments.report)

The run directories are the truth: a run is finished when its ``results.json``
exists, resumable when its ``checkpoint.pt`` does. ``index.json`` is rewritten
after every run ends; after a crash of the driver :meth:`Sweep.states` reads the
directories again, so ``sequoia sweep --resume`` keeps what finished, resumes what
was interrupted and runs nothing twice.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sequoia.errors import SequoiaError
from sequoia.experiments.jobs import FINISHED, RunJob, disk_state
from sequoia.experiments.spec import RunSpec, SweepSpec
from sequoia.paths import check_resumable_place
from sequoia.runs.lock import DirectoryLock
from sequoia.text_files import write_atomically
from sequoia.yaml_file import read_yaml

SWEEP_FILE, INDEX_FILE = "sweep.yaml", "index.json"
LAUNCHERS = ("local", "slurm", "submitit_local")
MAX_WORKERS = 256


@dataclass
class LaunchOptions:
    """How a sweep's runs execute.

    Attributes:
        launcher: ``local`` (worker processes here), ``slurm`` (a job array through submitit),
            ``submitit_local`` (the slurm code path in local subprocesses: to try a sweep before a cluster).
        workers: runs at once on this machine (``local``).
        threads: torch threads per run; ``None``: the thread policy (docs/experiments.md).
        slurm: submitit parameters for ``slurm``: ``partition``, ``time`` (minutes), ``gpus_per_run``,
            ``cpus_per_run``, ``mem_gb``, ``array_parallelism``, ``account``.
    """

    launcher: str = "local"
    workers: int = 1
    threads: int | None = None
    slurm: dict[str, Any] = field(default_factory=dict)

    def check(self, where: str, backend: bool = True) -> None:
        """Refuse bad values; with ``backend``, also options that would do nothing and a launcher with no backend."""
        if self.launcher not in LAUNCHERS:
            raise SequoiaError(f"{where}: unknown launcher {self.launcher!r}; expected one of {', '.join(LAUNCHERS)}")
        for name, value, high in (("workers", self.workers, MAX_WORKERS), ("threads", self.threads, 1024)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high):
                raise SequoiaError(f"{where}: {name} must be an integer from 1 to {high}, not {value!r}")
        unknown = set(self.slurm) - set(SLURM_PARAMETERS)
        if unknown:
            raise SequoiaError(f"{where}: unknown slurm options {', '.join(sorted(unknown))}; expected "
                               f"{', '.join(SLURM_PARAMETERS)}")
        if backend:
            self._check_backend(where)

    def _check_backend(self, where: str) -> None:
        """Refuse options that would do nothing, and a SLURM launcher where no SLURM is, before anything is made.

        Example:
            >>> LaunchOptions(launcher="local", slurm={"partition": "gpu"}).check("sequoia sweep")
            Traceback (most recent call last):
            ...
            sequoia.errors.SequoiaError: sequoia sweep: --slurm.partition applies to --launcher slurm or submitit_local, and this sweep's launcher is local
        """
        given = [key for key, value in self.slurm.items() if value is not None]
        if given and self.launcher == "local":
            raise SequoiaError(f"{where}: --slurm.{given[0]} applies to --launcher slurm or submitit_local, and this "
                               f"sweep's launcher is local")
        missing = [tool for tool in ("sbatch", "srun") if shutil.which(tool) is None]
        if self.launcher == "slurm" and missing:
            raise SequoiaError(f"{where}: --launcher slurm needs SLURM, and {' and '.join(missing)} "
                               f"{'is' if len(missing) == 1 else 'are'} not on this machine's PATH; start the sweep "
                               f"where jobs are submitted (a login node), or use --launcher local or submitit_local")

    @property
    def workers_here(self) -> int:
        """How many runs share this machine's cores (what the thread policy divides them by)."""
        return self.workers if self.launcher == "local" else 1

    def resumed(self, overrides: dict[str, Any], where: str) -> "LaunchOptions":
        """These recorded options with the command line's ``overrides`` on top, checked (``--resume``).

        A cluster's sweep or tuning resumed with ``--launcher local`` drops its slurm options.
        """
        recorded = asdict(self)
        if overrides.get("launcher") == "local":
            recorded["slurm"] = {}
        launch = LaunchOptions(**{**recorded, **overrides})
        launch.check(where)
        return launch

    def make_launcher(self, directory: Path) -> Any:
        """The launcher that runs jobs of ``directory`` (a sweep's or a tuning's) as these options say."""
        from sequoia.experiments.launchers import LocalLauncher, SubmititLauncher

        if self.launcher == "local":
            return LocalLauncher(self.workers)
        cluster = "slurm" if self.launcher == "slurm" else "local"
        return SubmititLauncher(directory / "submitit", cluster, self.submitit_parameters())

    def submitit_parameters(self) -> dict[str, Any]:
        """The ``slurm`` options as submitit's ``update_parameters`` names them."""
        return {SLURM_PARAMETERS[key]: value for key, value in self.slurm.items() if value is not None}


SLURM_PARAMETERS = {"partition": "slurm_partition", "time": "timeout_min", "gpus_per_run": "gpus_per_node",
                    "cpus_per_run": "cpus_per_task", "mem_gb": "mem_gb", "array_parallelism": "slurm_array_parallelism",
                    "account": "slurm_account"}


def make_new_directory(directory: Path, kind: str) -> bool:
    """Make a new ``kind`` directory (``sweep`` or ``tuning``) with its ``runs/``; refuse one that holds anything.

    Returns whether ``directory`` was made here (``False``: it existed, empty).

    Raises:
        SequoiaError: the directory holds files (``--resume`` continues it), or cannot be made.
    """
    if directory.exists() and any(directory.iterdir()):
        command = "sweep" if kind == "sweep" else "tune"
        raise SequoiaError(f"{kind} directory {directory} already exists and is not empty "
                           f"(`sequoia {command} --resume {directory}` continues a {kind})")
    made = not directory.exists()
    try:
        (directory / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SequoiaError(f"cannot make the {kind} directory {directory} ({error.strerror or error})") from None
    return made


class Sweep:
    """The runs of a sweep, in ``directory``."""

    def __init__(self, directory: Path, spec: SweepSpec, launch: LaunchOptions) -> None:
        self.directory, self.spec, self.launch = directory, spec, launch
        self.runs: list[RunSpec] = spec.runs()
        self.lock: DirectoryLock | None = None
        self._recorded: dict[str, dict[str, Any]] = {}

    # -- making and opening -------------------------------------------------------
    @classmethod
    def create(cls, directory: Path, spec: SweepSpec, launch: LaunchOptions) -> "Sweep":
        """A new sweep directory holding ``sweep.yaml`` and an index of pending runs."""
        make_new_directory(directory, "sweep")
        sweep = cls(directory, spec, launch)
        sweep.write_definition()
        sweep.lock = DirectoryLock.take(directory, SWEEP_FILE)
        sweep.write_index()
        return sweep

    @classmethod
    def open(cls, directory: Path, overrides: dict[str, Any]) -> "Sweep":
        """The sweep in ``directory`` (``--resume``), with launch ``overrides`` (workers, launcher...)."""
        path = directory / SWEEP_FILE
        if not path.is_file():
            raise SequoiaError(f"cannot resume {directory}: not a sweep directory (no {SWEEP_FILE})")
        check_resumable_place(directory)
        loaded = read_yaml(path, f"cannot resume {directory}: {SWEEP_FILE}")
        spec, launch = read_definition(loaded, f"cannot resume {directory}: {SWEEP_FILE}")
        sweep = cls(directory, spec, launch.resumed(overrides, "sequoia sweep --resume"))
        sweep.lock = DirectoryLock.take(directory, SWEEP_FILE)
        sweep._recorded = sweep._read_index()
        return sweep

    def write_definition(self) -> None:
        definition = {**self.spec.to_dict(), "launch": asdict(self.launch)}
        (self.directory / SWEEP_FILE).write_text(yaml.safe_dump(definition, sort_keys=False))

    # -- the index ------------------------------------------------------------------
    def states(self) -> list[dict[str, Any]]:
        """Every run's entry: the state its directory shows, with what the index last recorded."""
        entries = []
        for run in self.runs:
            recorded = self._recorded.get(run.name, {})
            state = disk_state(self.directory / "runs" / run.name)
            if state != FINISHED and recorded.get("state") in ("failed", "interrupted"):
                state = recorded["state"]
            entries.append({"name": run.name, "seed": run.seed, "values": run.values, "state": state,
                            "message": recorded.get("message", "") if state != FINISHED else "",
                            "job_id": recorded.get("job_id")})
        return entries

    def record(self, name: str, **values: Any) -> None:
        """Note an outcome (state, message) or a cluster job id for run ``name``; rewrite the index."""
        self._recorded.setdefault(name, {}).update(values)
        self.write_index()

    def write_index(self) -> None:
        write_atomically(self.directory / INDEX_FILE, json.dumps({"runs": self.states()}, indent=1) + "\n")

    def _read_index(self) -> dict[str, dict[str, Any]]:
        try:
            runs = json.loads((self.directory / INDEX_FILE).read_text())["runs"]
            return {entry["name"]: entry for entry in runs if isinstance(entry, dict) and "name" in entry}
        except (OSError, ValueError, KeyError, TypeError):
            return {}  # rebuilt from the run directories, which are the truth

    # -- running ----------------------------------------------------------------------
    def jobs(self) -> list[RunJob]:
        """A job for every run not finished yet."""
        return [RunJob(run.name, run.options, str(self.directory), self.launch.workers_here, self.launch.threads)
                for run in self.runs if disk_state(self.directory / "runs" / run.name) != FINISHED]

    def execute(self, progress: bool = True) -> list[dict[str, Any]]:
        """Bring every run to its end; return the entries of those that did not finish."""
        jobs = self.jobs()
        done, total, started = len(self.runs) - len(jobs), len(self.runs), time.perf_counter()
        if done:
            say(f"{done} of {total} runs already finished; {len(jobs)} to go", progress)

        def on_done(job: RunJob, outcome: dict[str, Any]) -> None:
            nonlocal done
            done += 1
            self.record(job.name, state=outcome["state"], message=outcome.get("message", ""))
            detail = f": {outcome['message']}" if outcome.get("message") and outcome["state"] != FINISHED else ""
            took = f"{outcome['seconds']:.0f} s; " if "seconds" in outcome else ""
            say(f"[{done}/{total}] {job.name}: {outcome['state']}{detail} "
                 f"({took}{time.perf_counter() - started:.0f} s since the sweep began)", progress)

        self.launch.make_launcher(self.directory).launch(jobs, on_done, lambda job, job_id: self.record(job.name, job_id=job_id))
        return [entry for entry in self.states() if entry["state"] != FINISHED]

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def read_definition(loaded: Any, where: str) -> tuple[SweepSpec, LaunchOptions]:
    """A sweep file's (or ``sweep.yaml``'s) sweep and launch options, checked."""
    if not isinstance(loaded, dict):
        raise SequoiaError(f"{where} must hold a mapping with keys base, axes, seeds (and launch)")
    launch = read_launch(loaded.get("launch"), where)
    spec = SweepSpec.from_file({key: value for key, value in loaded.items() if key != "launch"}, where)
    return spec, launch


def read_launch(launch_values: Any, where: str) -> LaunchOptions:
    """A file's ``launch`` section (a sweep file, ``sweep.yaml``, ``tune.yaml``), checked; ``None``: the defaults."""
    launch_values = launch_values or {}
    if not isinstance(launch_values, dict):
        raise SequoiaError(f"{where}: `launch` must be a mapping (launcher, workers, threads, slurm)")
    unknown = set(map(str, launch_values)) - {"launcher", "workers", "threads", "slurm"}
    if unknown:
        raise SequoiaError(f"{where}: unknown launch keys {', '.join(sorted(unknown))}")
    launch = LaunchOptions(**launch_values)
    if not isinstance(launch.slurm, dict):
        raise SequoiaError(f"{where}: `launch.slurm` must be a mapping of slurm options")
    launch.check(where, backend=False)  # the command line may still change the launcher: checked after it
    return launch


def say(line: str, progress: bool) -> None:
    """A line of a sweep's or a tuning's progress on stderr, where progress is shown."""
    if progress:
        print(line, file=sys.stderr, flush=True)
