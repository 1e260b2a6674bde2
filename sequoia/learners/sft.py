"""Supervised fine-tuning of LoRA adapters on the chosen replies."""

from typing import ClassVar

import torch
from pydantic.dataclasses import dataclass

from sequoia.batching import Batch
from sequoia.learners.lora import LoRALearner
from sequoia.lm.scoring import ReplyScores
from sequoia.registry import register_learner


@register_learner
@dataclass
class LoRASFT(LoRALearner):
    """Completion-only negative log-likelihood of the chosen replies (the rejected ones are unused).

    Example:
        >>> LoRASFT().lora_rank
        8
    """

    name: ClassVar[str] = "lora_sft"

    def outputs(self, batch: Batch) -> ReplyScores:
        return self.chosen_outputs(batch)

    def loss(self, batch: Batch, outputs: ReplyScores | None = None) -> torch.Tensor:
        return self.sft_loss(batch, outputs)
