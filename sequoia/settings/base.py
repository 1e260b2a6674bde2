"""The root of the setting tree and the loop every setting shares."""

import time
from collections.abc import Iterator
from dataclasses import dataclass as plain_dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic.dataclasses import dataclass
from tqdm.auto import tqdm

from sequoia.errors import NotApplicableError
from sequoia.results import Results, TransferMatrix
from sequoia.seeding import seed_everything
from sequoia.settings.assumptions import ContinualAssumption

if TYPE_CHECKING:
    from sequoia.methods.base import Method


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

    Subclasses add assumptions (a level mixin) and a domain (SL, RL, PA). The domain
    supplies data and scores through hooks (``prepare``, ``phases``, ``evaluate``,
    ``online_score``, ``finish``); this class owns the loop:

    1. evaluate the untrained method on every task's test set (row 0);
    2. for each phase: signal the boundary where the level does, train, and
       evaluate on every task (one row of the transfer matrix per phase).

    Example:
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> from sequoia.methods.naive import Naive
        >>> results = IncrementalSLSetting(nb_tasks=2).apply(Naive(), progress=False)
        >>> results.matrix.values.shape
        (3, 2)
    """

    domain: ClassVar[str] = ""
    metric_name: ClassVar[str] = "accuracy"
    progress: ClassVar[bool] = False
    """Whether to show progress bars; ``apply`` sets it per run."""

    @classmethod
    def qualified_name(cls) -> str:
        """``<domain>.<level>``, e.g. ``sl.incremental``."""
        return f"{cls.domain}.{cls.level}"

    # -- domain hooks -------------------------------------------------------------
    def prepare(self) -> None:
        """Load data or build environments; called once per run, after seeding."""

    @property
    def nb_tasks_total(self) -> int:
        """The number of tasks (columns of the transfer matrix)."""
        raise NotImplementedError

    def phases(self) -> Iterator[Phase]:
        """The training phases, in order."""
        raise NotImplementedError

    def evaluate(self, method: "Method") -> list[float]:
        """The method's test performance on every task (one matrix row)."""
        raise NotImplementedError

    def online_score(self, method: "Method", chunk: Any) -> tuple[float, int]:
        """Score the method on ``chunk`` before it trains on it: (sum of scores, count)."""
        raise NotImplementedError

    def finish(self, method: "Method", results: Results) -> None:
        """Add domain results (more metrics, samples) once training is over. Default: nothing."""

    # -- the loop -----------------------------------------------------------------
    def apply(self, method: "Method", *, seed: int = 0, progress: bool = True) -> Results:
        """Run ``method`` on this setting and return its results.

        Args:
            method: any method whose ``target_setting`` this setting is an instance of.
            seed: seeds every random generator, so the same seed repeats the run exactly.
            progress: show progress bars.
        """
        if not method.is_applicable(self):
            raise NotApplicableError(
                f"method {method.name!r} targets {method.target_setting.__name__} "
                f"and does not apply to {self.qualified_name()}"
            )
        start = time.perf_counter()
        seed_everything(seed)
        # Settings draw their splits and orders from their own generator, so the data
        # of a run depends on the seed alone, not on what the method consumed.
        self.rng = np.random.default_rng(seed)
        self.progress = progress
        self.prepare()
        method.configure(self)

        rows = [self.evaluate(method)]
        online_total, online_count, online_curve = 0.0, 0, []
        phases = list(self.phases())
        bar = tqdm(phases, desc=f"{self.qualified_name()} / {method.name}", unit="task",
                   disable=not progress)
        for phase in bar:
            if self.task_boundaries_signalled:
                method.on_task_switch(phase.task_id)
            for chunk in phase.chunks:
                if self.online_evaluation:
                    total, count = self.online_score(method, chunk)
                    online_total, online_count = online_total + total, online_count + count
                    online_curve.append(total / max(count, 1))
                method.fit(chunk, phase.valid)
            rows.append(self.evaluate(method))
            bar.set_postfix({self.metric_name: f"{sum(rows[-1]) / len(rows[-1]):.3f}"})

        results = Results(
            setting=self.qualified_name(),
            method=method.name,
            matrix=TransferMatrix(rows, metric=self.metric_name),
            online_performance=online_total / online_count if online_count else None,
            runtime_s=time.perf_counter() - start,
            trainable_parameters=method.num_trainable_parameters(),
            curves={"online": online_curve} if online_curve else {},
        )
        self.finish(method, results)
        results.runtime_s = time.perf_counter() - start
        return results
