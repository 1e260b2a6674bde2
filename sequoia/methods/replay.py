"""Experience replay with a reservoir buffer (Chaudhry et al. 2019, "On Tiny Episodic Memories").

Replay needs no task boundaries, so it targets the root of the tree and runs on
every setting of every domain that trains in more than one phase: it only stores
and merges batch rows.
"""

from typing import Annotated, ClassVar

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.batching import Batch, batch_size, concat, take
from sequoia.learners.base import Learner, Plugin
from sequoia.methods.learner_method import LearnerMethod
from sequoia.registry import register_method
from sequoia.runs.state import capture, restore
from sequoia.seeding import derived_generator
from sequoia.settings.base import Setting
from sequoia.settings.view import SettingView


class ReservoirBuffer:
    """A fixed-size uniform sample of every row ever offered (reservoir sampling, Vitter 1985).

    Example:
        >>> buffer = ReservoirBuffer(capacity=10, generator=torch.Generator().manual_seed(0))
        >>> buffer.add({"x": torch.arange(100)})
        >>> len(buffer), buffer.seen
        (10, 100)
        >>> batch_size(buffer.sample(4))
        4
    """

    checkpoint_attributes = ("rows", "seen", "generator")

    def __init__(self, capacity: int, generator: torch.Generator) -> None:
        self.capacity = capacity
        self.generator = generator
        self.rows: list[Batch] = []
        self.seen = 0

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, batch: Batch) -> None:
        """Offer every row of ``batch``; each row seen so far stays with equal probability."""
        for index in range(batch_size(batch)):
            self.seen += 1
            if len(self.rows) < self.capacity:
                self.rows.append(take(batch, [index]))
                continue
            slot = int(torch.randint(self.seen, (1,), generator=self.generator))
            if slot < self.capacity:
                self.rows[slot] = take(batch, [index])

    def sample(self, n: int) -> Batch:
        """``n`` rows drawn uniformly with replacement."""
        picks = torch.randint(len(self.rows), (n,), generator=self.generator).tolist()
        return concat([self.rows[i] for i in picks])


class MemoryPlugin(Plugin):
    """Keeps an episodic memory: every ``fit`` call's rows offered to a reservoir after it.

    Stored after training, so that while a phase trains the memory holds only
    earlier data: what is rehearsed (replay) or protected (A-GEM) is always "old"
    experience. Checkpoints keep the memory (restored in place: the method holds the
    same buffer) and the plugin's own ``checkpoint_attributes``.
    """

    def __init__(self, memory: ReservoirBuffer) -> None:
        self.memory = memory

    def after_fit(self, learner: Learner) -> None:
        self.memory.add(learner.experience())

    def state_dict(self) -> dict:
        return {"memory": capture(self.memory), "plugin": capture(self)}

    def load_state_dict(self, state: dict) -> None:
        restore(self.memory, state["memory"])
        restore(self, state["plugin"])


class ReplayPlugin(MemoryPlugin):
    """Adds memory rows to every training batch."""

    def __init__(self, memory: ReservoirBuffer, replay_share: float) -> None:
        super().__init__(memory)
        self.replay_share = replay_share

    def adapt_batch(self, learner: Learner, batch: Batch) -> Batch:
        if not len(self.memory) or self.replay_share == 0:
            return batch
        n_replayed = max(1, round(batch_size(batch) * self.replay_share / (1 - self.replay_share)))
        return concat([batch, self.memory.sample(n_replayed)])


@register_method
@dataclass
class Replay(LearnerMethod):
    """Experience replay: rehearse a reservoir sample of past data alongside new data.

    Each training batch of ``B`` new rows gets ``B * s / (1 - s)`` memory rows, so that
    the share ``s`` (``replay_share``) of the combined batch comes from memory.

    Example:
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> results = IncrementalSLSetting(nb_tasks=2).apply(Replay(buffer_size=50), progress=False)
        >>> results.matrix.nb_tasks
        2
    """

    name: ClassVar[str] = "replay"
    target_setting: ClassVar[type[Setting]] = Setting
    carries_across_phases: ClassVar[bool] = True

    buffer_size: Annotated[int, Field(gt=0, le=100_000_000)] = 200
    """How many rows the memory keeps."""
    replay_share: Annotated[float, Field(ge=0, lt=1)] = 0.5
    """Share of each combined training batch drawn from memory."""

    def make_plugins(self, view: SettingView) -> list[Plugin]:
        self.buffer = ReservoirBuffer(self.buffer_size, derived_generator())
        return [ReplayPlugin(self.buffer, self.replay_share)]
