"""Averaged Gradient Episodic Memory (Chaudhry et al., 2019, "Efficient Lifelong Learning with A-GEM", ICLR).

Each gradient step is checked against the gradient of the loss on a sample of
episodic memory: where the two conflict (``g . g_ref < 0``), the step's gradient is
projected onto the half-space where it no longer increases the memory loss,

    g <- g - (g . g_ref) / (g_ref . g_ref) * g_ref,

so learning the current task cannot (to first order) undo the remembered ones.

Differences from the paper, and why:

* the memory is a reservoir sample of every row trained on so far (the rows of each
  ``fit`` call, stored after it), as in Chaudhry et al.'s companion paper "On Tiny
  Episodic Memories" (2019), rather than a fixed number of rows per task: it needs
  no task boundaries, so A-GEM runs on the task-agnostic levels too;
* the projection acts on the whole step's gradient after it is summed over
  gradient-accumulation pieces and processes, and the reference gradient is computed
  the same way (``Learner.gradient``), so several processes project exactly as one.
"""

from typing import Annotated, ClassVar

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.learners.base import Learner, Plugin
from sequoia.methods.learner_method import LearnerMethod
from sequoia.methods.replay import MemoryPlugin, ReservoirBuffer
from sequoia.registry import register_method
from sequoia.seeding import derived_generator
from sequoia.settings.base import Setting
from sequoia.settings.view import SettingView


def project(gradient: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> bool:
    """Project ``gradient`` in place where it conflicts with ``reference``; whether it did.

    Example:
        >>> g, ref = {"w": torch.tensor([1.0, -1.0])}, {"w": torch.tensor([0.0, 1.0])}
        >>> project(g, ref), g["w"].tolist()
        (True, [1.0, 0.0])
    """
    dot = sum((gradient[name] * reference[name]).sum() for name in reference)
    if dot >= 0:
        return False
    norm = sum((value * value).sum() for value in reference.values())
    if norm == 0:
        return False
    for name, value in reference.items():
        gradient[name].sub_(dot / norm * value)
    return True


class AGEMPlugin(MemoryPlugin):
    """Keeps the episodic memory and projects each step's gradient against it."""

    checkpoint_attributes = ("projections",)

    def __init__(self, memory: ReservoirBuffer, sample_size: int) -> None:
        super().__init__(memory)
        self.sample_size = sample_size
        self.projections = 0
        """How many steps were projected (a diagnostic)."""

    def before_step(self, learner: Learner) -> None:
        if not len(self.memory):
            return
        reference = learner.gradient(self.memory.sample(self.sample_size))
        parameters = learner.trainable_parameters()
        gradient = {name: p.grad for name, p in parameters.items() if p.grad is not None}
        if project(gradient, {name: reference[name] for name in gradient}):
            self.projections += 1


@register_method
@dataclass
class AGEM(LearnerMethod):
    """A-GEM: project each gradient step so that it does not increase the loss on a memory sample.

    Example:
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> results = IncrementalSLSetting(nb_tasks=2).apply(AGEM(memory_size=50), progress=False)
        >>> results.matrix.nb_tasks
        2
    """

    name: ClassVar[str] = "agem"
    target_setting: ClassVar[type[Setting]] = Setting
    carries_across_phases: ClassVar[bool] = True

    memory_size: Annotated[int, Field(gt=0, le=100_000_000)] = 200
    """How many rows the episodic memory keeps."""
    sample_size: Annotated[int, Field(gt=0, le=1_000_000)] = 64
    """Memory rows drawn for each step's reference gradient."""

    def make_plugins(self, view: SettingView) -> list[Plugin]:
        self.memory = ReservoirBuffer(self.memory_size, derived_generator())
        return [AGEMPlugin(self.memory, self.sample_size)]
