"""The root of the setting tree and the loop every setting shares."""

import dataclasses
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass as plain_dataclass
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from tqdm.auto import tqdm

from sequoia import distributed, progress, protocols
from sequoia.errors import NotApplicableError, SequoiaError, TrainingError
from sequoia.metric_spec import TRANSFER_SUMMARIES, MetricSpec, check_specs
from sequoia.results import FinalOutputs, Results, TransferMatrix, cell_means
from sequoia.runs.monitor import TrainingMonitor
from sequoia.runs.state import capture, restore
from sequoia.seeding import seed_everything
from sequoia.settings import schedule
from sequoia.settings.assumptions import ContinualAssumption
from sequoia.settings.events import LoopContext, LoopObserver, LoopState, Observers, PhaseBar
from sequoia.settings.method_contract import MethodContract as Method
from sequoia.settings.schedule import Items, PhasePlan
from sequoia.settings.view import SettingView


@plain_dataclass
class Phase:
    """One call (or, in online levels, several calls) of ``method.fit``.

    Attributes:
        task_id: the task this phase trains on, ``None`` when training mixes tasks.
        chunks: the training data, split into the pieces passed to ``fit`` one after
            the other; a single chunk unless the level evaluates online.
        valid: held-out data from the same tasks, or ``None``.
    """

    task_id: int | None
    chunks: list[Any]
    valid: Any


@dataclass
class Setting(ContinualAssumption):
    """A continual-learning problem: the most general node of the tree.

    Subclasses add assumptions (a level mixin) and a domain (SL, RL, PA, or one from
    another package: :mod:`sequoia.domain`). A domain supplies tasks and scores through
    a few hooks; this class owns the rest:

    * the schedule: which training items go into which phase, from the level's flags
      alone (:mod:`sequoia.settings.schedule`);
    * the loop: evaluate the untrained method on every task (row 0), then for each
      phase signal the boundary where the level does, train, and evaluate again
      (one more row of every metric's transfer matrix);
    * what the method may know: ``configure`` gets :meth:`view`, never the setting.

    The domain hooks are ``metric_specs``, ``prepare``, ``nb_tasks_total``, ``train_size``,
    ``training_data``, ``validation_data``, ``score``, ``online_score``, ``view`` and
    ``finish``, and a domain names what its evaluation asks of a method in
    ``test_protocol`` (see ``docs/writing_a_setting.md``).

    Example:
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> from sequoia.methods.naive import Naive
        >>> results = IncrementalSLSetting(nb_tasks=2).apply(Naive(), progress=False)
        >>> results.matrix.values.shape
        (3, 2)
    """

    domain: ClassVar[str] = ""
    results_class: ClassVar[type[Results]] = Results
    """What :meth:`apply` returns: a domain with tables of its own subclasses :class:`Results`."""
    task_not_in_inputs: ClassVar[str] = ""
    """Why a task cannot be told from one test input, where it cannot ('' where it can): methods that route
    each input to an expert (``experts``) refuse such a setting with this reason."""
    test_protocol: ClassVar[type | None] = None
    """What the evaluation asks of a method (a runtime-checkable protocol the domain declares:
    :mod:`sequoia.protocols`); checked once the method is configured. ``None``: nothing."""
    default_learner: ClassVar[str] = ""
    """The learner (by registered name) that methods built on learners use here unless told otherwise."""

    task_slice: Annotated[str, Field(pattern=r"^(\d*:\d*)?$")] = ""
    """The tasks of the sequence to keep, as a slice START:STOP of task indices (`:2` the first two, `2:` the
    rest; empty: all). The `first_tasks` tuning protocol tunes on `:K` and evaluates on `K:` (docs/tuning.md)."""
    evaluate_on: Literal["test", "validation"] = "test"
    """What evaluation scores: each task's test items, or items held out of its training data (`validation`:
    the tuning protocol of that name, docs/tuning.md; no test item is then scored)."""

    @property
    def progress(self) -> bool:
        """Whether to show progress bars: ``apply`` decides it per run (off until then)."""
        return vars(self).get("_progress", False)

    @progress.setter
    def progress(self, shown: bool) -> None:
        self._progress = shown

    @classmethod
    def qualified_name(cls) -> str:
        """``<domain>.<level>``, e.g. ``sl.incremental``."""
        return f"{cls.domain}.{cls.level}"

    def kept_tasks(self, tasks: list[Any]) -> list[Any]:
        """The part of a domain's task sequence that ``task_slice`` keeps (every domain's ``prepare`` calls it).

        Example:
            >>> from sequoia.settings.sl import IncrementalSLSetting
            >>> IncrementalSLSetting(task_slice="1:3").kept_tasks(["a", "b", "c", "d"])
            ['b', 'c']
        """
        if not self.task_slice:
            return list(tasks)
        start, _, stop = self.task_slice.partition(":")
        kept = list(tasks)[int(start or 0): int(stop) if stop else None]
        if not kept:
            raise SequoiaError(f"--setting.task_slice {self.task_slice} keeps none of the {len(tasks)} tasks of "
                               f"this sequence (tasks are numbered from 0)")
        return kept

    def metric_specs(self) -> list[MetricSpec]:
        """The metrics :meth:`score` and :meth:`score_probe` return, the primary one first: each one's direction,
        range and summaries (:mod:`sequoia.metric_spec`). They may depend on the options, never on a draw;
        a metric scored but not declared is higher-is-better with its final average only.

        Example:
            >>> from sequoia.settings.sl import IncrementalSLSetting
            >>> IncrementalSLSetting().metric_specs()[0]
            MetricSpec(name='accuracy', higher_is_better=True, low=0.0, high=1.0, summaries=('final', 'forgetting', 'bwt', 'fwt'), label='', summary_names={}, per_task=True)
        """
        return [MetricSpec("accuracy", low=0.0, high=1.0, summaries=TRANSFER_SUMMARIES)]

    @property
    def metric_name(self) -> str:
        """The primary metric: the one ``score`` must return, online performance measures and bars show."""
        return self.metric_specs()[0].name

    def sequence_length(self) -> int | None:
        """How many tasks the sequence has before ``task_slice``, known from the options alone (without
        loading anything); ``None`` where only :meth:`prepare` can tell. ``sequoia tune`` checks protocols with it."""
        return None

    # -- domain hooks -------------------------------------------------------------
    def prepare(self) -> None:
        """Load data or build environments; called once per run, after seeding."""

    @property
    def nb_tasks_total(self) -> int:
        """The number of tasks (columns of the transfer matrix)."""
        raise NotImplementedError

    def train_size(self, task: int) -> int:
        """How many training items task ``task`` has (SL images, PA pairs, RL steps)."""
        raise NotImplementedError

    def training_data(self, items: Items) -> Any:
        """What ``fit`` receives for ``items``: the data (or environment) of those training items."""
        raise NotImplementedError

    def validation_data(self, tasks: tuple[int, ...]) -> Any:
        """Held-out training data of ``tasks`` passed to ``fit`` as ``valid``; ``None`` by default."""
        return None

    def score(self, method: "Method", task: int, task_id: int | None) -> dict[str, Any]:
        """Every metric of ``method`` on task ``task``'s test set, the primary one included.

        Each metric's value is one score per test item (a sequence: per image, pair or
        episode), in the same item order every time the task is scored; the loop
        averages them into the transfer matrices and bootstraps their intervals. A
        single number is taken as one item (a cell without an interval).
        ``task_id`` is what the method may be told (``None`` where the level hides it).
        """
        raise NotImplementedError

    def online_score(self, method: "Method", chunk: Any) -> Any:
        """Score the method on ``chunk`` before it trains on it: one score per item."""
        raise NotImplementedError

    def probe_names(self) -> list[str]:
        """Metrics measured once per evaluation rather than per task (PA: capability probes); none by default.

        Each becomes a one-column matrix named as here; :meth:`score_probe` scores it.
        """
        return []

    def score_probe(self, method: "Method", name: str) -> Any:
        """One score per item of probe ``name`` (see :meth:`probe_names`)."""
        raise NotImplementedError

    def view(self) -> SettingView:
        """What a method may know about this setting (see :mod:`sequoia.settings.view`)."""
        return SettingView.of(self)

    def final_outputs(self, method: "Method") -> FinalOutputs:
        """What is not a metric, measured once training is over (samples, baselines), for the results.

        Called once, after the last evaluation; the results are built with it. Default: nothing.
        """
        return FinalOutputs()

    # -- configuration --------------------------------------------------------------
    @classmethod
    def option_groups(cls) -> dict[str, type]:
        """Option groups beyond ``setting`` that this setting takes, by name (PA: ``eval``).

        Each is a dataclass whose fields become ``--<group>.<field>`` options and a
        section of ``config.yaml``, as a method's ``learner`` group does.
        """
        return {}

    def use_options(self, group: str, options: Any) -> None:
        """Take a built instance of one of :meth:`option_groups`."""
        raise KeyError(f"{type(self).__name__} has no option group {group!r}")

    def config(self) -> dict[str, dict[str, Any]]:
        """This setting's part of ``config.yaml``: its options by group (``setting`` with its name)."""
        return {"setting": {"name": self.qualified_name(), **dataclasses.asdict(self)}}

    def header(self) -> str | None:
        """A line printed when the run starts (after every check), saying what this machine decided."""
        return None

    def resolved(self) -> dict[str, Any]:
        """Options whose value this machine decides (PA's ``dtype: auto``), as decided: ``config.yaml``'s
        ``resolved`` section, which a resume on a machine that decides otherwise refuses."""
        return {}

    # -- checkpoints --------------------------------------------------------------
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("rng",)
    """Attributes that change as the loop runs; domains with more (cached scores) extend this."""
    supports_several_processes: ClassVar[bool] = True
    """Whether the domain's loop can be split over ranks (see :mod:`sequoia.distributed`)."""

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this setting (its generator and cached scores)."""
        return capture(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore(self, state)

    # -- the schedule -------------------------------------------------------------
    def phase_plans(self, rng: np.random.Generator | None = None) -> list[PhasePlan]:
        """Which training items go into which phase: the one place that reads the level's schedule flags."""
        rng = self.rng if rng is None else rng
        sizes = [self.train_size(task) for task in range(self.nb_tasks_total)]
        if self.joint_training:
            return [schedule.joint_phase(sizes, self.task_labels_at_train, rng)]
        if self.online_evaluation:
            drift = self.drift_width if self.smooth_task_shift else None
            return schedule.stream_phases(sizes, self.chunks_per_task, drift, rng)
        return schedule.per_task_phases(sizes, self.task_labels_at_train)

    def fit_lengths(self) -> tuple[int, ...]:
        """How many training items each ``fit`` of the schedule gets, in order.

        The lengths do not depend on the draws, so a generator of its own plans them:
        the run's generator is left where it was.
        """
        plans = self.phase_plans(np.random.default_rng(0))
        return tuple(len(chunk) for plan in plans for chunk in plan.chunks)

    def phases(self) -> list[Phase]:
        """The training phases, in order, with their data."""
        return [Phase(plan.task_id, [self.training_data(items) for items in plan.chunks],
                      self.validation_data(plan.valid_tasks) if plan.valid_tasks else None)
                for plan in self.phase_plans()]

    def evaluate(self, method: "Method") -> dict[str, list[list[float]]]:
        """Every metric on every task, one score per test item: one row of each metric's matrix.

        Probes (:meth:`probe_names`) add a row of one column each.
        """
        rows: dict[str, list[list[float]]] = {}
        probes = self.probe_names()
        with tqdm(total=self.nb_tasks_total + len(probes), desc="evaluation", unit="part", leave=False,
                  disable=not self.progress) as bar:
            for task in range(self.nb_tasks_total):
                task_id = task if self.task_labels_at_test else None
                with progress.within(_postfix(bar, f"task {task}")):
                    scores = self.score(method, task, task_id)
                for name, value in scores.items():
                    rows.setdefault(name, []).append(item_scores(value))
                bar.update()
            for name in probes:
                with progress.within(_postfix(bar, name)):
                    rows[name] = [item_scores(self.score_probe(method, name))]
                bar.update()
        return rows

    # -- the loop -----------------------------------------------------------------
    def apply(self, method: "Method", *, seed: int = 0, progress: bool = True, run: LoopObserver | None = None,
              observers: Sequence[LoopObserver] = ()) -> Results:
        """Run ``method`` on this setting and return its results.

        The loop writes nothing itself: it tells observers what happens
        (:mod:`sequoia.settings.events`), and a run directory is one of them.

        Args:
            method: any method that applies to this setting (``method.is_applicable(setting)``).
            seed: seeds every random generator, so the same seed repeats the run exactly.
            progress: show progress bars.
            run: the observer that persists the run, told first (:class:`sequoia.runs.Run`: checkpoints,
                metric logs, results files; a resumed ``Run`` continues after its last checkpoint).
                ``None``: nothing written.
            observers: more observers of the loop's events, told after ``run``, in order.

        Raises:
            NonFiniteLossError: a training loss was NaN or infinite (the run's last checkpoint stays).
            TrainingError: memory ran out during training.
        """
        if not method.is_applicable(self):
            raise NotApplicableError(method.why_not_applicable(type(self), self.qualified_name()))
        distributed.init_from_environment()
        if distributed.world_size() > 1 and not self.supports_several_processes:
            raise SequoiaError(f"{self.qualified_name()} runs in one process; launch it without torchrun")
        started_at = time.perf_counter()  # the run time counts loading the data and the model
        seed_everything(seed)
        # Settings draw their splits and orders from their own generator, so the data
        # of a run depends on the seed alone, not on what the method consumed.
        self.rng = np.random.default_rng(seed)
        self._progress = progress_enabled(progress)
        self.prepare()
        monitor = TrainingMonitor()
        method.attach_monitor(monitor)
        method.configure(self.view())
        protocols.require(method, self.test_protocol, self.qualified_name())
        phases = self.phases()
        told = Observers([run or LoopObserver(), PhaseBar(), *observers])
        context = LoopContext(self, method, LoopState(), monitor, len(phases), started_at)
        told.started(context)  # a resumed run restores its checkpoint here
        line = self.header()
        if line and self.progress and distributed.is_main():  # after every check: an error stays one line
            print(line, file=sys.stderr)
        try:
            self._loop(context, phases, told)
            results = self._results(context)
        except BaseException as error:
            told.failed(context, error)
            raise
        told.finished(context, results)
        return results

    def _results(self, context: LoopContext) -> Results:
        """The results, built once: the loop's rows, the method's numbers, then the domain's final outputs."""
        method, state = context.method, context.state
        items, matrices = row_matrices(state.rows)
        specs = check_specs(self.metric_specs(), type(self).__name__)
        primary = next(iter(specs.values()))
        primary_rows = matrices.pop(primary.name)
        trainable, extra = method.num_trainable_parameters(), dict(method.extra_metrics())
        final = self.final_outputs(method)
        return self.results_class(
            setting=self.qualified_name(),
            method=method.name,
            matrix=TransferMatrix(primary_rows, metric=primary.name, higher_is_better=primary.higher_is_better),
            specs={name: spec for name, spec in specs.items() if name in matrices or name == primary.name},
            online_performance=float(np.mean(state.online_items)) if state.online_items else None,
            trainable_parameters=trainable,
            extra=extra | final.extra,
            curves={"online": state.online_curve} if state.online_curve else {},
            matrices=matrices,
            items=items,
            online_items=state.online_items,
            samples=final.samples,
            runtime_s=context.elapsed(),
        )

    def _loop(self, context: LoopContext, phases: list[Phase], told: LoopObserver) -> None:
        """Row 0, then each phase not in the loop's state yet: train, evaluate."""
        method, state = context.method, context.state
        if not state.rows:
            self._evaluate_into(context, told)
        for index in range(state.next_phase, len(phases)):
            phase = phases[index]
            context.monitor.enter_phase(index + 1, phase.task_id)
            told.phase_started(context, index, phase.task_id)
            with out_of_memory_hint(context.monitor):
                if self.task_boundaries_signalled:
                    method.on_task_switch(phase.task_id)
                for chunk in phase.chunks:
                    if self.online_evaluation:
                        self._score_online(method, chunk, state)
                    method.fit(chunk, phase.valid)
                self._evaluate_into(context, told)
            told.phase_ended(context, index)

    def _score_online(self, method: "Method", chunk: Any, state: LoopState) -> None:
        scores = item_scores(self.online_score(method, chunk))
        state.online_items.extend(scores)
        state.online_curve.append(float(np.mean(scores)) if scores else 0.0)

    def _evaluate_into(self, context: LoopContext, told: LoopObserver) -> None:
        context.state.rows.append(self.evaluate(context.method))
        told.evaluated(context)


def row_matrices(rows: list[dict[str, list[list[float]]]]) -> tuple[dict[str, Any], dict[str, list[list[float]]]]:
    """The evaluation rows as, per metric, the per-item scores of each row and the transfer matrix of their means.

    Example:
        >>> items, matrices = row_matrices([{"accuracy": [[1.0, 0.0]]}, {"accuracy": [[1.0, 1.0]]}])
        >>> matrices
        {'accuracy': [[0.5], [1.0]]}
    """
    items = {name: [row[name] for row in rows] for name in rows[0]}
    means = [cell_means(row) for row in rows]
    return items, {name: [row[name] for row in means] for name in items}


def _postfix(bar: tqdm, part: str) -> Callable[[str], None]:
    """Show a part's own progress (items scored) after the evaluation bar's count of parts."""
    return lambda text: bar.set_postfix_str(f"{part}: {text}")


def item_scores(value: Any) -> list[float]:
    """A score hook's value as a list of per-item floats (a single number is one item).

    Example:
        >>> item_scores(0.5), item_scores(torch.tensor([1.0, 0.0])), item_scores(np.array([True, False]))
        ([0.5], [1.0, 0.0], [1.0, 0.0])
    """
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
    return np.asarray(value, dtype=float).reshape(-1).tolist()


TASK_IDENTIFICATION = MetricSpec("task_identification", low=0.0, high=1.0, label="task identification accuracy")
"""The share of test inputs whose task a method guessed right (:func:`task_identification`)."""


def task_identification(method: "Method", inputs: Any, task: int) -> dict[str, torch.Tensor]:
    """``{"task_identification": 1 per test input whose task the method guessed right}``, for methods
    that guess (:meth:`Method.identify_tasks`); ``{}`` for the others.

    The method sees only the inputs, as ``predict`` or ``logprobs`` does; the setting knows the task.
    """
    guesses = method.identify_tasks(inputs)
    if guesses is None:
        return {}
    return {"task_identification": (torch.as_tensor(guesses).flatten() == task).float()}


def progress_enabled(wanted: bool) -> bool:
    """Progress bars where asked for, on rank 0 only (one set of bars per run)."""
    return wanted and distributed.is_main()


@contextmanager
def out_of_memory_hint(monitor: TrainingMonitor) -> Iterator[None]:
    """Turn running out of GPU or CPU memory during a phase into a one-line error with a hint."""
    try:
        yield
    except (torch.cuda.OutOfMemoryError, RuntimeError) as error:
        cpu_out_of_memory = "can't allocate memory" in str(error)  # torch's CPU allocator says so
        if not (isinstance(error, torch.cuda.OutOfMemoryError) or cpu_out_of_memory):
            raise
        raise TrainingError(
            f"out of memory at {monitor.where()}: lower --learner.batch_size, or keep it and raise "
            "--learner.gradient_accumulation (same step, less memory)"
        ) from error
