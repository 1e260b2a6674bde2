"""What the regression settings ask of a method at test time."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Regresses(Protocol):
    """Predicts a real value for each input."""

    def regress(self, x: torch.Tensor, task_id: int | None) -> torch.Tensor:
        """One prediction per row of ``x``; ``task_id`` where the level gives it at test time, else ``None``."""
