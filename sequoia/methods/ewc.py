"""Elastic weight consolidation (Kirkpatrick et al. 2017), with the online variant of
Schwarz et al. 2018 ("Progress & Compress").

EWC consolidates at task boundaries, so it targets the incremental level of any
domain. The penalty is ``lambda / 2 * sum_i F_i (theta_i - theta*_i)^2`` over the
parameters that require grad (for PA: the LoRA parameters only).
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


def diagonal_fisher(learner: Learner, data: Batch, samples: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The empirical diagonal Fisher: the mean of squared per-sample loss gradients.

    Each sample gets its own backward pass so that the result is a true per-sample
    estimate (squaring a batch-mean gradient would underestimate it).

    Example:
        >>> from types import SimpleNamespace
        >>> from sequoia.learners import Classifier
        >>> learner = Classifier(hidden_layers=0)
        >>> learner.configure(SimpleNamespace(input_shape=(4,), num_classes=3, progress=False))
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
    """Holds the consolidated Fisher and anchor parameters and adds the quadratic penalty."""

    checkpoint_attributes = ("fisher", "anchor")

    def __init__(self, ewc_lambda: float) -> None:
        self.ewc_lambda = ewc_lambda
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def consolidate(self, learner: Learner, fisher: dict[str, torch.Tensor], decay: float) -> None:
        """Fold a new task's Fisher in (``F <- decay * F + F_new``) and re-anchor at the current weights."""
        for name, value in fisher.items():
            self.fisher[name] = decay * self.fisher[name] + value if name in self.fisher else value
        self.anchor = {name: p.detach().clone() for name, p in learner.trainable_parameters().items()}

    def penalty(self, learner: Learner) -> torch.Tensor | None:
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

    At each task switch the Fisher is estimated on ``fisher_samples`` rows of the
    task that just ended; ``online_decay`` < 1 gives online EWC, whose older
    Fishers fade.

    Example:
        >>> from sequoia.settings.sl import TaskIncrementalSLSetting
        >>> results = TaskIncrementalSLSetting(nb_tasks=2).apply(EWC(ewc_lambda=10.0), progress=False)
        >>> results.matrix.values.shape
        (3, 2)
    """

    name: ClassVar[str] = "ewc"
    target_setting: ClassVar[type[Setting]] = IncrementalAssumption
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("_generator", "_trained_since_switch")

    ewc_lambda: Annotated[float, Field(ge=0)] = 100.0
    """Strength of the penalty."""
    fisher_samples: Annotated[int, Field(gt=0)] = 200
    """Rows of the finished task used to estimate the Fisher."""
    online_decay: Annotated[float, Field(ge=0, le=1)] = 1.0
    """Weight of the previous Fisher when a new one is added (1: plain sum)."""

    def make_plugins(self, setting: Setting) -> list[Plugin]:
        self.plugin = EWCPlugin(self.ewc_lambda)
        self._generator = derived_generator()
        self._trained_since_switch = False
        return [self.plugin]

    def fit(self, train, valid) -> None:
        super().fit(train, valid)
        self._trained_since_switch = True

    def on_task_switch(self, task_id: int | None) -> None:
        if not self._trained_since_switch:
            return
        fisher = diagonal_fisher(self.base, self.base.experience(), self.fisher_samples, self._generator)
        self.plugin.consolidate(self.base, fisher, self.online_decay)
        self._trained_since_switch = False
