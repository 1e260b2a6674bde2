"""Naive fine-tuning: the lower bound every continual-learning method should beat."""

from typing import ClassVar

from pydantic.dataclasses import dataclass

from sequoia.methods.learner_method import LearnerMethod
from sequoia.registry import register_method
from sequoia.settings.base import Setting


@register_method
@dataclass
class Naive(LearnerMethod):
    """Train the domain's learner on each task in turn, with nothing against forgetting.

    Example:
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> Naive.is_applicable(IncrementalSLSetting())
        True
    """

    name: ClassVar[str] = "naive"
    target_setting: ClassVar[type[Setting]] = Setting
