"""The root of the setting tree and the loop every setting shares."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass as plain_dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from pydantic.dataclasses import dataclass
from tqdm.auto import tqdm

from sequoia import distributed
from sequoia.errors import NotApplicableError, SequoiaError, TrainingError
from sequoia.results import Results, TransferMatrix
from sequoia.runs import faults
from sequoia.runs.monitor import TrainingMonitor
from sequoia.runs.run import LoopState, Run
from sequoia.runs.state import capture, restore
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

    # -- the loop -----------------------------------------------------------------
    def apply(self, method: "Method", *, seed: int = 0, progress: bool = True, run: Run | None = None) -> Results:
        """Run ``method`` on this setting and return its results.

        Args:
            method: any method whose ``target_setting`` this setting is an instance of.
            seed: seeds every random generator, so the same seed repeats the run exactly.
            progress: show progress bars.
            run: where checkpoints, metric logs and results go (see :class:`sequoia.runs.Run`);
                a resumed ``Run`` continues after its last checkpoint. ``None``: nothing written.

        Raises:
            NonFiniteLossError: a training loss was NaN or infinite (the run's last checkpoint stays).
            TrainingError: memory ran out during training.
        """
        if not method.is_applicable(self):
            raise NotApplicableError(
                f"method {method.name!r} targets {method.target_setting.__name__} "
                f"and does not apply to {self.qualified_name()}"
            )
        distributed.init_from_environment()
        if distributed.world_size() > 1 and not self.supports_several_processes:
            raise SequoiaError(f"{self.qualified_name()} runs in one process; launch it without torchrun")
        run = run or Run()
        seed_everything(seed)
        # Settings draw their splits and orders from their own generator, so the data
        # of a run depends on the seed alone, not on what the method consumed.
        self.rng = np.random.default_rng(seed)
        self.progress = progress_enabled(progress)
        self.prepare()
        method.attach_monitor(run.monitor)
        method.configure(self)
        phases = list(self.phases())
        loop = run.open(self, method)
        try:
            self._loop(method, phases, loop, run)
        except TrainingError as error:
            run.close()
            raise type(error)(f"{error}{run.recovery_hint()}") from error
        except BaseException:
            run.close()
            raise
        results = Results(
            setting=self.qualified_name(),
            method=method.name,
            matrix=TransferMatrix(loop.rows, metric=self.metric_name),
            online_performance=loop.online_total / loop.online_count if loop.online_count else None,
            trainable_parameters=method.num_trainable_parameters(),
            curves={"online": loop.online_curve} if loop.online_curve else {},
        )
        self.finish(method, results)
        results.runtime_s = run.elapsed(loop)
        run.finish(results)
        return results

    def _loop(self, method: "Method", phases: list[Phase], loop: LoopState, run: Run) -> None:
        """Row 0, then each phase not in ``loop`` yet: train, evaluate, checkpoint."""
        if not loop.rows:
            self._evaluate_into(method, loop, run)
        bar = tqdm(total=len(phases), initial=loop.next_phase, desc=f"{self.qualified_name()} / {method.name}",
                   unit="task", disable=not self.progress)
        for index in range(loop.next_phase, len(phases)):
            phase = phases[index]
            run.monitor.enter_phase(index + 1, phase.task_id)
            with out_of_memory_hint(run.monitor):
                if self.task_boundaries_signalled:
                    method.on_task_switch(phase.task_id)
                for chunk in phase.chunks:
                    if self.online_evaluation:
                        total, count = self.online_score(method, chunk)
                        loop.online_total, loop.online_count = loop.online_total + total, loop.online_count + count
                        loop.online_curve.append(total / max(count, 1))
                    method.fit(chunk, phase.valid)
                self._evaluate_into(method, loop, run)
            bar.update()
            bar.set_postfix({self.metric_name: f"{sum(loop.rows[-1]) / len(loop.rows[-1]):.3f}"})
        bar.close()

    def _evaluate_into(self, method: "Method", loop: LoopState, run: Run) -> None:
        loop.rows.append(self.evaluate(method))
        faults.at("evaluate", run.monitor.phase)
        run.log_evaluation(loop.rows[-1], self.metric_name)
        run.save_checkpoint(self, method, loop)


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
