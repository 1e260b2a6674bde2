"""The SL learner: an MLP classifier trained with cross-entropy."""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass as plain_dataclass
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from torch import nn
from tqdm.auto import tqdm

from sequoia import progress
from sequoia.batching import Batch
from sequoia.learners.base import FitRecord, Learner
from sequoia.registry import register_learner
from sequoia.seeding import derived_generator
from sequoia.settings.sl import SLSetting, SupervisedData
from sequoia.settings.sl.protocol import Classifies
from sequoia.settings.sl.setting import SLView


@plain_dataclass
class Heads:
    """Which classes the classifier knows, per task and trained: what it builds in ``configure`` and saves.

    Attributes:
        num_classes: the width of the output layer.
        multi_head: whether task ids are given at test (predictions then stay within the task's classes).
        task_classes: each task's classes, where the setting or training revealed them.
        trained_classes: the classes trained so far.
    """

    num_classes: int
    multi_head: bool
    task_classes: dict[int, torch.Tensor]
    trained_classes: torch.Tensor


@register_learner
@dataclass
class Classifier(Learner):
    """A multi-layer perceptron over flattened images, trained by minibatch SGD or Adam.

    Where the task id is given at test time, predictions are restricted to that
    task's classes, which the setting gives where it gives task ids at test (a
    multi-head classifier with a shared body, the usual task-incremental protocol),
    trained or not: so the scores before a task's training are guesses among its own
    classes, and forward transfer is measured against them.

    Example:
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> from sequoia.methods.naive import Naive
        >>> method = Naive().use_learner(Classifier(epochs=1, hidden_size=32))
        >>> IncrementalSLSetting(nb_tasks=2).apply(method, progress=False).matrix.nb_tasks
        2
    """

    name: ClassVar[str] = "classifier"
    domain: ClassVar[type] = SLSetting
    test_protocols: ClassVar[tuple[type, ...]] = (Classifies,)
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("heads", "record")

    hidden_size: Annotated[int, Field(gt=0, le=65_536)] = 128
    """Width of the hidden layers."""
    hidden_layers: Annotated[int, Field(ge=0, le=1_000)] = 1
    """Number of hidden layers."""
    epochs: Annotated[int, Field(gt=0, le=100_000)] = 10
    """Passes over each `fit` call's data."""
    batch_size: Annotated[int, Field(gt=0, le=1_000_000)] = 32
    """Minibatch size."""
    lr: Annotated[float, Field(gt=0, le=10)] = 1e-3
    """Learning rate."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """Optimizer; its state carries over from task to task."""

    def configure(self, view: SLView) -> None:
        inputs = 1
        for size in view.input_shape:
            inputs *= size
        layers: list[nn.Module] = [nn.Flatten()]
        width = inputs
        for _ in range(self.hidden_layers):
            layers += [nn.Linear(width, self.hidden_size), nn.ReLU()]
            width = self.hidden_size
        layers.append(nn.Linear(width, view.num_classes))
        self.model = nn.Sequential(*layers)
        optimizer = torch.optim.Adam if self.optimizer == "adam" else torch.optim.SGD
        self.torch_optimizer = optimizer(self.model.parameters(), lr=self.lr)
        given = view.task_classes or ()
        self.heads = Heads(view.num_classes, multi_head=view.task_classes is not None,
                           task_classes={task: torch.tensor(c) for task, c in enumerate(given)},
                           trained_classes=torch.zeros(view.num_classes, dtype=torch.bool))
        self.progress = view.progress
        self.record = FitRecord(shuffle=derived_generator())

    @property
    def num_classes(self) -> int:
        return self.heads.num_classes

    @property
    def multi_head(self) -> bool:
        return self.heads.multi_head

    @property
    def task_classes(self) -> dict[int, torch.Tensor]:
        return self.heads.task_classes

    @property
    def trained_classes(self) -> torch.Tensor:
        return self.heads.trained_classes

    def train_phase(self, train: SupervisedData, valid: SupervisedData | None) -> None:
        with self.training_on(train):
            self.model.train()
            for _ in tqdm(range(self.epochs), desc="epochs", leave=False, disable=not self.progress):
                order = torch.randperm(len(train), generator=self.record.shuffle)
                for start in range(0, len(train), self.batch_size):
                    rows = order[start : start + self.batch_size]
                    self.optimize({"x": train.x[rows], "y": train.y[rows]})

    @contextlib.contextmanager
    def training_on(self, train: SupervisedData) -> Iterator[None]:
        """What the classifier records around training on ``train``, whoever runs the steps
        (its own loop, or an Avalanche strategy on its model): the task's classes where task
        ids are given, the rows (:meth:`experience`), and, once trained, its classes."""
        self._remember_task_classes(train)
        self.record.last = train
        yield
        self.trained_classes[train.y.unique()] = True

    def outputs(self, batch: Batch) -> torch.Tensor:
        """Logits over every class."""
        return self.model(batch["x"])

    def loss(self, batch: Batch, outputs: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.outputs(batch) if outputs is None else outputs
        return nn.functional.cross_entropy(logits, batch["y"])

    def snapshot(self) -> dict:
        """The weights, and the groups of classes the snapshot can speak for: one per trained head.

        Where the task id is given at test each task's classes form a head of their
        own; otherwise the single head holds every class trained so far.
        """
        trained = self.trained_classes.clone()
        if self.multi_head:
            groups = [classes for classes in self.task_classes.values() if bool(trained[classes].all())]
        else:
            groups = [trained.nonzero().flatten()] if trained.any() else []
        return {**super().snapshot(), "groups": groups}

    def teacher_outputs(self, snapshot: dict, batch: Batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The snapshot's logits, with the heads (groups of classes) it had trained."""
        return super().teacher_outputs(snapshot, batch), snapshot["groups"]

    def distillation(self, outputs: torch.Tensor, teacher: tuple[torch.Tensor, list[torch.Tensor]],
                     temperature: float) -> torch.Tensor:
        """KL from the teacher's softened class distribution to ours, summed over the teacher's heads.

        Only the classes the teacher had trained take part, each head on its own
        classes (Li & Hoiem's old-task outputs; Avalanche's ``LwF`` does the same), so
        learning new classes is not penalised.
        """
        logits, groups = teacher
        total = outputs.sum() * 0.0
        for classes in groups:
            student = nn.functional.log_softmax(outputs[:, classes] / temperature, dim=-1)
            target = nn.functional.softmax(logits[:, classes] / temperature, dim=-1)
            total = total + nn.functional.kl_div(student, target, reduction="batchmean")
        return total

    def experience(self) -> Batch:
        assert self.record.last is not None, "fit() first"
        return self.record.last.as_batch()

    @torch.no_grad()
    def predict(self, x: torch.Tensor, task_id: int | None) -> torch.Tensor:
        """Most likely labels, restricted to ``task_id``'s classes when it is given and known."""
        self.model.eval()
        logits = []
        for part in x.split(4096):
            logits.append(self.model(part))
            progress.items(sum(len(chunk) for chunk in logits), len(x), "images")
        logits = torch.cat(logits)
        if task_id is not None and task_id in self.task_classes:
            allowed = torch.full((self.num_classes,), float("-inf"))
            allowed[self.task_classes[task_id]] = 0.0
            logits = logits + allowed
        return logits.argmax(dim=-1)

    def _remember_task_classes(self, train: SupervisedData) -> None:
        """Task ids in training also tell which classes go with which task (where the setting did not say)."""
        if train.task_ids is None:
            return
        for task in train.task_ids.unique().tolist():
            seen = train.y[train.task_ids == task].unique()
            known = self.task_classes.get(task, seen)
            self.task_classes[task] = torch.cat([known, seen]).unique()
