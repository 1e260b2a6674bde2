"""Continual supervised learning: image classification with class splits or permutations."""

from sequoia.settings.sl.data import SupervisedData
from sequoia.settings.sl.levels import (
    ContinualSLSetting,
    DiscreteTaskAgnosticSLSetting,
    DomainIncrementalSLSetting,
    IncrementalSLSetting,
    MultiTaskSLSetting,
    TaskIncrementalSLSetting,
)
from sequoia.settings.sl.setting import SLSetting

__all__ = [
    "ContinualSLSetting",
    "DiscreteTaskAgnosticSLSetting",
    "DomainIncrementalSLSetting",
    "IncrementalSLSetting",
    "MultiTaskSLSetting",
    "SLSetting",
    "SupervisedData",
    "TaskIncrementalSLSetting",
]
