"""Elastic weight consolidation (Kirkpatrick et al. 2017), with the online variant of
Schwarz et al. 2018 ("Progress & Compress").

EWC consolidates at task boundaries, so it targets the incremental level of any
domain. The penalty is ``lambda / 2 * sum_i F_i (theta_i - theta*_i)^2`` over the
parameters that require grad (for PA: the LoRA parameters only).

The choices, as van de Ven et al. ("Three types of incremental learning", 2022)
ask to state them:

* the Fisher is the **empirical** Fisher: squared gradients of the learner's own
  training loss at the observed targets, one backward pass per sample, averaged over
  ``fisher_samples`` rows of the task that just ended. The loss is the domain's: the
  cross-entropy of the labels for the SL classifier, the **DPO (or SFT) loss** of the
  preference pairs for PA learners, the **TD (Huber) loss** of stored transitions for
  DQN; so in RL it is the Fisher of the TD loss, not of a policy distribution;
* **one anchor**: the weights at the last task switch; each task's Fisher is added to
  the running one (``F <- gamma * F + F_new``), as in online EWC, rather than keeping
  one penalty term per task;
* ``online_decay`` is that ``gamma``: 1 sums the Fishers of all tasks (with one
  anchor), below 1 lets older tasks' importance fade.
"""

from typing import Annotated, ClassVar

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.batching import Batch, batch_size, take
from sequoia.learners.base import Learner, Plugin
from sequoia.methods.learner_method import LearnerMethod
from sequoia.registry import register_method
from sequoia.seeding import derived_generator
from sequoia.settings.assumptions import IncrementalAssumption
from sequoia.settings.base import Setting
from sequoia.settings.view import SettingView


def diagonal_fisher(learner: Learner, data: Batch, samples: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The empirical diagonal Fisher: the mean of squared per-sample loss gradients.

    Each sample gets its own backward pass so that the result is a true per-sample
    estimate (squaring a batch-mean gradient would underestimate it).

    Example:
        >>> from sequoia.learners import Classifier
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> from sequoia.settings.sl.setting import SLView
        >>> learner = Classifier(hidden_layers=0)
        >>> learner.configure(SLView.of(IncrementalSLSetting(), input_shape=(4,), num_classes=3))
        >>> data = {"x": torch.randn(8, 4), "y": torch.randint(3, (8,))}
        >>> fisher = diagonal_fisher(learner, data, samples=8, generator=torch.Generator())
        >>> sorted(fisher), bool((fisher["1.weight"] >= 0).all())
        (['1.bias', '1.weight'], True)
    """
    params = learner.trainable_parameters()
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    chosen = torch.randperm(batch_size(data), generator=generator)[:samples].tolist()
    for index in chosen:
        grads = torch.autograd.grad(learner.loss(take(data, [index])), list(params.values()), allow_unused=True)
        for name, grad in zip(params, grads):
            if grad is not None:
                fisher[name] += grad.detach() ** 2
    return {name: value / max(1, len(chosen)) for name, value in fisher.items()}


class EWCPlugin(Plugin):
    """Estimates the Fisher at each task switch, keeps it with the anchor, and adds the quadratic penalty.

    Args:
        ewc_lambda: strength of the penalty.
        fisher_samples: rows of the finished task used to estimate the Fisher.
        online_decay: weight of the previous Fisher when a new one is added.
        generator: draws the rows the Fisher is estimated on.
    """

    checkpoint_attributes = ("fisher", "anchor", "generator", "trained_since_switch")

    def __init__(self, ewc_lambda: float, fisher_samples: int = 200, online_decay: float = 1.0,
                 generator: torch.Generator | None = None) -> None:
        self.ewc_lambda = ewc_lambda
        self.fisher_samples = fisher_samples
        self.online_decay = online_decay
        self.generator = generator or torch.Generator()
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self.trained_since_switch = False

    def after_fit(self, learner: Learner) -> None:
        self.trained_since_switch = True

    def on_task_switch(self, learner: Learner, task_id: int | None) -> None:
        if not self.trained_since_switch:
            return
        fisher = diagonal_fisher(learner, learner.experience(), self.fisher_samples, self.generator)
        self.consolidate(learner, fisher, self.online_decay)
        self.trained_since_switch = False

    def consolidate(self, learner: Learner, fisher: dict[str, torch.Tensor], decay: float) -> None:
        """Fold a new task's Fisher in (``F <- decay * F + F_new``) and re-anchor at the current weights."""
        for name, value in fisher.items():
            self.fisher[name] = decay * self.fisher[name] + value if name in self.fisher else value
        self.anchor = {name: p.detach().clone() for name, p in learner.trainable_parameters().items()}

    def penalty(self, learner: Learner, batch: Batch | None = None, outputs=None) -> torch.Tensor | None:
        if not self.fisher:
            return None
        total = sum(
            (self.fisher[name] * (p - self.anchor[name]) ** 2).sum()
            for name, p in learner.trainable_parameters().items()
            if name in self.fisher
        )
        return 0.5 * self.ewc_lambda * total


@register_method
@dataclass
class EWC(LearnerMethod):
    """Elastic weight consolidation: pull parameters important to past tasks back to their old values.

    At each task switch the empirical Fisher of the learner's loss is estimated on
    ``fisher_samples`` rows of the task that just ended; ``online_decay`` < 1 gives
    online EWC, whose older Fishers fade (see the module docstring for the choices).

    Example:
        >>> from sequoia.settings.sl import TaskIncrementalSLSetting
        >>> results = TaskIncrementalSLSetting(nb_tasks=2).apply(EWC(ewc_lambda=10.0), progress=False)
        >>> results.matrix.values.shape
        (3, 2)
    """

    name: ClassVar[str] = "ewc"
    target_setting: ClassVar[type[Setting]] = IncrementalAssumption
    carries_across_phases: ClassVar[bool] = True

    ewc_lambda: Annotated[float, Field(ge=0)] = 100.0
    """Strength of the penalty."""
    fisher_samples: Annotated[int, Field(gt=0, le=100_000_000)] = 200
    """Rows of the finished task used to estimate the Fisher."""
    online_decay: Annotated[float, Field(ge=0, le=1)] = 1.0
    """Weight of the previous Fisher when a new one is added (1: plain sum)."""

    def make_plugins(self, view: SettingView) -> list[Plugin]:
        self.plugin = EWCPlugin(self.ewc_lambda, self.fisher_samples, self.online_decay, derived_generator())
        return [self.plugin]
