"""The SL learner: an MLP classifier trained with cross-entropy."""

from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from torch import nn
from tqdm.auto import tqdm

from sequoia.batching import Batch
from sequoia.learners.base import Learner
from sequoia.registry import register_learner
from sequoia.seeding import derived_generator
from sequoia.settings.sl import SLSetting, SupervisedData


@register_learner
@dataclass
class Classifier(Learner):
    """A multi-layer perceptron over flattened images, trained by minibatch SGD or Adam.

    Where the task id is given at test time, predictions are restricted to the
    classes seen with that task id during training (a multi-head classifier with a
    shared body), the usual task-incremental protocol.

    Example:
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> from sequoia.methods.naive import Naive
        >>> method = Naive().use_learner(Classifier(epochs=1, hidden_size=32))
        >>> IncrementalSLSetting(nb_tasks=2).apply(method, progress=False).matrix.nb_tasks
        2
    """

    name: ClassVar[str] = "classifier"
    domain: ClassVar[type] = SLSetting
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("task_classes", "_shuffle", "_last")

    hidden_size: Annotated[int, Field(gt=0)] = 128
    """Width of the hidden layers."""
    hidden_layers: Annotated[int, Field(ge=0)] = 1
    """Number of hidden layers."""
    epochs: Annotated[int, Field(gt=0)] = 10
    """Passes over each `fit` call's data."""
    batch_size: Annotated[int, Field(gt=0)] = 32
    """Minibatch size."""
    lr: Annotated[float, Field(gt=0)] = 1e-3
    """Learning rate."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """Optimizer; its state carries over from task to task."""

    def configure(self, setting: SLSetting) -> None:
        inputs = 1
        for size in setting.input_shape:
            inputs *= size
        layers: list[nn.Module] = [nn.Flatten()]
        width = inputs
        for _ in range(self.hidden_layers):
            layers += [nn.Linear(width, self.hidden_size), nn.ReLU()]
            width = self.hidden_size
        layers.append(nn.Linear(width, setting.num_classes))
        self.model = nn.Sequential(*layers)
        optimizer = torch.optim.Adam if self.optimizer == "adam" else torch.optim.SGD
        self.torch_optimizer = optimizer(self.model.parameters(), lr=self.lr)
        self.num_classes = setting.num_classes
        self.task_classes: dict[int, torch.Tensor] = {}
        self.progress = setting.progress
        self._shuffle = derived_generator()
        self._last: SupervisedData | None = None

    def fit(self, train: SupervisedData, valid: SupervisedData | None) -> None:
        self._remember_task_classes(train)
        self._last = train
        self.model.train()
        for _ in tqdm(range(self.epochs), desc="epochs", leave=False, disable=not self.progress):
            order = torch.randperm(len(train), generator=self._shuffle)
            for start in range(0, len(train), self.batch_size):
                rows = order[start : start + self.batch_size]
                self.optimize({"x": train.x[rows], "y": train.y[rows]})
        self.end_fit()

    def loss(self, batch: Batch) -> torch.Tensor:
        return nn.functional.cross_entropy(self.model(batch["x"]), batch["y"])

    def experience(self) -> Batch:
        assert self._last is not None, "fit() first"
        return self._last.as_batch()

    @torch.no_grad()
    def predict(self, x: torch.Tensor, task_id: int | None) -> torch.Tensor:
        """Most likely labels, restricted to ``task_id``'s classes when it is given and known."""
        self.model.eval()
        logits = torch.cat([self.model(part) for part in x.split(4096)])
        if task_id is not None and task_id in self.task_classes:
            allowed = torch.full((self.num_classes,), float("-inf"))
            allowed[self.task_classes[task_id]] = 0.0
            logits = logits + allowed
        return logits.argmax(dim=-1)

    def _remember_task_classes(self, train: SupervisedData) -> None:
        if train.task_ids is None:
            return
        for task in train.task_ids.unique().tolist():
            seen = train.y[train.task_ids == task].unique()
            known = self.task_classes.get(task, seen)
            self.task_classes[task] = torch.cat([known, seen]).unique()
