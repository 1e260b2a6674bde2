"""DPO with LoRA: the default PA learner."""

from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.batching import Batch
from sequoia.learners.lora import LoRALearner
from sequoia.lm.dpo_loss import dpo_loss
from sequoia.lm.packing import Group
from sequoia.lm.scoring import ReplyScores
from sequoia.registry import register_learner
from sequoia.settings.pa.setting import PreferenceData


@register_learner
@dataclass
class DPOLoRA(LoRALearner):
    """Direct preference optimisation (Rafailov et al. 2023) of LoRA adapters.

    Each step scores chosen and rejected replies in one forward pass (completion
    tokens only, summed), each pair's prompt computed once for both replies. The reference log-probs are computed once per
    ``fit`` call, before training on it, and stored with the rows: from the model as
    it enters the task (``reference=previous_task``, the usual sequential-DPO choice)
    or from the base model, i.e. the adapters disabled (``reference=base``). No second
    copy of the model is ever held, and replayed rows keep their own reference.

    With ``sft_steps > 0``, each ``fit`` starts with that many SFT steps on the chosen
    replies, and the reference is taken after them (the SFT-then-DPO arm).

    Example:
        >>> DPOLoRA(beta=0.1, loss_type="ipo").reference
        'previous_task'
    """

    name: ClassVar[str] = "dpo_lora"

    beta: Annotated[float, Field(gt=0, le=1_000)] = 0.1
    """Strength of the KL regularisation to the reference (the temperature of the implicit reward)."""
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = "sigmoid"
    """DPO-family loss."""
    label_smoothing: Annotated[float, Field(ge=0, lt=0.5)] = 0.0
    """Assumed share of flipped labels, for the `robust` loss."""
    reference: Literal["previous_task", "base"] = "previous_task"
    """Reference model: the model as it entered the task, or the base model."""
    sft_steps: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    """SFT steps on the chosen replies before DPO in each `fit` call (0: DPO only)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.objective: Literal["sft", "dpo"] = "dpo"

    def train_phase(self, train: PreferenceData, valid: Any) -> None:
        rows = self.encode_pairs(train.pairs)
        if self.sft_steps:
            self.objective = "sft"
            self.train_epochs(rows, epochs=max(1, -(-self.sft_steps * self.batch_size // len(train))),
                              max_steps=self.sft_steps)
            self.objective = "dpo"
        rows = self.prepare_rows(rows)
        self._last = rows
        self.train_epochs(rows, self.epochs)

    @torch.no_grad()
    def prepare_rows(self, rows: Batch) -> Batch:
        n = len(rows["prompt_ids"])
        prompts, replies = rows["prompt_ids"] * 2, rows["chosen_ids"] + rows["rejected_ids"]
        if self.reference == "base":
            with self.model.disable_adapter():
                scores = self.batched_logprobs(prompts, replies)
        else:
            scores = self.batched_logprobs(prompts, replies)
        return {**rows, "ref_chosen": scores[:n], "ref_rejected": scores[n:]}

    def outputs(self, batch: Batch) -> ReplyScores:
        """Scores of the chosen then the rejected replies, in one forward pass, each prompt computed once."""
        if self.objective == "sft":
            return self.chosen_outputs(batch)
        scores = self.score_groups([Group(p, [c, r]) for p, c, r in zip(batch["prompt_ids"], batch["chosen_ids"],
                                                                          batch["rejected_ids"])])
        n = len(batch["prompt_ids"])  # the groups list chosen, rejected, chosen, ...: chosen ones first
        order = torch.cat([torch.arange(0, 2 * n, 2), torch.arange(1, 2 * n, 2)]).to(scores.logprobs.device)
        return ReplyScores(scores.logprobs[order], scores.tokens[order], scores.features, scores.head)

    def loss(self, batch: Batch, outputs: ReplyScores | None = None) -> torch.Tensor:
        if self.objective == "sft":
            return self.sft_loss(batch, outputs)
        n = len(batch["prompt_ids"])
        scores = self.outputs(batch) if outputs is None else outputs
        logprobs, tokens = scores.logprobs, scores.tokens
        device = logprobs.device  # the cached reference log-probs live on the CPU
        losses = dpo_loss(logprobs[:n], logprobs[n:], batch["ref_chosen"].to(device),
                          batch["ref_rejected"].to(device), beta=self.beta,
                          loss_type=self.loss_type, label_smoothing=self.label_smoothing,
                          chosen_tokens=tokens[:n], rejected_tokens=tokens[n:])
        return losses.mean()
