"""The setting tree: the root, the assumption levels, and one branch per domain (``sequoia.settings.sl``...)."""

from sequoia.settings.assumptions import (
    ContinualAssumption,
    DiscreteTaskAgnosticAssumption,
    DomainIncrementalAssumption,
    IncrementalAssumption,
    MultiTaskAssumption,
    TaskIncrementalAssumption,
)
from sequoia.settings.base import Phase, Setting

__all__ = [
    "ContinualAssumption",
    "DiscreteTaskAgnosticAssumption",
    "DomainIncrementalAssumption",
    "IncrementalAssumption",
    "MultiTaskAssumption",
    "Phase",
    "Setting",
    "TaskIncrementalAssumption",
]
