"""Learning without Forgetting (Li & Hoiem, 2017, "Learning without Forgetting", TPAMI).

At each task switch the learner's trainable weights are snapshotted; while it trains
on the new task, a distillation term keeps its outputs on the *current* batch close
to the outputs the snapshot gives on the same batch. No old data is stored: the new
task's inputs carry the old behaviour.

What "outputs" and "close" mean is the learner's (``Learner.distillation``):

* SL classifier: KL from the snapshot's temperature-softened class distribution to
  ours, over the classes the snapshot had trained on (Li & Hoiem's old-task outputs;
  Avalanche's ``LwF`` does the same), with ``temperature`` 2 as in the paper;
* PA LoRA learners: token-level KL from the previous policy's next-token
  distributions to ours along the current task's replies (chosen and rejected for
  DPO, chosen for SFT); the snapshot is of the adapter weights only, swapped in
  place for one extra no-grad forward per step, so no second model is held; both
  distributions are computed from the final hidden states a chunk of tokens at a
  time (:func:`sequoia.lm.head.token_kl_sum`), recomputed in the backward pass, so
  no ``[tokens, vocab]`` logits are kept, as in DPO's own scoring;
* RL DQN: mean squared difference of the Q-values of every action on the batch's
  observations (Q-value distillation; the temperature does not apply).

LwF needs task boundaries (to know when "the model as it entered the task" is), so
it targets the incremental level of every domain.
"""

from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.batching import Batch
from sequoia.learners.base import Learner, Plugin
from sequoia.methods.learner_method import LearnerMethod
from sequoia.registry import register_method
from sequoia.settings.assumptions import IncrementalAssumption
from sequoia.settings.base import Setting
from sequoia.settings.view import SettingView


class LwFPlugin(Plugin):
    """Snapshots the learner at each task switch and distills towards the snapshot.

    Example:
        >>> plugin = LwFPlugin(alpha=1.0, temperature=2.0)
        >>> plugin.teacher is None
        True
    """

    checkpoint_attributes = ("teacher", "trained_since_switch")

    def __init__(self, alpha: float, temperature: float) -> None:
        self.alpha = alpha
        self.temperature = temperature
        self.teacher: dict[str, Any] | None = None
        self.trained_since_switch = False

    def after_fit(self, learner: Learner) -> None:
        self.trained_since_switch = True

    def on_task_switch(self, learner: Learner, task_id: int | None) -> None:
        if self.trained_since_switch:  # before the first task there is nothing to keep
            self.teacher = learner.snapshot()
            self.trained_since_switch = False

    def penalty(self, learner: Learner, batch: Batch, outputs: Any) -> torch.Tensor | None:
        if self.teacher is None or self.alpha == 0:
            return None
        teacher = learner.teacher_outputs(self.teacher, batch)
        return self.alpha * learner.distillation(outputs, teacher, self.temperature)


@register_method
@dataclass
class LwF(LearnerMethod):
    """Learning without Forgetting: distill the model as it entered the task into the model being trained.

    Example:
        >>> from sequoia.settings.sl import ContinualSLSetting, TaskIncrementalSLSetting
        >>> LwF.is_applicable(TaskIncrementalSLSetting()), LwF.is_applicable(ContinualSLSetting())
        (True, False)
    """

    name: ClassVar[str] = "lwf"
    target_setting: ClassVar[type[Setting]] = IncrementalAssumption
    carries_across_phases: ClassVar[bool] = True

    alpha: Annotated[float, Field(ge=0)] = 1.0
    """Weight of the distillation term (Li & Hoiem's lambda_o)."""
    temperature: Annotated[float, Field(gt=0, le=1_000)] = 2.0
    """Softening temperature of the distributions compared (SL, PA)."""

    def make_plugins(self, view: SettingView) -> list[Plugin]:
        return [LwFPlugin(self.alpha, self.temperature)]
