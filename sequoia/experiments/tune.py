"""A tuning directory: an Optuna study whose trials are ordinary sequoia runs.

Layout::

    <tuning>/
      tune.yaml      what is tuned (fixed options, space, protocol, objective, trials, seeds, sampler) and how
                     it launches
      optuna.db      the Optuna study (SQLite), unless --storage names another (an RDB URL, journal:FILE)
      runs/trial-0003-seed-0/   an ordinary run directory per trial and seed
      logs/          what each run printed
      trials.csv     every trial: its number, state, objective value, values drawn, seconds
      best.yaml      the best configuration as a sweep file, with the protocol's evaluation options:
                     `sequoia sweep best.yaml` evaluates it over seeds
      history.png, importance.png   Optuna's optimisation history and parameter importances

Optuna proposes values (TPE by default); each trial's runs execute through the sweep
launchers (:mod:`sequoia.experiments.launchers`), ``workers`` trials at a time. A
trial is told to the study when all its runs have ended. The study in its storage
and the run directories are the truth: after a kill, ``sequoia tune --resume DIR``
brings every trial the study holds as running to its end (a run with a checkpoint
resumes, a finished run is kept) before it asks for new ones, so no trial is lost
or run twice.
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sequoia.errors import SequoiaError
from sequoia.experiments.jobs import FINISHED, INTERRUPTED, RunJob
from sequoia.experiments.objective import Objective
from sequoia.experiments.protocols import Protocol
from sequoia.experiments.space import Dimension, parse_dimension
from sequoia.experiments.spec import parse_seeds
from sequoia.experiments.sweep import LaunchOptions, make_new_directory, read_launch, say
from sequoia.paths import check_resumable_place
from sequoia.runs.lock import DirectoryLock
from sequoia.text_files import write_atomically

TUNE_FILE, STUDY_NAME = "tune.yaml", "sequoia-tune"
SAMPLERS = ("tpe", "random")
MAX_TRIALS = 100_000
KIND_NAMES = {dict: "a mapping", int: "a whole number", list: "a list", str: "text", type(None): "null"}


def require_optuna() -> Any:
    """The ``optuna`` module, or a one-line error naming the extra that installs it."""
    try:
        import optuna
    except ImportError:
        raise SequoiaError("sequoia tune needs Optuna: pip install 'sequoia[tune]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # sequoia prints its own line per trial
    return optuna


@dataclass
class TuneSpec:
    """What a tuning tunes.

    Attributes:
        base: the fixed run options (``setting``, ``method``, ``learner.epochs``...).
        space: the tuned options and their ranges.
        protocol: which tasks or items trials may see (:mod:`sequoia.experiments.protocols`).
        objective: the metric (or sum of metrics) and its direction.
        trials: how many trials the study holds at the end.
        seeds: every trial runs once per seed; its value is the mean.
        sampler: ``tpe`` (Optuna's TPESampler) or ``random``; ``sampler_seed`` seeds it.
        storage: an Optuna storage URL (``sqlite:///...``, ``postgresql://...``, ``journal:FILE``);
            ``None``: ``optuna.db`` in the tuning directory.
    """

    base: dict[str, Any]
    space: dict[str, Dimension]
    protocol: Protocol
    objective: Objective
    trials: int = 20
    seeds: list[int] = field(default_factory=lambda: [0])
    sampler: str = "tpe"
    sampler_seed: int = 0
    storage: str | None = None

    def check(self) -> None:
        """Refuse a bad count, sampler, or an option both fixed and tuned (or set by the protocol)."""
        if isinstance(self.trials, bool) or not isinstance(self.trials, int) or not 1 <= self.trials <= MAX_TRIALS:
            raise SequoiaError(f"--trials {self.trials!r}: expected a whole number from 1 to {MAX_TRIALS}")
        if self.sampler not in SAMPLERS:
            raise SequoiaError(f"--sampler {self.sampler}: expected one of {', '.join(SAMPLERS)}")
        if not self.space:
            raise SequoiaError("sequoia tune needs a space: --space OPTION=KIND:ARGUMENTS (for example "
                               "learner.lr=loguniform:1e-5:1e-2) or a space file")
        both = sorted(set(self.base) & set(self.space))
        if both:
            raise SequoiaError(f"--{both[0]} is both fixed and in the space")
        self.protocol.check(set(self.base) | set(self.space))

    def trial_options(self, values: dict[str, Any]) -> dict[str, Any]:
        """A trial's run options: the fixed ones, the values drawn, and the protocol's."""
        return {**self.base, **values, **self.protocol.trial_options()}

    def evaluation_options(self, values: dict[str, Any]) -> dict[str, Any]:
        """The chosen configuration's options, as its evaluation runs take them."""
        return {**self.base, **values, **self.protocol.evaluation_options()}

    def to_dict(self) -> dict[str, Any]:
        return {"base": dict(self.base), "space": {key: dim.text() for key, dim in self.space.items()},
                "protocol": asdict(self.protocol), "objective": {"text": self.objective.text,
                                                                 "direction": self.objective.direction},
                "trials": self.trials, "seeds": list(self.seeds), "sampler": self.sampler,
                "sampler_seed": self.sampler_seed, "storage": self.storage}

    @classmethod
    def from_dict(cls, loaded: dict[str, Any], where: str) -> "TuneSpec":
        """``tune.yaml``'s definition (as :meth:`to_dict` writes it), checked field by field."""
        def field_of(key: str, kind: type | tuple[type, ...]) -> Any:
            value = loaded.get(key)
            if not isinstance(value, kind) or isinstance(value, bool):
                names = " or ".join(KIND_NAMES[k] for k in (kind if isinstance(kind, tuple) else (kind,)))
                raise SequoiaError(f"{where}: `{key}` must be {names}, as sequoia writes it, not {value!r}")
            return value

        protocol, objective = field_of("protocol", dict), field_of("objective", dict)
        if set(protocol) != {"name", "tuning_tasks"} or set(objective) != {"text", "direction"}:
            raise SequoiaError(f"{where}: `protocol` must hold name and tuning_tasks, `objective` text and direction")
        spec = cls(dict(field_of("base", dict)),
                   {str(key): parse_dimension(str(key), str(text), where)
                    for key, text in field_of("space", dict).items()},
                   Protocol(str(protocol["name"]), protocol["tuning_tasks"]),
                   Objective.parse(str(objective["text"]), str(objective["direction"])),
                   field_of("trials", int), parse_seeds(",".join(map(str, field_of("seeds", list))), where),
                   str(field_of("sampler", str)), field_of("sampler_seed", int),
                   field_of("storage", (str, type(None))))
        spec.check()
        return spec


class Tuning:
    """The study and the trial runs of a tuning, in ``directory``."""

    def __init__(self, directory: Path, spec: TuneSpec, launch: LaunchOptions) -> None:
        self.directory, self.spec, self.launch = directory, spec, launch
        self.lock: DirectoryLock | None = None
        self.study = self._load_study()

    # -- making and opening -------------------------------------------------------
    @classmethod
    def create(cls, directory: Path, spec: TuneSpec, launch: LaunchOptions) -> "Tuning":
        """A new tuning directory holding ``tune.yaml`` and an empty study."""
        made = make_new_directory(directory, "tuning")
        definition = {**spec.to_dict(), "launch": asdict(launch)}
        (directory / TUNE_FILE).write_text(yaml.safe_dump(definition, sort_keys=False))
        lock = DirectoryLock.take(directory, TUNE_FILE)
        try:
            tuning = cls(directory, spec, launch)
        except SequoiaError:  # a storage that cannot be opened: leave no half-made directory behind
            lock.release()
            if made:
                shutil.rmtree(directory)
            else:  # the user's own empty directory: emptied again, kept
                for path in directory.iterdir():
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
            raise
        tuning.lock = lock
        return tuning

    @classmethod
    def open(cls, directory: Path, overrides: dict[str, Any], trials: int | None) -> "Tuning":
        """The tuning in ``directory`` (``--resume``), with launch ``overrides`` and, if given, a new trial count."""
        from sequoia.yaml_file import read_yaml

        path = directory / TUNE_FILE
        if not path.is_file():
            raise SequoiaError(f"cannot resume {directory}: not a tuning directory (no {TUNE_FILE})")
        check_resumable_place(directory)
        where = f"cannot resume {directory}: {TUNE_FILE}"
        loaded = read_yaml(path, where)
        if not isinstance(loaded, dict):
            raise SequoiaError(f"{where} must hold a mapping")
        spec = TuneSpec.from_dict(loaded, where)
        if trials is not None:
            spec.trials = trials
            spec.check()
        launch = read_launch(loaded.get("launch"), where).resumed(overrides, "sequoia tune --resume")
        lock = DirectoryLock.take(directory, TUNE_FILE)
        tuning = cls(directory, spec, launch)
        tuning.lock = lock
        if trials is not None:
            path.write_text(yaml.safe_dump({**spec.to_dict(), "launch": asdict(launch)}, sort_keys=False))
        return tuning

    def _load_study(self) -> Any:
        optuna = require_optuna()
        try:
            study = optuna.create_study(storage=self._storage(optuna), study_name=STUDY_NAME,
                                        direction=self.spec.objective.direction, load_if_exists=True)
        except Exception as error:  # a bad URL, a missing database driver, an unwritable file: SQLAlchemy's own errors
            raise SequoiaError(f"--storage {self.spec.storage or self.directory / 'optuna.db'}: cannot open the "
                               f"Optuna study ({str(error).splitlines()[0]})") from None
        # A resumed tuning's sampler starts from a seed of its own: the same seed would draw the same values again.
        seed = self.spec.sampler_seed + len(study.trials)
        study.sampler = (optuna.samplers.TPESampler(seed=seed) if self.spec.sampler == "tpe"
                         else optuna.samplers.RandomSampler(seed=seed))
        return study

    def _storage(self, optuna: Any) -> Any:
        storage = self.spec.storage
        if storage is None:
            return f"sqlite:///{(self.directory / 'optuna.db').resolve()}"
        if storage.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(storage.removeprefix("journal:")))
        return storage

    # -- running ----------------------------------------------------------------------
    def counted(self) -> list[Any]:
        """The study's trials that count toward ``trials`` (not those stopped before any value was drawn)."""
        return [trial for trial in self.study.get_trials(deepcopy=False) if not trial.user_attrs.get("not_run")]

    def running(self) -> list[Any]:
        """Trials the study holds as running: a driver stopped while their runs went on."""
        optuna = require_optuna()
        return [trial for trial in self.counted() if trial.state == optuna.trial.TrialState.RUNNING]

    def jobs(self, number: int, values: dict[str, Any]) -> list[RunJob]:
        """One job per seed for trial ``number``: its runs under ``runs/``."""
        options = self.spec.trial_options(values)
        return [RunJob(f"trial-{number:04d}-seed-{seed}", {**options, "seed": seed},
                       str(self.directory), self.launch.workers_here, self.launch.threads) for seed in self.spec.seeds]

    def execute(self, progress: bool = True) -> None:
        """Bring the study to ``trials`` trials, each told with its value (or as failed)."""
        interrupted = self.running()
        if interrupted:
            say(f"{len(interrupted)} trial{'s were' if len(interrupted) > 1 else ' was'} running when the tuning "
                 "stopped; finishing first", progress)
        optuna = require_optuna()
        # A trial the study holds as running is continued through a live handle on it (the stored id).
        self._run_batch([optuna.trial.Trial(self.study, trial._trial_id) for trial in interrupted], progress)
        while len(self.counted()) < self.spec.trials:
            room = min(max(1, self.launch.workers), self.spec.trials - len(self.counted()))
            distributions = {name: dim.distribution() for name, dim in self.spec.space.items()}
            self._run_batch([self.study.ask(fixed_distributions=distributions) for _ in range(room)], progress)

    def _drawn(self, trials: list[Any]) -> list[Any]:
        """The trials with a value for every option; any other was stopped inside ``ask`` (nothing ran): it is
        closed as failed and not counted, and a new trial takes its place."""
        drawn = [trial for trial in trials if set(trial.params) == set(self.spec.space)]
        for trial in trials:
            if trial not in drawn:
                trial.set_user_attr("not_run", True)
                self.study.tell(trial, state=require_optuna().trial.TrialState.FAIL)
        return drawn

    def _run_batch(self, trials: list[Any], progress: bool) -> None:
        """Run the trials' jobs together through the launcher; tell each trial when its last run ends."""
        complete = self._drawn(trials)
        if not complete:
            return
        jobs = {trial.number: self.jobs(trial.number, trial.params) for trial in complete}
        waiting = {number: len(trial_jobs) for number, trial_jobs in jobs.items()}
        outcomes: dict[int, list[dict[str, Any]]] = {number: [] for number in jobs}
        owner = {job.name: trial for trial in complete for job in jobs[trial.number]}

        def on_done(job: RunJob, outcome: dict[str, Any]) -> None:
            trial = owner[job.name]
            outcomes[trial.number].append({**outcome, "name": job.name})
            waiting[trial.number] -= 1
            if not waiting[trial.number]:
                self._tell(trial, outcomes[trial.number], progress)

        self.launch.make_launcher(self.directory).launch([job for trial_jobs in jobs.values() for job in trial_jobs], on_done)

    def _tell(self, trial: Any, outcomes: list[dict[str, Any]], progress: bool) -> None:
        """The trial's value (the mean over its seeds) to the study; a failed run fails the trial."""
        from sequoia.experiments.summary import load_run

        optuna = require_optuna()
        number, values = trial.number, trial.params
        if any(outcome["state"] == INTERRUPTED for outcome in outcomes):
            return  # stopped by a signal: left running, so that --resume continues its runs from their checkpoints
        failed = [outcome for outcome in outcomes if outcome["state"] != FINISHED]
        seconds = sum(outcome.get("seconds", 0.0) for outcome in outcomes)
        trial.set_user_attr("seconds", seconds)
        if failed:
            trial.set_user_attr("message", failed[0].get("message", ""))
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            say(f"[trial {number}] {_shown(values)}: failed ({failed[0].get('message', '')})", progress)
            return
        scores = [self.spec.objective.value(load_run(self.directory / "runs" / outcome["name"]).metrics,
                                            f"run {outcome['name']}") for outcome in outcomes]
        value = sum(scores) / len(scores)
        if not math.isfinite(value):
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            say(f"[trial {number}] {_shown(values)}: failed (the objective is {value})", progress)
        else:
            self.study.tell(trial, value)
            best = self.study.best_trial
            say(f"[trial {number}] {_shown(values)}: {value:.4g} (best {best.value:.4g}, trial {best.number}; "
                 f"{seconds:.0f} s)", progress)
        self.write_outputs(plots=False)

    # -- what a tuning writes -------------------------------------------------------
    def write_outputs(self, plots: bool = True) -> list[Path]:
        """``trials.csv`` and ``best.yaml`` (and, with ``plots``, Optuna's plots); the paths written."""
        written = [self._write_trials()]
        best = self.best()
        if best is not None:
            written.append(self._write_best(best))
        if plots:
            written += self._write_plots()
        return written

    def best(self) -> Any | None:
        """The best finished trial, or ``None`` before any has finished."""
        optuna = require_optuna()
        done = [trial for trial in self.counted() if trial.state == optuna.trial.TrialState.COMPLETE]
        return self.study.best_trial if done else None

    def _write_trials(self) -> Path:
        names = list(self.spec.space)
        rows = [[trial.number, trial.state.name.lower(), "" if trial.value is None else trial.value,
                 round(trial.user_attrs.get("seconds", 0.0), 1), *(trial.params.get(name, "") for name in names),
                 trial.user_attrs.get("message", "")] for trial in self.counted()]
        table = io.StringIO()
        csv.writer(table).writerows([["trial", "state", "value", "seconds", *names, "message"], *rows])
        return write_atomically(self.directory / "trials.csv", table.getvalue())

    def _write_best(self, best: Any) -> Path:
        objective = self.spec.objective
        header = (f"# The configuration `sequoia tune` chose: trial {best.number} of {len(self.counted())}, "
                  f"{objective.text} = {best.value:.6g} ({objective.direction}),\n# protocol {self.spec.protocol.name}"
                  f" (docs/tuning.md). Evaluate it over seeds:\n#   sequoia sweep {self.directory / 'best.yaml'}\n")
        body = {"base": self.spec.evaluation_options(best.params), "seeds": "0-4"}
        return write_atomically(self.directory / "best.yaml", header + yaml.safe_dump(body, sort_keys=False))

    def _write_plots(self) -> list[Path]:
        """Optuna's optimisation history and, with two finished trials or more, the parameter importances."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from optuna.visualization import matplotlib as optuna_plots

        optuna = require_optuna()
        finished = [t for t in self.counted() if t.state == optuna.trial.TrialState.COMPLETE]
        plots = [("history.png", optuna_plots.plot_optimization_history)]
        if len(finished) >= 2:
            plots.append(("importance.png", optuna_plots.plot_param_importances))
        written = []
        for name, plot in plots:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = plot(self.study)
            axes.figure.tight_layout()
            axes.figure.savefig(self.directory / name, dpi=120)
            plt.close(axes.figure)
            written.append(self.directory / name)
        return written

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def _shown(values: dict[str, Any]) -> str:
    return " ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                    for key, value in values.items())
