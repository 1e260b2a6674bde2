"""The regression learner: an MLP trained on squared error, through sequoia's :class:`Learner` interface.

Every gradient step goes through ``self.optimize(batch)``, so sequoia's plugins (replay,
EWC, SI, A-GEM, LwF) change it without knowing it is regression. Where the level gives
task ids at test time, the task's one-hot code is an input too (a task-conditioned
regressor); elsewhere those inputs are zero.

Example:
    >>> from sequoia.methods.naive import Naive
    >>> from sequoia_regression.levels import IncrementalRegressionSetting
    >>> method = Naive().use_learner(Regressor(epochs=5))
    >>> results = IncrementalRegressionSetting(nb_tasks=2, train_inputs=64, test_inputs=16).apply(method, progress=False)
    >>> results.matrix.metric, results.matrix.values.shape
    ('mse', (3, 2))
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from torch import nn

from sequoia.learners.base import FitRecord, Learner
from sequoia.registry import register_learner
from sequoia.seeding import derived_generator
from sequoia_regression.protocol import Regresses
from sequoia_regression.setting import RegressionData, RegressionSetting, RegressionView


@register_learner
@dataclass
class Regressor(Learner):
    """A multi-layer perceptron from an input (and, where given at test, the task's one-hot code) to a value."""

    name: ClassVar[str] = "regressor"
    domain: ClassVar[type] = RegressionSetting
    test_protocols: ClassVar[tuple[type, ...]] = (Regresses,)
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("record",)

    hidden_size: Annotated[int, Field(gt=0, le=4096)] = 64
    """Width of the two hidden layers."""
    epochs: Annotated[int, Field(gt=0, le=10_000)] = 50
    """Passes over each `fit` call's data."""
    batch_size: Annotated[int, Field(gt=0, le=1_000_000)] = 32
    """Minibatch size."""
    lr: Annotated[float, Field(gt=0, le=10)] = 3e-3
    """Adam's learning rate."""

    def configure(self, view: RegressionView) -> None:
        self.task_inputs = view.nb_tasks if view.task_labels_at_test else 0
        width = view.input_size + self.task_inputs
        self.model = nn.Sequential(nn.Linear(width, self.hidden_size), nn.Tanh(),
                                   nn.Linear(self.hidden_size, self.hidden_size), nn.Tanh(),
                                   nn.Linear(self.hidden_size, 1))
        self.torch_optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.record = FitRecord(shuffle=derived_generator())  # batch order and last data: a checkpoint keeps it

    def _inputs(self, x: torch.Tensor, task_ids: torch.Tensor | None) -> torch.Tensor:
        """``x``, with the tasks' one-hot codes where this regressor reads them (zeros where unknown)."""
        if not self.task_inputs:
            return x
        codes = torch.zeros(len(x), self.task_inputs)
        if task_ids is not None:
            codes[torch.arange(len(x)), task_ids.long()] = 1.0
        return torch.cat([x, codes], dim=1)

    def _batch(self, data: RegressionData, rows: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        task_ids = None if data.task_ids is None else data.task_ids[rows]
        return {"x": self._inputs(data.x[rows], task_ids), "y": data.y[rows]}

    def train_phase(self, train: RegressionData, valid: Any) -> None:
        self.record.last = train
        self.model.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(train), generator=self.record.shuffle)
            for start in range(0, len(train), self.batch_size):
                self.optimize(self._batch(train, order[start : start + self.batch_size]))

    def outputs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(batch["x"]).squeeze(-1)

    def loss(self, batch: dict[str, torch.Tensor], outputs: torch.Tensor | None = None) -> torch.Tensor:
        predicted = self.outputs(batch) if outputs is None else outputs
        return nn.functional.mse_loss(predicted, batch["y"])

    def distillation(self, outputs: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
        """LwF for regression: the squared distance to the earlier model's predictions (no temperature applies)."""
        return nn.functional.mse_loss(outputs, teacher)

    def experience(self) -> dict[str, torch.Tensor]:
        assert self.record.last is not None, "fit() first"
        return self._batch(self.record.last, slice(None))

    @torch.no_grad()
    def regress(self, x: torch.Tensor, task_id: int | None) -> torch.Tensor:
        self.model.eval()
        task_ids = None if task_id is None else torch.full((len(x),), task_id)
        return self.model(self._inputs(x, task_ids)).squeeze(-1)
