"""Write a method as a plugin on the learners, so it runs in every domain at once.

`L2Anchor` pulls the weights back toward where they were at the end of the last
task, with the same strength for every weight: EWC with the Fisher replaced by
ones (the "L2" baseline of Kirkpatrick et al., 2017). Like EWC it is a plugin only:
it re-anchors in the ``on_task_switch`` hook and adds a ``penalty``, touching
nothing but the learner interface (trainable parameters), so the same class runs
on the SL classifier and on the other domains' learners.

    python examples/plugin_method.py [--strength 1.0] [--seed 0]
"""

import argparse
from typing import Annotated, ClassVar

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia import register_method
from sequoia.learners.base import Plugin
from sequoia.methods.learner_method import LearnerMethod
from sequoia.methods.naive import Naive
from sequoia.settings.assumptions import IncrementalAssumption
from sequoia.settings.sl import TaskIncrementalSLSetting


class L2AnchorPlugin(Plugin):
    checkpoint_attributes = ("anchor",)  # what checkpoints keep, so that `sequoia --resume` works

    def __init__(self, strength: float) -> None:
        self.strength = strength
        self.anchor: dict[str, torch.Tensor] = {}

    def on_task_switch(self, learner, task_id):
        # Boundaries are signalled at this level: anchor at the weights the finished task left.
        self.anchor = {n: p.detach().clone() for n, p in learner.trainable_parameters().items()}

    def penalty(self, learner, batch, outputs):
        if not self.anchor:
            return None
        return 0.5 * self.strength * sum(((p - self.anchor[n]) ** 2).sum()
                                         for n, p in learner.trainable_parameters().items())


@register_method
@dataclass
class L2Anchor(LearnerMethod):
    """Uniform quadratic pull toward the weights of the previous task.

    Example:
        >>> from sequoia.settings.sl import ContinualSLSetting
        >>> L2Anchor.is_applicable(TaskIncrementalSLSetting()), L2Anchor.is_applicable(ContinualSLSetting())
        (True, False)
    """

    name: ClassVar[str] = "l2_anchor"
    target_setting: ClassVar[type] = IncrementalAssumption  # needs boundaries, in any domain
    carries_across_phases: ClassVar[bool] = True  # the anchor: nothing to do in a single joint phase

    strength: Annotated[float, Field(ge=0)] = 1.0

    def make_plugins(self, view):
        return [L2AnchorPlugin(self.strength)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for method in (Naive(), L2Anchor(strength=args.strength)):
        results = TaskIncrementalSLSetting().apply(method, seed=args.seed, progress=False)
        print(f"{method.name:>10}: average final accuracy {results.matrix.average_final():.3f}, "
              f"average forgetting {results.matrix.average_forgetting():.4f}")


if __name__ == "__main__":
    main()
