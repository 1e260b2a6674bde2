"""One concrete PA setting per level of the tree."""

from pydantic.dataclasses import dataclass

from sequoia.registry import register_setting
from sequoia.settings.assumptions import (
    DiscreteTaskAgnosticAssumption,
    IncrementalAssumption,
    MultiTaskAssumption,
    TaskIncrementalAssumption,
)
from sequoia.settings.pa.setting import PreferenceSetting


@register_setting
@dataclass
class ContinualPASetting(PreferenceSetting):
    """`pa.continual`: the mixture of preference tasks drifts smoothly over training.

    Example:
        >>> ContinualPASetting().chunks_per_task, ContinualPASetting().drift_width
        (4, 0.3)
    """


@register_setting
@dataclass
class DiscreteTaskAgnosticPASetting(DiscreteTaskAgnosticAssumption, ContinualPASetting):
    """`pa.discrete_task_agnostic`: one task after another, with no boundary announced.

    Example:
        >>> DiscreteTaskAgnosticPASetting().task_boundaries_signalled
        False
    """


@register_setting
@dataclass
class IncrementalPASetting(IncrementalAssumption, DiscreteTaskAgnosticPASetting):
    """`pa.incremental` (alias `pa.class_incremental`): tasks in sequence with announced boundaries.

    Example:
        >>> IncrementalPASetting().task_labels_at_test
        False
    """


@register_setting
@dataclass
class TaskIncrementalPASetting(TaskIncrementalAssumption, IncrementalPASetting):
    """`pa.task_incremental`: the task id is also given when scoring test pairs.

    Example:
        >>> TaskIncrementalPASetting().task_labels_at_test
        True
    """


@register_setting
@dataclass
class MultiTaskPASetting(MultiTaskAssumption, TaskIncrementalPASetting):
    """`pa.multi_task`: every task's pairs shuffled into one phase, the joint upper bound.

    Example:
        >>> MultiTaskPASetting.level
        'multi_task'
    """
