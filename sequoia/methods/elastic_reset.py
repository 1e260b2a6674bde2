"""Elastic Reset (Noukhovitch et al. 2023, "Language Model Alignment with Elastic Reset", NeurIPS).

Alignment drifts a model away from what it could do before (the alignment tax). Elastic
Reset keeps an exponential moving average (EMA) of the trained weights and, every
``reset_every`` optimizer steps, resets the online weights to the EMA and the EMA to the
initial weights. The online model restarts close to where the training was heading,
and the EMA restarts from the model before alignment, so that drift cannot accumulate.

As in the authors' code (github.com/mnoukhov/elastic-reset, ``er_training.py``): the EMA
covers the trainable weights only (their LoRA adapters, as here), with
``ema <- decay * ema + (1 - decay) * online`` after every optimizer step; at a reset the
online weights take the EMA's values and the EMA takes the initial ones; the optimizer's
state is kept. Where sequoia differs:

* the authors count ``reset_every`` in PPO batches (each several optimizer steps); here it
  is optimizer steps, of whichever learner the method trains (DPO or SFT);
* "initial" is the model as it entered the current task (``reset_to=task_start``, the
  default: earlier tasks' alignment is kept, drift within a task is not) or as it entered
  the run (``reset_to=run_start``: the paper's single-task setting, where the initial
  model is the one before alignment). Where the level signals no task boundaries, both
  mean the run's start.

The defaults (decay 0.995, a reset every 260 steps) are the authors' StackLLaMA values.
Tasks shorter than ``reset_every`` steps are never reset: a run says so once on stderr.
"""

import sys
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.learners.base import Learner, Plugin, copy_trainable
from sequoia.methods.learner_method import LearnerMethod
from sequoia.registry import register_method
from sequoia.settings.base import Setting
from sequoia.settings.pa.levels import ContinualPASetting
from sequoia.settings.view import SettingView


class ElasticResetPlugin(Plugin):
    """Keeps the EMA of the trainable weights and resets online -> EMA -> initial every ``reset_every`` steps.

    Example:
        >>> plugin = ElasticResetPlugin(decay=0.5, reset_every=2, reset_to="task_start")
        >>> weight = torch.nn.Parameter(torch.zeros(1))
        >>> class Toy:  # a learner with one trainable weight
        ...     def trainable_parameters(self): return {"w": weight}
        >>> plugin.before_fit(Toy(), None)
        >>> for value in (4.0, 8.0):  # two optimizer steps move the weight to 4, then 8
        ...     _ = weight.data.fill_(value)
        ...     plugin.after_step(Toy())
        >>> weight.item(), plugin.ema["w"].item(), plugin.resets   # EMA 0 -> 2 -> 5; reset
        (5.0, 0.0, 1)
    """

    checkpoint_attributes = ("ema", "initial", "steps", "resets", "trained_since_switch")

    def __init__(self, decay: float, reset_every: int, reset_to: str) -> None:
        self.decay = decay
        self.reset_every = reset_every
        self.reset_to = reset_to
        self.ema: dict[str, torch.Tensor] = {}
        self.initial: dict[str, torch.Tensor] = {}
        self.steps = 0  # optimizer steps since the initial weights were taken
        self.resets = 0
        self.trained_since_switch = False
        self._warned = False

    def before_fit(self, learner: Learner, train) -> None:
        if not self.initial:  # the run's first fit: the initial weights are these
            self._restart(learner)

    def on_task_switch(self, learner: Learner, task_id: int | None) -> None:
        if self.trained_since_switch and self.reset_to == "task_start":
            self._restart(learner)
        self.trained_since_switch = False

    def _restart(self, learner: Learner) -> None:
        self.initial = copy_trainable(learner)
        self.ema = copy_trainable(learner)
        self.steps = 0

    @torch.no_grad()
    def after_step(self, learner: Learner) -> None:
        parameters = learner.trainable_parameters()
        for name, average in self.ema.items():
            average.mul_(self.decay).add_(parameters[name].detach(), alpha=1.0 - self.decay)
        self.steps += 1
        if self.steps % self.reset_every == 0:
            for name, average in self.ema.items():
                parameters[name].data.copy_(average)  # online <- EMA
                average.copy_(self.initial[name])  # EMA <- initial
            self.resets += 1

    def after_fit(self, learner: Learner) -> None:
        self.trained_since_switch = True
        if self.resets == 0 and not self._warned:
            self._warned = True
            print(f"sequoia: elastic_reset: {self.steps} optimizer steps so far, fewer than --method.reset_every "
                  f"{self.reset_every}: no reset has happened yet", file=sys.stderr)


@register_method
@dataclass
class ElasticReset(LearnerMethod):
    """Elastic Reset: periodically reset the trained weights to their moving average, and the average to the start.

    Example:
        >>> from sequoia.settings.pa import IncrementalPASetting, MultiTaskPASetting
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> [ElasticReset.is_applicable(s) for s in (IncrementalPASetting, MultiTaskPASetting, IncrementalSLSetting)]
        [True, True, False]
    """

    name: ClassVar[str] = "elastic_reset"
    target_setting: ClassVar[type[Setting]] = ContinualPASetting

    ema_decay: Annotated[float, Field(ge=0, lt=1)] = 0.995
    """Decay of the moving average of the trainable weights, updated after every optimizer step."""
    reset_every: Annotated[int, Field(gt=0, le=1_000_000_000)] = 260
    """Optimizer steps between resets (online weights <- average <- initial weights)."""
    reset_to: Literal["task_start", "run_start"] = "task_start"
    """Initial weights: the model as it entered the current task, or as it entered the run."""

    def make_plugins(self, view: SettingView) -> list[Plugin]:
        return [ElasticResetPlugin(self.ema_decay, self.reset_every, self.reset_to)]
