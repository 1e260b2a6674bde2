"""One adapter per task, merged into the one model that is evaluated (peft's ``add_weighted_adapter``).

Each task trains a LoRA adapter of its own from the base model (as ``experts`` does).
After each task, every adapter trained so far is combined into one adapter,
``merged``, by peft's ``add_weighted_adapter``, and only that one answers: no router,
one model for every input.

* Thakkar et al. 2024 (arXiv 2406.04879) merge models aligned to different
  preferences: DARE-TIES beat each of them, SLERP hurt.
* Yadav et al. 2023 (TIES-Merging) trim each task vector to its largest entries, elect
  a sign per parameter and average the entries that agree; Yu et al. 2024 (DARE) drop
  entries at random and rescale the rest first.
* Lin et al. 2023 (arXiv 2309.06256, "Mitigating the Alignment Tax of RLHF") average
  the base and the aligned weights: ``--method.alpha`` scales the merged adapter's
  update, ``theta_base + alpha * delta``, which is that interpolation. A sweep over
  alpha draws the trade-off of preference accuracy against the alignment tax
  (``sequoia sweep`` writes ``tradeoff.png``).

``--method.weights uniform`` gives the merged update the experts' average in the sense
of each combination: weight ``1/n`` where peft sums the weighted updates (``linear``,
``cat``, ``svd``, ``dare_linear``, ``magnitude_prune`` and their ``_svd`` forms), weight
1 where it already averages the entries whose signs agree (``ties``, ``dare_ties`` and
their ``_svd`` forms). peft's ``linear`` combines the A and B matrices separately, so
with several adapters it is a rough approximation of the averaged update; ``cat`` is
exact (its rank is the sum of the experts').
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.errors import SequoiaError
from sequoia.methods.experts import AdapterExperts, ReportsExperts
from sequoia.methods.learner_method import LearnerMethod
from sequoia.options import CommaSeparated
from sequoia.registry import register_method
from sequoia.settings.base import Setting
from sequoia.settings.pa import IncrementalPASetting
from sequoia.settings.view import SettingView

MERGED = "merged"
AVERAGING = ("ties", "ties_svd", "dare_ties", "dare_ties_svd")
"""Combinations that average the agreeing entries themselves: their uniform weight is 1, not 1/n."""
Combination = Literal["linear", "cat", "svd", "ties", "ties_svd", "dare_ties", "dare_linear", "dare_ties_svd",
                      "dare_linear_svd", "magnitude_prune", "magnitude_prune_svd"]


MAX_WEIGHT = 1000.0
"""The largest weight of an adapter in a merge: a weight of 10^6 says nothing a rescaled alpha would not."""


def parse_weights(text: str, nb_tasks: int) -> list[float] | None:
    """``uniform`` (``None``) or one number per task.

    Example:
        >>> parse_weights("uniform", 3) is None, parse_weights("1, 0.5,0", 3)
        (True, [1.0, 0.5, 0.0])
    """
    if text.strip() == "uniform":
        return None
    try:
        weights = [float(part) for part in text.split(",")]
    except ValueError:
        raise SequoiaError(f"--method.weights {text}: expected `uniform` or one number per task, "
                           "comma-separated") from None
    if len(weights) != nb_tasks:
        raise SequoiaError(f"--method.weights {text}: {len(weights)} weights for {nb_tasks} tasks "
                           "(give one per task, or `uniform`)")
    for task, weight in enumerate(weights):
        if not math.isfinite(weight) or abs(weight) > MAX_WEIGHT:
            raise SequoiaError(f"--method.weights {text}: the weight of task {task} is {weight}; expected a finite "
                               f"number from -{MAX_WEIGHT:g} to {MAX_WEIGHT:g}")
    return weights


@dataclasses.dataclass
class MergedExperts:
    """What ``merge`` builds at ``configure`` and changes while it trains (its options stay on the method).

    Attributes:
        pool: one LoRA adapter per task on the learner's one base model.
        weights: each task's weight in the merge, parsed from ``--method.weights`` (``None``: uniform).
        task: the task being trained, ``None`` before the first boundary (checkpoints keep it).
    """

    pool: AdapterExperts
    weights: list[float] | None
    task: int | None = None


@register_method
@dataclass
class Merge(ReportsExperts, LearnerMethod):
    """One LoRA adapter per task, merged after each task into the adapter that answers (see the module docstring).

    Example:
        >>> Merge(combination="dare_ties", density=0.3).uniform_weights(2)
        [1.0, 1.0]
        >>> Merge(combination="linear").uniform_weights(4)
        [0.25, 0.25, 0.25, 0.25]
    """

    name: ClassVar[str] = "merge"
    target_setting: ClassVar[type[Setting]] = IncrementalPASetting
    carries_across_phases: ClassVar[bool] = True

    combination: Combination = "ties"
    """How peft's `add_weighted_adapter` combines the adapters (`linear`, `cat`, `svd`, `ties`, `dare_ties`, ...)."""
    weights: CommaSeparated = "uniform"
    """Each task's weight in the merge, comma-separated, or `uniform` (the experts' average)."""
    density: Annotated[float, Field(gt=0, le=1)] = 0.5
    """Share of each update's entries kept by TIES, DARE and magnitude pruning."""
    alpha: Annotated[float, Field(ge=0, le=1)] = 1.0
    """Interpolation from the base model (0) to the merged model (1): the merged update is scaled by it."""

    def uniform_weights(self, n: int) -> list[float]:
        """The weights of ``uniform`` for ``n`` adapters (1 for averaging combinations, else 1/n)."""
        return [1.0 if self.combination in AVERAGING else 1.0 / n] * n

    def configure(self, view: SettingView) -> None:
        weights = parse_weights(self.weights, view.nb_tasks)  # checked before any training
        super().configure(view)
        self.experts = MergedExperts(AdapterExperts(self.base_learner, view), weights)

    def on_task_switch(self, task_id: int | None) -> None:
        self.experts.task = task_id
        self.pool.begin(task_id)
        super().on_task_switch(task_id)

    def fit(self, train: Any, valid: Any) -> None:
        self.base_learner.fit(train, valid)
        self.merge()

    def merge(self) -> None:
        """Combine every adapter trained so far into ``merged`` (made anew), scaled by ``alpha``, and use it."""
        from peft.tuners.lora import LoraLayer

        model, tasks = self.base_learner.model, sorted(self.pool.adapters)
        given = self.experts.weights
        weights = self.uniform_weights(len(tasks)) if given is None else [given[t] for t in tasks]
        if MERGED in model.peft_config:
            self.base_learner.use_adapter(self.pool.adapters[tasks[-1]])  # peft warns when the active one goes
            model.delete_adapter(MERGED)
        density = self.density if self.combination not in ("linear", "cat", "svd") else None
        model.add_weighted_adapter([self.pool.adapters[t] for t in tasks], weights, MERGED,
                                   combination_type=self.combination, density=density)
        for module in model.modules():
            if isinstance(module, LoraLayer):
                module.set_scale(MERGED, self.alpha)
        self.base_learner.use_adapter(MERGED)

    # -- checkpoints ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        from peft import get_peft_model_state_dict

        model = self.base_learner.model
        merged = get_peft_model_state_dict(model, adapter_name=MERGED) if MERGED in model.peft_config else None
        return {"experts": self.pool.state_dict(), "merged": merged, "attributes": self.task_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from peft import set_peft_model_state_dict

        self.pool.load_state_dict(state["experts"])
        self.restore_task_state(state["attributes"])
        if state["merged"] is not None:  # saved, not merged again: DARE's random drops would differ
            with torch.random.fork_rng():
                self.merge()
            set_peft_model_state_dict(self.base_learner.model, state["merged"], adapter_name=MERGED)
