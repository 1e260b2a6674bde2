"""The assumption levels of the setting tree, shared by every domain.

Each level is a thin mixin holding only class-level flags. A concrete setting
combines a level with a domain, for example
``IncrementalSLSetting(IncrementalAssumption, DiscreteTaskAgnosticSLSetting)``.
Because each level subclasses the one above it, ``isinstance`` answers "does this
setting make at least these assumptions?", which is exactly what a method's
``target_setting`` asks.

| level                    | task shift | boundary signalled | task id, train | task id, test |
|--------------------------|------------|--------------------|----------------|---------------|
| continual                | smooth     | no                 | no             | no            |
| discrete_task_agnostic   | abrupt     | no                 | no             | no            |
| incremental              | abrupt     | yes                | yes            | no            |
| task_incremental         | abrupt     | yes                | yes            | yes           |
| multi_task               | shuffled   | n/a                | yes            | yes           |

Example:
    >>> issubclass(TaskIncrementalAssumption, IncrementalAssumption)
    True
    >>> IncrementalAssumption.task_boundaries_signalled
    True
"""

from __future__ import annotations

from typing import ClassVar


class ContinualAssumption:
    """Tasks drift smoothly; nothing tells the method where one ends."""

    level: ClassVar[str] = "continual"
    smooth_task_shift: ClassVar[bool] = True
    task_boundaries_signalled: ClassVar[bool] = False
    task_labels_at_train: ClassVar[bool] = False
    task_labels_at_test: ClassVar[bool] = False
    joint_training: ClassVar[bool] = False
    # Without boundaries a learner is judged while it learns: each chunk of the
    # stream is predicted before the method trains on it (online performance).
    online_evaluation: ClassVar[bool] = True


class DiscreteTaskAgnosticAssumption(ContinualAssumption):
    """Tasks change abruptly, but the change is not announced."""

    level: ClassVar[str] = "discrete_task_agnostic"
    smooth_task_shift: ClassVar[bool] = False


class IncrementalAssumption(DiscreteTaskAgnosticAssumption):
    """Task boundaries are signalled (``on_task_switch``) and task ids are known in training.

    The CLI also accepts the alias ``class_incremental`` for this level.
    """

    level: ClassVar[str] = "incremental"
    task_boundaries_signalled: ClassVar[bool] = True
    task_labels_at_train: ClassVar[bool] = True
    online_evaluation: ClassVar[bool] = False


class TaskIncrementalAssumption(IncrementalAssumption):
    """The task id is also given at test time."""

    level: ClassVar[str] = "task_incremental"
    task_labels_at_test: ClassVar[bool] = True


class MultiTaskAssumption(TaskIncrementalAssumption):
    """All tasks are shuffled into one training phase: the joint-training upper bound."""

    level: ClassVar[str] = "multi_task"
    task_boundaries_signalled: ClassVar[bool] = False
    joint_training: ClassVar[bool] = True


class DomainIncrementalAssumption(IncrementalAssumption):
    """Every task shares one label space; only the input distribution changes (SL only)."""

    level: ClassVar[str] = "domain_incremental"


LEVEL_ALIASES: dict[str, str] = {"class_incremental": "incremental"}
"""Other names the CLI accepts for a level."""
