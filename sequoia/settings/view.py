"""What a method may know about the setting it runs on.

``Method.configure`` receives a view, never the setting: a frozen record of sizes,
spaces, limits and the level's flags, built by the setting's ``view()``. Held-out
data lives only in the setting, so a method cannot reach test labels, or which
reply of a test pair was preferred, through what it was given. Task ids appear
only where the level reveals them (``task_labels_at_train`` / ``task_labels_at_test``).

Each domain extends :class:`SettingView` with what its learners need (SL: input
shape and classes; RL: observation and action spaces; PA: the model and the
tokenization limits).

Example:
    >>> from sequoia.settings.sl import TaskIncrementalSLSetting
    >>> view = SettingView.of(TaskIncrementalSLSetting(nb_tasks=5))
    >>> view.nb_tasks, view.task_labels_at_test
    (5, True)
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol


class Level(Protocol):
    """What a view reads of a setting (a :class:`~sequoia.settings.base.Setting` has it; the view names no class
    of the tree, which builds views)."""

    nb_tasks_total: int
    task_boundaries_signalled: bool
    task_labels_at_train: bool
    task_labels_at_test: bool
    progress: bool


@dataclasses.dataclass(frozen=True)
class SettingView:
    """The level and the size of a setting, as every method may know them.

    Attributes:
        setting_type: the setting's class (its level flags and name; it holds no data).
        nb_tasks: the number of tasks (columns of the transfer matrix).
        task_boundaries_signalled: whether ``on_task_switch`` will be called.
        task_labels_at_train: whether training data carries task ids.
        task_labels_at_test: whether evaluation calls pass the task id.
        progress: whether to show progress bars.
    """

    setting_type: type
    nb_tasks: int
    task_boundaries_signalled: bool
    task_labels_at_train: bool
    task_labels_at_test: bool
    progress: bool

    @classmethod
    def of(cls, setting: Level, **domain_fields: Any) -> SettingView:
        """The view of ``setting``, with the domain's own fields."""
        return cls(setting_type=type(setting), nb_tasks=setting.nb_tasks_total,
                   task_boundaries_signalled=setting.task_boundaries_signalled,
                   task_labels_at_train=setting.task_labels_at_train,
                   task_labels_at_test=setting.task_labels_at_test,
                   progress=setting.progress, **domain_fields)
