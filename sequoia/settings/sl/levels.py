"""One concrete SL setting per level of the tree.

Each class is the level's assumption mixin on top of its parent's SL setting; it
adds no code, only the flags the mixin carries.
"""

from typing import ClassVar

from pydantic.dataclasses import dataclass

from sequoia.registry import register_setting
from sequoia.settings.assumptions import (
    DiscreteTaskAgnosticAssumption,
    DomainIncrementalAssumption,
    IncrementalAssumption,
    MultiTaskAssumption,
    TaskIncrementalAssumption,
)
from sequoia.settings.sl.setting import SLSetting


@register_setting
@dataclass
class ContinualSLSetting(SLSetting):
    """`sl.continual`: classes drift smoothly into each other; no boundaries, no task ids.

    Example:
        >>> ContinualSLSetting(drift_width=0.5).task_boundaries_signalled
        False
    """


@register_setting
@dataclass
class DiscreteTaskAgnosticSLSetting(DiscreteTaskAgnosticAssumption, ContinualSLSetting):
    """`sl.discrete_task_agnostic`: abrupt class-split changes that are never announced.

    Example:
        >>> import dataclasses
        >>> [f.name for f in dataclasses.fields(DiscreteTaskAgnosticSLSetting) if f.name == 'drift_width']
        []
    """


@register_setting
@dataclass
class IncrementalSLSetting(IncrementalAssumption, DiscreteTaskAgnosticSLSetting):
    """`sl.incremental` (alias `sl.class_incremental`): announced class splits, no task id at test.

    Example:
        >>> IncrementalSLSetting(nb_tasks=5).task_labels_at_test
        False
    """


@register_setting
@dataclass
class DomainIncrementalSLSetting(DomainIncrementalAssumption, IncrementalSLSetting):
    """`sl.domain_incremental`: every task has all classes under its own pixel permutation.

    Example:
        >>> DomainIncrementalSLSetting.shared_label_space
        True
    """

    shared_label_space: ClassVar[bool] = True


@register_setting
@dataclass
class TaskIncrementalSLSetting(TaskIncrementalAssumption, IncrementalSLSetting):
    """`sl.task_incremental`: class splits, and the task id is given at test time too.

    Example:
        >>> TaskIncrementalSLSetting().task_labels_at_test
        True
    """


@register_setting
@dataclass
class MultiTaskSLSetting(MultiTaskAssumption, TaskIncrementalSLSetting):
    """`sl.multi_task`: every task's data shuffled into one phase; the joint-training upper bound.

    Example:
        >>> MultiTaskSLSetting.level
        'multi_task'
    """
