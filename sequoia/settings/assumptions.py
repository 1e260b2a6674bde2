"""The assumption levels of the setting tree, shared by every domain.

Each level is a thin mixin: class-level flags, plus the options that act only at
that level. A concrete setting combines a level with a domain, for example
``IncrementalSLSetting(IncrementalAssumption, DiscreteTaskAgnosticSLSetting)``.
Because each level subclasses the one above it, ``isinstance`` answers "does this
setting make at least these assumptions?", which is what a method's
``target_setting`` asks.

| level                    | task shift | boundary signalled | task id, train | task id, test |
|--------------------------|------------|--------------------|----------------|---------------|
| continual                | smooth     | no                 | no             | no            |
| discrete_task_agnostic   | abrupt     | no                 | no             | no            |
| incremental              | abrupt     | yes                | yes            | no            |
| task_incremental         | abrupt     | yes                | yes            | yes           |
| multi_task               | shuffled   | n/a                | yes            | yes           |

Level options. The task-agnostic levels feed each task's stream to ``fit`` in
``chunks_per_task`` chunks, each scored before training on it; only ``continual``
blends neighbouring tasks, over ``drift_width`` tasks. These options are declared
on the level where they start to act and taken away (redeclared as class
constants) on the level where they stop, so a level's ``--help`` shows only the
options that do something there.

Example:
    >>> issubclass(TaskIncrementalAssumption, IncrementalAssumption)
    True
    >>> IncrementalAssumption.task_boundaries_signalled
    True
    >>> [f.name for f in dataclasses.fields(DiscreteTaskAgnosticAssumption)]
    ['chunks_per_task']
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, ClassVar

from pydantic import Field


@dataclasses.dataclass
class ContinualAssumption:
    """Tasks drift smoothly; nothing tells the method where one ends."""

    level: ClassVar[str] = "continual"
    smooth_task_shift: ClassVar[bool] = True
    task_boundaries_signalled: ClassVar[bool] = False
    task_labels_at_train: ClassVar[bool] = False
    task_labels_at_test: ClassVar[bool] = False
    joint_training: ClassVar[bool] = False
    # Without boundaries a learner is judged while it learns: each chunk of the
    # stream is scored before the method trains on it (online performance).
    online_evaluation: ClassVar[bool] = True

    chunks_per_task: Annotated[int, Field(gt=0, le=10_000)] = 4
    """Each task's stream is fed to `fit` in this many chunks, each scored first (online performance)."""
    drift_width: Annotated[float, Field(ge=0)] = 0.3
    """How far (in tasks) neighbouring tasks blend into each other."""


@dataclasses.dataclass
class DiscreteTaskAgnosticAssumption(ContinualAssumption):
    """Tasks change abruptly, but the change is not announced."""

    level: ClassVar[str] = "discrete_task_agnostic"
    smooth_task_shift: ClassVar[bool] = False
    drift_width: ClassVar[float] = 0.0  # abrupt shifts: nothing blends


@dataclasses.dataclass
class IncrementalAssumption(DiscreteTaskAgnosticAssumption):
    """Task boundaries are signalled (``on_task_switch``) and task ids are known in training.

    The CLI also accepts the alias ``class_incremental`` for this level.
    """

    level: ClassVar[str] = "incremental"
    task_boundaries_signalled: ClassVar[bool] = True
    task_labels_at_train: ClassVar[bool] = True
    online_evaluation: ClassVar[bool] = False
    chunks_per_task: ClassVar[int] = 1  # one phase per task, trained whole


@dataclasses.dataclass
class TaskIncrementalAssumption(IncrementalAssumption):
    """The task id is also given at test time."""

    level: ClassVar[str] = "task_incremental"
    task_labels_at_test: ClassVar[bool] = True


@dataclasses.dataclass
class MultiTaskAssumption(TaskIncrementalAssumption):
    """All tasks are shuffled into one training phase: the joint-training upper bound.

    With one phase there is nothing to carry from task to task, so methods that
    work across phases (``Method.carries_across_phases``: replay, EWC...) do not
    apply here; ``naive`` and the plain learners give the upper bound.
    """

    level: ClassVar[str] = "multi_task"
    task_boundaries_signalled: ClassVar[bool] = False
    joint_training: ClassVar[bool] = True


@dataclasses.dataclass
class DomainIncrementalAssumption(IncrementalAssumption):
    """Every task shares one label space; only the input distribution changes (SL only)."""

    level: ClassVar[str] = "domain_incremental"


LEVEL_ALIASES: dict[str, str] = {"class_incremental": "incremental"}
"""Other names the CLI accepts for a level."""
