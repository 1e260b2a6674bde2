"""Sequential preference alignment of language models: one preference dataset per task."""

from sequoia.settings.pa.levels import (
    ContinualPASetting,
    DiscreteTaskAgnosticPASetting,
    IncrementalPASetting,
    MultiTaskPASetting,
    TaskIncrementalPASetting,
)
from sequoia.settings.pa.evaluation import PAEvaluation
from sequoia.settings.pa.pairs import PreferencePair
from sequoia.settings.pa.setting import PreferenceData, PreferenceSetting

__all__ = [
    "ContinualPASetting",
    "DiscreteTaskAgnosticPASetting",
    "IncrementalPASetting",
    "MultiTaskPASetting",
    "PAEvaluation",
    "PreferenceData",
    "PreferencePair",
    "PreferenceSetting",
    "TaskIncrementalPASetting",
]
