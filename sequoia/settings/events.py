"""What a setting's loop tells those who watch it, and where the loop stands.

:meth:`Setting.apply <sequoia.settings.base.Setting.apply>` trains and evaluates; it
writes nothing. It reports each step of its loop to observers (:class:`LoopObserver`),
in the order they were given: the loop starts, a phase starts, an evaluation row is
ready, a phase ends, the results are built (or the loop failed). A runner's observer
persists what it is told (:class:`sequoia.runs.Run`: the run directory, checkpoints,
metric logs, results files); the progress bar over the phases is another
(:class:`PhaseBar`), and research code adds its own. Training steps are reported
through the :class:`~sequoia.runs.monitor.TrainingMonitor` all observers share: a
learner logs its losses there, and the monitor's loggers write them.

An observer may continue a loop that stopped: at :meth:`LoopObserver.started` a resumed
run restores its checkpoint into the setting and the method and puts the saved
:class:`LoopState` in the context, and the loop goes on from its next phase.

Example:
    >>> from sequoia.settings.sl import IncrementalSLSetting
    >>> from sequoia.methods.naive import Naive
    >>> from sequoia.learners import Classifier
    >>> class CountEvaluations(LoopObserver):
    ...     count = 0
    ...     def evaluated(self, context):
    ...         self.count += 1
    >>> counter = CountEvaluations()
    >>> method = Naive().use_learner(Classifier(epochs=1))
    >>> _ = IncrementalSLSetting(nb_tasks=2).apply(method, progress=False, observers=[counter])
    >>> counter.count  # before training, then after each of the two tasks
    3
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from tqdm.auto import tqdm

from sequoia.results import cell_means
from sequoia.runs.monitor import TrainingMonitor


@dataclasses.dataclass
class LoopState:
    """How far the setting's loop got: what a checkpoint needs beyond the method's state."""

    rows: list[dict[str, list[list[float]]]] = dataclasses.field(default_factory=list)
    """Every evaluation so far (0: before training): each metric's scores, per task, per test item."""
    online_items: list[float] = dataclasses.field(default_factory=list)
    """The online evaluation's score of each item, in order."""
    online_curve: list[float] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0
    """Run time before this process started (earlier attempts of a resumed run)."""

    @property
    def next_phase(self) -> int:
        """The index (from 0) of the first phase not trained yet."""
        return max(len(self.rows) - 1, 0)


@dataclasses.dataclass
class LoopContext:
    """What every event carries: the setting, the method, where the loop stands, and the shared monitor.

    Attributes:
        setting: the setting whose loop runs.
        method: the method it trains and evaluates.
        state: the loop's rows so far (an observer resuming a run replaces it at ``started``).
        monitor: the training monitor the method logs its steps to.
        phases: how many phases the loop has in all.
    """

    setting: Any
    method: Any
    state: LoopState
    monitor: TrainingMonitor
    phases: int
    started_at: float = dataclasses.field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Seconds this run has trained, over all its attempts."""
        return self.state.elapsed_s + time.perf_counter() - self.started_at


class LoopObserver:
    """The events of a setting's loop; each hook here does nothing (override those you need)."""

    def started(self, context: LoopContext) -> None:
        """The setting is prepared and the method configured; nothing trained or evaluated yet in this process."""

    def phase_started(self, context: LoopContext, index: int, task_id: int | None) -> None:
        """Phase ``index`` (from 0) starts training on task ``task_id`` (``None``: tasks mixed)."""

    def evaluated(self, context: LoopContext) -> None:
        """A new evaluation row is ready: ``context.state.rows[-1]`` (row 0 before training)."""

    def phase_ended(self, context: LoopContext, index: int) -> None:
        """Phase ``index`` has trained and been evaluated."""

    def finished(self, context: LoopContext, results: Any) -> None:
        """The results are built (once; observers read them and do not change them)."""

    def failed(self, context: LoopContext, error: BaseException) -> None:
        """The loop stops on ``error`` (which the setting raises again after every observer heard it)."""


class Observers(LoopObserver):
    """Several observers as one: each event goes to each, in order."""

    def __init__(self, observers: list[LoopObserver]) -> None:
        self.observers = list(observers)

    def started(self, context: LoopContext) -> None:
        for observer in self.observers:
            observer.started(context)

    def phase_started(self, context: LoopContext, index: int, task_id: int | None) -> None:
        for observer in self.observers:
            observer.phase_started(context, index, task_id)

    def evaluated(self, context: LoopContext) -> None:
        for observer in self.observers:
            observer.evaluated(context)

    def phase_ended(self, context: LoopContext, index: int) -> None:
        for observer in self.observers:
            observer.phase_ended(context, index)

    def finished(self, context: LoopContext, results: Any) -> None:
        for observer in self.observers:
            observer.finished(context, results)

    def failed(self, context: LoopContext, error: BaseException) -> None:
        for observer in self.observers:
            observer.failed(context, error)


class PhaseBar(LoopObserver):
    """A progress bar over the phases, showing the primary metric's mean after each."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def evaluated(self, context: LoopContext) -> None:
        self._open(context)  # after row 0, as the evaluation's own bar has closed

    def phase_started(self, context: LoopContext, index: int, task_id: int | None) -> None:
        self._open(context)  # a resumed loop has no row 0 to evaluate

    def _open(self, context: LoopContext) -> None:
        if self.bar is None:
            setting = context.setting
            self.bar = tqdm(total=context.phases, initial=context.state.next_phase, unit="task",
                            desc=f"{setting.qualified_name()} / {context.method.name}", disable=not setting.progress)

    def phase_ended(self, context: LoopContext, index: int) -> None:
        name = context.setting.metric_name
        scores = cell_means(context.state.rows[-1])[name]
        self.bar.update()
        self.bar.set_postfix({name: f"{sum(scores) / len(scores):.3f}"})

    def finished(self, context: LoopContext, results: Any) -> None:
        self._close()

    def failed(self, context: LoopContext, error: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
