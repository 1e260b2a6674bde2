"""One regression setting per level of sequoia's tree: the level's mixin on the domain root, registered."""

from pydantic.dataclasses import dataclass

from sequoia.registry import register_setting
from sequoia.settings.assumptions import (
    DiscreteTaskAgnosticAssumption,
    IncrementalAssumption,
    MultiTaskAssumption,
    TaskIncrementalAssumption,
)
from sequoia_regression.setting import RegressionSetting


@register_setting
@dataclass
class ContinualRegressionSetting(RegressionSetting):
    """`reg.continual`: the curve drifts smoothly from one task's phase to the next; no boundaries."""


@register_setting
@dataclass
class DiscreteTaskAgnosticRegressionSetting(DiscreteTaskAgnosticAssumption, ContinualRegressionSetting):
    """`reg.discrete_task_agnostic`: the curve jumps from task to task, unannounced."""


@register_setting
@dataclass
class IncrementalRegressionSetting(IncrementalAssumption, DiscreteTaskAgnosticRegressionSetting):
    """`reg.incremental`: announced tasks, no task id at test."""


@register_setting
@dataclass
class TaskIncrementalRegressionSetting(TaskIncrementalAssumption, IncrementalRegressionSetting):
    """`reg.task_incremental`: the task id at test too (the regressor reads it as an input)."""


@register_setting
@dataclass
class MultiTaskRegressionSetting(MultiTaskAssumption, TaskIncrementalRegressionSetting):
    """`reg.multi_task`: every task at once, one phase: the joint bound."""
