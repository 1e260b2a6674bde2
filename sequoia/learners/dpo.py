"""DPO with LoRA: the default PA learner."""

from dataclasses import dataclass as plain_dataclass
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia.batching import Batch
from sequoia.errors import SequoiaError
from sequoia.learners.base import copy_trainable
from sequoia.learners.lora import LoRALearner
from sequoia.lm.dpo_loss import LossType, dpo_loss
from sequoia.lm.packing import Group
from sequoia.lm.scoring import ReplyScores
from sequoia.registry import register_learner
from sequoia.settings.pa.setting import PreferenceData


@plain_dataclass
class DPOFitState:
    """What one ``fit`` call of DPO carries from step to step; none of it outlives the call.

    Attributes:
        objective: ``sft`` during the SFT steps that open a call (``sft_steps``), else ``dpo``.
        reference_weights: TR-DPO's moving reference adapter (``None``: the reference log-probs stored with the rows).
        dpo_steps: DPO steps of this call so far (TR-DPO moves the reference every ``reference_sync_every``).
    """

    objective: Literal["sft", "dpo"] = "dpo"
    reference_weights: dict[str, torch.Tensor] | None = None
    dpo_steps: int = 0


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

    With ``reference_sync_every = tau > 0`` the reference moves during the task (TR-DPO,
    Gorbatovski et al. 2024): after every ``tau``-th DPO step of a ``fit`` call the
    reference adapter becomes ``alpha * policy + (1 - alpha) * reference``
    (``alpha = reference_mixup_alpha``; 1 is TR-DPO's hard update, below 1 its soft one),
    TRL's ``sync_ref_model`` rule applied to the adapter weights. The reference is then
    scored with each batch (its adapter weights swapped in for one no-grad forward),
    replayed rows included, instead of read from the rows.

    Example:
        >>> DPOLoRA(beta=0.1, loss_type="ipo").reference
        'previous_task'
    """

    name: ClassVar[str] = "dpo_lora"

    beta: Annotated[float, Field(gt=0, le=1_000)] = 0.1
    """Strength of the KL regularisation to the reference (the temperature of the implicit reward)."""
    loss_type: LossType = "sigmoid"
    """DPO-family loss: TRL's paired losses and `cal_dpo` (docs/methods/dpo_losses.md)."""
    label_smoothing: Annotated[float, Field(ge=0, lt=0.5)] = 0.0
    """Assumed share of flipped labels, for the `robust`, `exo_pair` (needs > 0; its paper uses 1e-3) and `aot` losses."""
    discopop_tau: Annotated[float, Field(gt=0, le=100)] = 0.05
    """Temperature of the `discopop` loss's mixing (0.05 in its paper)."""
    reference: Literal["previous_task", "base"] = "previous_task"
    """Reference model: the model as it entered the task, or the base model."""
    sft_steps: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    """SFT steps on the chosen replies before DPO in each `fit` call (0: DPO only)."""
    reference_sync_every: Annotated[int, Field(ge=0, le=1_000_000_000)] = 0
    """TR-DPO: move the reference towards the policy after every this many DPO steps of a task (0: fixed reference)."""
    reference_mixup_alpha: Annotated[float, Field(gt=0, le=1)] = 0.6
    """TR-DPO's alpha: each update makes the reference alpha * policy + (1 - alpha) * reference (1: a hard copy)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.fit_state = DPOFitState()
        if self.loss_type == "exo_pair" and self.label_smoothing == 0:
            raise SequoiaError("--learner.loss_type exo_pair needs --learner.label_smoothing above 0 "
                               "(the EXO paper uses 1e-3)")

    def train_phase(self, train: PreferenceData, valid: Any) -> None:
        rows = self.encode_pairs(train.pairs)
        if self.sft_steps:
            self.fit_state = DPOFitState(objective="sft")
            self.train_epochs(rows, epochs=max(1, -(-self.sft_steps * self.batch_size // len(train))),
                              max_steps=self.sft_steps)
            self.fit_state = DPOFitState()
        rows = self.prepare_rows(rows)
        self.record.last = rows
        self.fit_state = DPOFitState(reference_weights=self._initial_reference() if self.reference_sync_every else None)
        try:
            self.train_epochs(rows, self.epochs)
        finally:
            self.fit_state = DPOFitState()  # a moving reference lives for one fit call

    def _initial_reference(self) -> dict[str, torch.Tensor]:
        """The reference adapter weights at the start of a task: the policy's, or for the base model B = 0."""
        weights = copy_trainable(self)
        if self.reference == "base":
            if not all("lora_A" in name or "lora_B" in name for name in weights):
                raise SequoiaError("--learner.reference base with --learner.reference_sync_every needs LoRA "
                                   "weights only among the trainable parameters")
            weights = {name: torch.zeros_like(w) if "lora_B" in name else w for name, w in weights.items()}
        return weights

    def optimize(self, batch: Batch) -> torch.Tensor:
        loss = super().optimize(batch)
        state = self.fit_state
        if state.objective == "dpo" and state.reference_weights is not None:
            state.dpo_steps += 1
            if state.dpo_steps % self.reference_sync_every == 0:
                mix_into(state.reference_weights, self.trainable_parameters(), self.reference_mixup_alpha)
        return loss

    def reference_scores(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The reference log-probs of the batch's chosen and rejected replies: stored, or scored now (TR-DPO)."""
        reference = self.fit_state.reference_weights
        if reference is None:
            return batch["ref_chosen"], batch["ref_rejected"]
        n = len(batch["prompt_ids"])
        with torch.no_grad(), self._weights(reference):
            logprobs = self.outputs(batch).logprobs.detach()
        return logprobs[:n], logprobs[n:]

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
        if self.fit_state.objective == "sft":
            return self.chosen_outputs(batch)
        scores = self.score_groups([Group(p, [c, r]) for p, c, r in zip(batch["prompt_ids"], batch["chosen_ids"],
                                                                          batch["rejected_ids"])])
        n = len(batch["prompt_ids"])  # the groups list chosen, rejected, chosen, ...: chosen ones first
        order = torch.cat([torch.arange(0, 2 * n, 2), torch.arange(1, 2 * n, 2)]).to(scores.logprobs.device)
        return ReplyScores(scores.logprobs[order], scores.tokens[order], scores.features, scores.head)

    def loss(self, batch: Batch, outputs: ReplyScores | None = None) -> torch.Tensor:
        if self.fit_state.objective == "sft":
            return self.sft_loss(batch, outputs)
        n = len(batch["prompt_ids"])
        scores = self.outputs(batch) if outputs is None else outputs
        logprobs, tokens = scores.logprobs, scores.tokens
        device = logprobs.device  # the cached reference log-probs live on the CPU
        ref_chosen, ref_rejected = self.reference_scores(batch)
        losses = dpo_loss(logprobs[:n], logprobs[n:], ref_chosen.to(device), ref_rejected.to(device), beta=self.beta,
                          loss_type=self.loss_type, label_smoothing=self.label_smoothing,
                          discopop_tau=self.discopop_tau,
                          chosen_tokens=tokens[:n], rejected_tokens=tokens[n:])
        return losses.mean()


@torch.no_grad()
def mix_into(reference: dict[str, torch.Tensor], policy: dict[str, torch.Tensor], alpha: float) -> None:
    """``reference <- (1 - alpha) * reference + alpha * policy``, in place: TRL's ``SyncRefModelCallback`` rule.

    Example:
        >>> reference = {"w": torch.zeros(2)}
        >>> mix_into(reference, {"w": torch.ones(2)}, alpha=0.6)
        >>> reference["w"]
        tensor([0.6000, 0.6000])
    """
    for name, weight in reference.items():
        weight.mul_(1.0 - alpha).add_(policy[name].detach().to(weight.dtype), alpha=alpha)
