"""What an RL setting asks of a method at test time (:mod:`sequoia.protocols`)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Acts(Protocol):
    """Chooses an action for each observation of a batch (greedy at test time)."""

    def act(self, observations: Any, task_id: int | None) -> Any:
        """Actions, one per observation; ``task_id`` where the level gives it at test time, else ``None``."""
