"""How the levels turn tasks into training phases, written once for every domain.

A domain says how many training *items* each task has (SL images, PA preference
pairs, RL environment steps) and makes ``fit``'s data from a list of items
(:class:`Items`). Which items go into which phase, in which order, is decided here
from the level's flags alone:

* one phase per task (``incremental`` and below): all of task ``t``'s items, in order;
* one joint phase (``multi_task``): every item of every task, shuffled;
* one stream (``discrete_task_agnostic``, ``continual``): items ordered by their
  place on the task axis, ``task + jitter`` (plus ``N(0, drift_width)`` noise where
  the shift is smooth, so that neighbouring tasks blend near their boundary), cut
  into ``nb_tasks`` equal phases of ``chunks_per_task`` chunks each.

Example:
    >>> rng = np.random.default_rng(0)
    >>> [p.task_id for p in per_task_phases([3, 2], with_task_ids=True)]
    [0, 1]
    >>> [len(c) for p in stream_phases([4, 4], 2, 0.0, rng) for c in p.chunks]
    [2, 2, 2, 2]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass as plain_dataclass

import numpy as np


@plain_dataclass
class Items:
    """Training items in the order a method sees them.

    Attributes:
        tasks: the task of each item.
        indices: each item's index in its task's training data.
        with_task_ids: whether the method may see each item's task.
        positions: where the shift is smooth, each item's place on the task axis in
            stream order (item ``k`` of ``N`` sits at ``k * nb_tasks / N``); domains whose
            tasks blend by their parameters (RL physics) interpolate there. ``None``
            where shifts are abrupt.
    """

    tasks: np.ndarray
    indices: np.ndarray
    with_task_ids: bool = False
    positions: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.tasks)

    def __getitem__(self, part: np.ndarray) -> "Items":
        positions = None if self.positions is None else self.positions[part]
        return Items(self.tasks[part], self.indices[part], self.with_task_ids, positions)


@plain_dataclass
class PhasePlan:
    """The items of one training phase, before the domain turns them into ``fit``'s data.

    Attributes:
        task_id: the task this phase trains on, ``None`` when training mixes tasks.
        chunks: the items of each ``fit`` call, one after the other; a single chunk
            unless the level evaluates online.
        valid_tasks: the tasks whose validation data goes with the phase (none in online levels).
    """

    task_id: int | None
    chunks: list[Items]
    valid_tasks: tuple[int, ...] = ()


def _all_items(sizes: Sequence[int]) -> Items:
    tasks = np.concatenate([np.full(size, task) for task, size in enumerate(sizes)]).astype(int)
    indices = np.concatenate([np.arange(size) for size in sizes]).astype(int)
    return Items(tasks, indices)


def per_task_phases(sizes: Sequence[int], with_task_ids: bool) -> list[PhasePlan]:
    """One phase per task, its items in order."""
    return [PhasePlan(task, [Items(np.full(size, task), np.arange(size), with_task_ids)], (task,))
            for task, size in enumerate(sizes)]


def joint_phase(sizes: Sequence[int], with_task_ids: bool, rng: np.random.Generator) -> PhasePlan:
    """Every task's items, shuffled together into one phase."""
    everything = _all_items(sizes)
    shuffled = everything[rng.permutation(len(everything))]
    shuffled.with_task_ids = with_task_ids
    return PhasePlan(None, [shuffled], tuple(range(len(sizes))))


def stream_phases(sizes: Sequence[int], chunks_per_task: int, drift_width: float | None,
                  rng: np.random.Generator) -> list[PhasePlan]:
    """One stream through all tasks, cut into ``len(sizes)`` equal phases of ``chunks_per_task`` chunks.

    Each item sits at ``task + noise`` on the task axis; the noise is ``N(0, drift_width)``
    where the shift is smooth (``drift_width`` not ``None``) and absent where it is
    abrupt. A small jitter shuffles the items within a task.
    """
    stream = _all_items(sizes)
    when = stream.tasks.astype(float)
    if drift_width is not None:
        when = when + rng.normal(0.0, drift_width, len(stream))
    when = when + rng.random(len(stream)) * 1e-3
    ordered = stream[np.argsort(when, kind="stable")]
    if drift_width is not None:
        ordered.positions = np.arange(len(ordered)) * len(sizes) / len(ordered)
    phases = []
    for phase in np.array_split(np.arange(len(ordered)), len(sizes)):
        chunks = [ordered[chunk] for chunk in np.array_split(phase, chunks_per_task) if len(chunk)]
        phases.append(PhasePlan(None, chunks))
    return phases
