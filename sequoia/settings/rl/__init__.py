"""Continual reinforcement learning: gymnasium environments whose physics change per task."""

from sequoia.settings.rl.levels import (
    ContinualRLSetting,
    DiscreteTaskAgnosticRLSetting,
    IncrementalRLSetting,
    MultiTaskRLSetting,
    TaskIncrementalRLSetting,
)
from sequoia.settings.rl.setting import RLSetting

__all__ = [
    "ContinualRLSetting",
    "DiscreteTaskAgnosticRLSetting",
    "IncrementalRLSetting",
    "MultiTaskRLSetting",
    "RLSetting",
    "TaskIncrementalRLSetting",
]
