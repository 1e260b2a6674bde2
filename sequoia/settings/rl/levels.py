"""One concrete RL setting per level of the tree."""

from typing import ClassVar

from pydantic.dataclasses import dataclass

from sequoia.registry import register_setting
from sequoia.settings.assumptions import (
    DiscreteTaskAgnosticAssumption,
    IncrementalAssumption,
    MultiTaskAssumption,
    TaskIncrementalAssumption,
)
from sequoia.settings.rl.setting import RLSetting


@register_setting
@dataclass
class ContinualRLSetting(RLSetting):
    """`rl.continual`: the physics move smoothly from one task's parameters to the next as steps go by.

    Example:
        >>> ContinualRLSetting().chunks_per_task
        4
    """

    drift_width: ClassVar[float] = 0.0  # tasks blend by interpolating their physics, not by mixing episodes


@register_setting
@dataclass
class DiscreteTaskAgnosticRLSetting(DiscreteTaskAgnosticAssumption, ContinualRLSetting):
    """`rl.discrete_task_agnostic`: the physics jump at task ends, unannounced.

    Example:
        >>> DiscreteTaskAgnosticRLSetting().task_boundaries_signalled
        False
    """


@register_setting
@dataclass
class IncrementalRLSetting(IncrementalAssumption, DiscreteTaskAgnosticRLSetting):
    """`rl.incremental`: announced task switches.

    Example:
        >>> IncrementalRLSetting().task_boundaries_signalled
        True
    """


@register_setting
@dataclass
class TaskIncrementalRLSetting(TaskIncrementalAssumption, IncrementalRLSetting):
    """`rl.task_incremental`: observations end with a one-hot task id, in training and test.

    Example:
        >>> TaskIncrementalRLSetting().task_labels_at_test
        True
    """


@register_setting
@dataclass
class MultiTaskRLSetting(MultiTaskAssumption, TaskIncrementalRLSetting):
    """`rl.multi_task`: one training phase in which each episode draws a task.

    Example:
        >>> MultiTaskRLSetting.level
        'multi_task'
    """
