"""Synaptic Intelligence (Zenke, Poole & Ganguli, 2017, "Continual Learning Through Synaptic Intelligence", ICML).

While a task trains, each parameter accumulates its contribution to the drop in
loss along the path the optimizer took, ``w += -g * delta_theta`` after every step.
At the task switch that path integral, normalised by how far the parameter moved
over the task, becomes its importance,

    Omega += w / ((theta_end - theta_start)^2 + xi),

and later tasks pay ``c * sum Omega (theta - theta_end)^2`` for moving important
parameters (one anchor, importances summed over tasks).

As in van de Ven et al.'s reference implementation ("Three types of incremental
learning", 2022): ``g`` is the gradient the step used (after every plugin's penalty,
summed over accumulation pieces and processes, before clipping), ``xi`` defaults to
0.1, and the penalty has no factor 1/2. SI needs task boundaries to consolidate, so
it targets the incremental level of every domain.
"""

from typing import Annotated, ClassVar

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.batching import Batch
from sequoia.learners.base import Learner, Plugin, copy_trainable
from sequoia.methods.learner_method import LearnerMethod
from sequoia.registry import register_method
from sequoia.settings.assumptions import IncrementalAssumption
from sequoia.settings.base import Setting
from sequoia.settings.view import SettingView


class SIPlugin(Plugin):
    """Accumulates the path integral during training and consolidates it into importances at task switches.

    Example:
        >>> plugin = SIPlugin(strength=1.0, damping=0.1)
        >>> plugin.importance
        {}
    """

    checkpoint_attributes = ("path_integral", "importance", "anchor", "task_start", "trained_since_switch")

    def __init__(self, strength: float, damping: float) -> None:
        self.strength = strength
        self.damping = damping
        self.path_integral: dict[str, torch.Tensor] = {}
        self.importance: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self.task_start: dict[str, torch.Tensor] = {}
        self.trained_since_switch = False
        self._step_start: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def before_fit(self, learner: Learner, train) -> None:
        if not self.task_start:  # the first fit of the run: the path starts here
            self.task_start = copy_trainable(learner)
            self.path_integral = {name: torch.zeros_like(p) for name, p in self.task_start.items()}

    def before_step(self, learner: Learner) -> None:
        self._step_start = {name: (p.grad.detach().clone(), p.detach().clone())
                            for name, p in learner.trainable_parameters().items() if p.grad is not None}

    def after_step(self, learner: Learner) -> None:
        parameters = learner.trainable_parameters()
        for name, (grad, before) in self._step_start.items():
            self.path_integral[name] -= grad * (parameters[name].detach() - before)
        self._step_start = {}

    def after_fit(self, learner: Learner) -> None:
        self.trained_since_switch = True

    def on_task_switch(self, learner: Learner, task_id: int | None) -> None:
        if not self.trained_since_switch:
            return
        now = copy_trainable(learner)
        for name, value in now.items():
            added = self.path_integral[name] / ((value - self.task_start[name]) ** 2 + self.damping)
            self.importance[name] = self.importance[name] + added if name in self.importance else added
            self.path_integral[name] = torch.zeros_like(value)
        self.anchor = now
        self.task_start = {name: value.clone() for name, value in now.items()}
        self.trained_since_switch = False

    def penalty(self, learner: Learner, batch: Batch | None = None, outputs=None) -> torch.Tensor | None:
        if not self.importance:
            return None
        return self.strength * sum((self.importance[name] * (p - self.anchor[name]) ** 2).sum()
                                   for name, p in learner.trainable_parameters().items() if name in self.importance)


@register_method
@dataclass
class SI(LearnerMethod):
    """Synaptic Intelligence: a quadratic pull weighted by each parameter's path-integral importance.

    Example:
        >>> from sequoia.settings.sl import TaskIncrementalSLSetting
        >>> results = TaskIncrementalSLSetting(nb_tasks=2).apply(SI(), progress=False)
        >>> results.matrix.values.shape
        (3, 2)
    """

    name: ClassVar[str] = "si"
    target_setting: ClassVar[type[Setting]] = IncrementalAssumption
    carries_across_phases: ClassVar[bool] = True

    si_c: Annotated[float, Field(ge=0)] = 1.0
    """Strength of the penalty (Zenke et al.'s c)."""
    damping: Annotated[float, Field(gt=0)] = 0.1
    """Zenke et al.'s xi: bounds the importance of parameters that barely moved."""

    def make_plugins(self, view: SettingView) -> list[Plugin]:
        return [SIPlugin(self.si_c, self.damping)]
