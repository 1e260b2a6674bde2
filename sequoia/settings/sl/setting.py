"""The SL domain root: tasks built from an image-classification dataset, and their evaluation."""

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia import distributed
from sequoia.errors import SequoiaError
from sequoia.metric_spec import MetricSpec
from sequoia.settings.base import TASK_IDENTIFICATION, Setting, task_identification
from sequoia.settings.schedule import Items
from sequoia.settings.sl.data import SupervisedData, load_images
from sequoia.settings.sl.protocol import Classifies
from sequoia.settings.view import SettingView


@dataclasses.dataclass(frozen=True)
class SLView(SettingView):
    """What a method may know on an SL setting.

    Attributes:
        input_shape: the shape of one image.
        num_classes: the size of the label space (labels are ``0 .. num_classes - 1``).
        task_classes: each task's classes, where the task id is given at test (the heads
            of a multi-head classifier); ``None`` elsewhere.
    """

    input_shape: tuple[int, ...] = ()
    num_classes: int = 0
    task_classes: tuple[tuple[int, ...], ...] | None = None


@dataclasses.dataclass
class PreparedImages:
    """What :meth:`SLSetting.prepare` loads (not saved in checkpoints: a resumed run loads it again).

    Attributes:
        num_classes: the number of classes of the dataset.
        input_shape: the shape of one image.
        task_classes: each task's classes.
        tasks: per task, its training images and labels, then its evaluation images and labels.
        splits: per task, its training part and its validation part (``None`` without one).
        train: every task's training part end to end; items index it through ``offsets``.
        offsets: where each task's training part starts in ``train``.
    """

    num_classes: int
    input_shape: tuple[int, ...]
    task_classes: list[list[int]]
    tasks: list[Any]
    splits: list[tuple[SupervisedData, SupervisedData | None]]
    train: SupervisedData
    offsets: np.ndarray


@dataclass
class SLSetting(Setting):
    """Continual supervised learning on an image-classification dataset.

    Tasks are disjoint groups of classes (class splits, in sorted class order), or,
    where the level shares one label space (``domain_incremental``), the whole
    dataset under a different fixed pixel permutation per task.

    Example:
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> setting = IncrementalSLSetting(nb_tasks=5)   # digits: 5 tasks of 2 classes
        >>> setting.qualified_name()
        'sl.incremental'
    """

    domain: ClassVar[str] = "sl"
    test_protocol: ClassVar[type] = Classifies
    default_learner: ClassVar[str] = "classifier"
    shared_label_space: ClassVar[bool] = False

    dataset: str = "digits"
    """`digits` (scikit-learn's bundled 8x8 digits), a Hugging Face hub name, or a local path."""
    nb_tasks: Annotated[int, Field(gt=0, le=100_000)] = 5
    """Number of tasks; class splits divide the classes as evenly as possible."""
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.25
    """Share of each class held out for testing when the dataset has no test split (and, with
    `evaluate_on: validation`, for validation)."""
    valid_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Share of each task's training data passed to `fit` as validation data."""
    samples_per_class: Annotated[int, Field(ge=0, le=1_000_000_000)] = 0
    """Keep at most this many training samples per class (0: all); for quick experiments."""

    def sequence_length(self) -> int:
        return self.nb_tasks

    # -- data ---------------------------------------------------------------------
    def prepare(self) -> None:
        images = load_images(self.dataset)
        x_train, y_train, x_test, y_test = self._train_test(images)
        classes = np.unique(y_train)
        if self.shared_label_space:
            tasks = self.kept_tasks(self._permuted_tasks(x_train, y_train, x_test, y_test))
            task_classes = [list(map(int, classes))] * len(tasks)
        else:
            if self.nb_tasks > len(classes):
                raise SequoiaError(f"nb_tasks={self.nb_tasks} exceeds the {len(classes)} classes of {self.dataset}")
            task_classes = self.kept_tasks([list(map(int, c)) for c in np.array_split(classes, self.nb_tasks)])
            tasks = [(self._select(x_train, y_train, cls), self._select(x_test, y_test, cls)) for cls in task_classes]
        splits = [self._split_valid(task, x, y) for task, ((x, y), _) in enumerate(tasks)]
        self.prepared = PreparedImages(
            num_classes=int(classes.max()) + 1, input_shape=tuple(x_train.shape[1:]), task_classes=task_classes,
            tasks=tasks, splits=splits, train=_concat([train for train, _ in splits]),
            offsets=np.cumsum([0] + [len(train) for train, _ in splits[:-1]]))

    @property
    def task_classes(self) -> list[list[int]]:
        """Each task's classes (once prepared)."""
        return self.prepared.task_classes

    def _train_test(self, images) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Training and evaluation images; with ``evaluate_on: validation``, the evaluation images are held out
        of the training images (the test images are set aside and never scored)."""
        x, y = images.x_train, images.y_train
        if images.x_test is not None:
            x_test, y_test = images.x_test, images.y_test
        else:
            x, y, x_test, y_test = self._hold_out(x, y)
        if self.evaluate_on == "validation":
            x, y, x_test, y_test = self._hold_out(x, y)
        if self.samples_per_class:
            keep = np.concatenate([
                self.rng.permutation(np.flatnonzero(y == label))[: self.samples_per_class] for label in np.unique(y)
            ])
            keep.sort()
            x, y = x[keep], y[keep]
        return x, y, x_test, y_test

    def _hold_out(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``test_fraction`` of each class's images held out: (kept x, kept y, held-out x, held-out y)."""
        held_out_mask = np.zeros(len(y), dtype=bool)
        for label in np.unique(y):
            members = self.rng.permutation(np.flatnonzero(y == label))
            held_out = max(1, round(len(members) * self.test_fraction))
            if held_out >= len(members):
                raise SequoiaError(f"--setting.test_fraction {self.test_fraction} holds out all {len(members)} "
                                   f"images of class {label} of {self.dataset}, leaving none to train on")
            held_out_mask[members[:held_out]] = True
        return x[~held_out_mask], y[~held_out_mask], x[held_out_mask], y[held_out_mask]

    @staticmethod
    def _select(x: np.ndarray, y: np.ndarray, classes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        mask = np.isin(y, classes)
        return torch.from_numpy(x[mask]).float(), torch.from_numpy(y[mask]).long()

    def _permuted_tasks(self, x_train, y_train, x_test, y_test) -> list:
        tasks = []
        for task in range(self.nb_tasks):
            transform = self.input_transform(task, x_train.shape[1:])
            tasks.append(((torch.from_numpy(transform(x_train)).float(), torch.from_numpy(y_train).long()),
                          (torch.from_numpy(transform(x_test)).float(), torch.from_numpy(y_test).long())))
        return tasks

    def input_transform(self, task: int, image_shape: tuple[int, ...]) -> Callable[[np.ndarray], np.ndarray]:
        """How task ``task`` changes a batch of images, where tasks share one label space.

        The default is a fixed random pixel permutation per task, with task 0 left as
        it is (as in permuted MNIST). Override it for other domain shifts (rotations,
        noise, colour changes); see ``examples/new_assumption_setting.py``.
        """
        pixels = int(np.prod(image_shape))
        order = np.arange(pixels) if task == 0 else self.rng.permutation(pixels)
        return lambda x: x.reshape(len(x), -1)[:, order].reshape(x.shape)

    def _split_valid(self, task: int, x: torch.Tensor, y: torch.Tensor):
        order = torch.from_numpy(self.rng.permutation(len(y)))
        n_valid = int(len(y) * self.valid_fraction)
        task_ids = torch.full((len(y),), task)

        def part(index: torch.Tensor) -> SupervisedData:
            return SupervisedData(x[index], y[index], task_ids[index])

        return part(order[n_valid:]), (part(order[:n_valid]) if n_valid else None)

    # -- the loop's hooks ---------------------------------------------------------
    @property
    def nb_tasks_total(self) -> int:
        return len(self.kept_tasks(range(self.nb_tasks)))  # known before prepare: views of a setting use it

    def view(self) -> SLView:
        # Where the task id is given at test, its label space is part of the protocol (multi-head).
        prepared = self.prepared
        task_classes = tuple(map(tuple, prepared.task_classes)) if self.task_labels_at_test else None
        return SLView.of(self, input_shape=prepared.input_shape, num_classes=prepared.num_classes,
                         task_classes=task_classes)

    def train_size(self, task: int) -> int:
        return len(self.prepared.splits[task][0])

    def training_data(self, items: Items) -> SupervisedData:
        train = self.prepared.train  # every task's training rows end to end: items index them through the offsets
        rows = torch.from_numpy(self.prepared.offsets[items.tasks] + items.indices)
        return SupervisedData(train.x[rows], train.y[rows], train.task_ids[rows] if items.with_task_ids else None)

    def validation_data(self, tasks: tuple[int, ...]) -> SupervisedData | None:
        splits = self.prepared.splits
        parts = [splits[task][1] for task in tasks if splits[task][1] is not None]
        return _concat(parts) if parts else None

    def metric_specs(self) -> list[MetricSpec]:
        """Test accuracy (primary); ``task_identification`` for methods that guess each input's task."""
        return [*super().metric_specs(), TASK_IDENTIFICATION]

    def score(self, method, task: int, task_id: int | None) -> dict[str, torch.Tensor]:
        _, (x, y) = self.prepared.tasks[task]
        predicted = distributed.map_shards(lambda part: method.predict(part, task_id), x)
        scores = {"accuracy": (torch.as_tensor(predicted) == y).float()}
        return scores | task_identification(method, x, task)

    def online_score(self, method, chunk: SupervisedData) -> torch.Tensor:
        predicted = distributed.map_shards(lambda part: method.predict(part, None), chunk.x)
        return (torch.as_tensor(predicted) == chunk.y).float()


def _concat(parts: list[SupervisedData]) -> SupervisedData:
    with_ids = all(p.task_ids is not None for p in parts)
    return SupervisedData(
        torch.cat([p.x for p in parts]),
        torch.cat([p.y for p in parts]),
        torch.cat([p.task_ids for p in parts]) if with_ids else None,
    )

