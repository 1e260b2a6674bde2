"""What an SL setting asks of a method at test time (:mod:`sequoia.protocols`)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Classifies(Protocol):
    """Predicts a label for each input.

    ``task_id`` is the task the inputs come from where the level gives it at test time,
    else ``None``.
    """

    def predict(self, x: torch.Tensor, task_id: int | None) -> torch.Tensor:
        """Predicted labels, one per row of ``x``."""
