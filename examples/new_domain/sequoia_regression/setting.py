"""The regression setting: the domain's hooks (data, scores, view) and its metrics, with their directions.

Example:
    >>> from sequoia_regression.levels import IncrementalRegressionSetting
    >>> setting = IncrementalRegressionSetting(nb_tasks=2)
    >>> setting.qualified_name(), setting.metric_name
    ('reg.incremental', 'mse')
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass as plain_dataclass
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.metric_spec import TRANSFER_SUMMARIES, MetricSpec
from sequoia.settings.base import Setting
from sequoia.settings.schedule import Items
from sequoia.settings.view import SettingView
from sequoia_regression.protocol import Regresses


@plain_dataclass
class RegressionData:
    """Inputs ``x`` (rows of ``input_size`` values), targets ``y``, and each row's task where it may be seen."""

    x: torch.Tensor
    y: torch.Tensor
    task_ids: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    def as_batch(self) -> dict[str, torch.Tensor]:
        return {"x": self.x, "y": self.y}


@plain_dataclass
class RegressionTasks:
    """What ``prepare`` draws (the setting's fields hold options only): each task's phase, its training inputs
    and their noise, and its test inputs and targets."""

    phases: np.ndarray
    x_train: list[np.ndarray] = dataclasses.field(default_factory=list)
    noise: list[np.ndarray] = dataclasses.field(default_factory=list)
    x_test: list[torch.Tensor] = dataclasses.field(default_factory=list)
    y_test: list[torch.Tensor] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class RegressionView(SettingView):
    """What a method may know: the size of an input."""

    input_size: int = 1


@dataclass
class RegressionSetting(Setting):
    """Task ``t`` is ``y = sin(x + t * shift) + noise`` on ``x`` uniform in ``[-pi, pi]``.

    The primary metric is the mean squared error on each task's test inputs (the noise-free
    curve): lower is better, so forgetting is how far a task's error rose after its training.
    """

    domain: ClassVar[str] = "reg"
    default_learner: ClassVar[str] = "regressor"
    test_protocol: ClassVar[type] = Regresses

    nb_tasks: Annotated[int, Field(gt=0, le=100)] = 3
    """Number of tasks (functions)."""
    shift: Annotated[float, Field(ge=0, le=10)] = 1.5
    """How far each task moves the curve along x (radians): 0 makes every task the same."""
    train_inputs: Annotated[int, Field(gt=0, le=1_000_000)] = 512
    """Training inputs per task."""
    test_inputs: Annotated[int, Field(gt=1, le=1_000_000)] = 128
    """Test inputs per task (and, with `evaluate_on validation`, training inputs held out per task)."""
    noise: Annotated[float, Field(ge=0, le=10)] = 0.1
    """Standard deviation of the noise on the training targets."""

    def metric_specs(self) -> list[MetricSpec]:
        return [MetricSpec("mse", higher_is_better=False, low=0.0, summaries=TRANSFER_SUMMARIES,
                           label="mean squared error"),
                MetricSpec("mae", higher_is_better=False, low=0.0, label="mean absolute error")]

    def sequence_length(self) -> int:
        return self.nb_tasks

    def prepare(self) -> None:
        tasks = RegressionTasks(np.asarray(self.kept_tasks(range(self.nb_tasks)), dtype=float) * self.shift)
        held_out = self.test_inputs if self.evaluate_on == "validation" else 0
        for phase in tasks.phases:
            x = self.rng.uniform(-math.pi, math.pi, size=self.train_inputs + held_out)
            noise = self.rng.normal(0.0, self.noise, size=len(x))
            x_test = self.rng.uniform(-math.pi, math.pi, size=self.test_inputs)
            if held_out:  # score items held out of the training draw; the test draw is never scored
                x, noise, x_test = x[:-held_out], noise[:-held_out], x[-held_out:]
            tasks.x_train.append(x)
            tasks.noise.append(noise)
            tasks.x_test.append(torch.tensor(x_test, dtype=torch.float32).unsqueeze(1))
            tasks.y_test.append(torch.tensor(np.sin(x_test + phase), dtype=torch.float32))
        self.prepared = tasks

    @property
    def nb_tasks_total(self) -> int:
        return len(self.prepared.phases)

    def train_size(self, task: int) -> int:
        return len(self.prepared.x_train[task])

    def training_data(self, items: Items) -> RegressionData:
        prepared = self.prepared
        tasks, indices = np.asarray(items.tasks), np.asarray(items.indices)
        x = np.array([prepared.x_train[t][i] for t, i in zip(tasks, indices)])
        noise = np.array([prepared.noise[t][i] for t, i in zip(tasks, indices)])
        # Where tasks blend (the continual level), each item's curve moves linearly from its task's phase to the
        # next one's with its place on the task axis, and stays at the last task's phase past it (as RL's physics).
        phases = prepared.phases
        phase = phases[tasks] if items.positions is None else \
            np.interp(np.asarray(items.positions), np.arange(len(phases)), phases)
        y = np.sin(x + phase) + noise
        return RegressionData(torch.tensor(x, dtype=torch.float32).unsqueeze(1), torch.tensor(y, dtype=torch.float32),
                              torch.as_tensor(tasks) if items.with_task_ids else None)

    def score(self, method: Any, task: int, task_id: int | None) -> dict[str, torch.Tensor]:
        prepared = self.prepared
        error = torch.as_tensor(method.regress(prepared.x_test[task], task_id)).reshape(-1) - prepared.y_test[task]
        return {"mse": error**2, "mae": error.abs()}

    def online_score(self, method: Any, chunk: RegressionData) -> torch.Tensor:
        return (torch.as_tensor(method.regress(chunk.x, None)).reshape(-1) - chunk.y) ** 2

    def view(self) -> RegressionView:
        return RegressionView.of(self, input_size=1)
