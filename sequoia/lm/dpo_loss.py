"""Direct preference optimisation losses (Rafailov et al. 2023) and variants.

All take summed completion log-probabilities of the policy and the reference and
return one loss per pair. ``delta = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)``.

| loss | per pair | paper |
|---|---|---|
| ``sigmoid`` | ``-log sigmoid(beta * delta)`` | DPO, Rafailov et al. 2023 |
| ``ipo`` | ``(delta_per_token - 1 / (2 beta))^2``, log-ratios averaged over completion tokens | IPO, Azar et al. 2023 |
| ``hinge`` | ``relu(1 - beta * delta)`` | SLiC, Zhao et al. 2023 |
| ``robust`` | ``(-(1-e) log sigmoid(beta delta) + e log sigmoid(-beta delta)) / (1 - 2e)`` | rDPO, Chowdhury et al. 2024 |

These match TRL's DPOTrainer (``loss_type``), which ``tests/lm/test_dpo_loss.py`` checks.
"""

from typing import Literal

import torch
import torch.nn.functional as F

LossType = Literal["sigmoid", "ipo", "hinge", "robust"]


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, *, beta: float, loss_type: LossType = "sigmoid",
             label_smoothing: float = 0.0, chosen_tokens: torch.Tensor | None = None,
             rejected_tokens: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pair DPO-family loss.

    Example:
        >>> zero = torch.zeros(2)
        >>> dpo_loss(zero, zero, zero, zero, beta=0.1)   # policy == reference: log 2
        tensor([0.6931, 0.6931])
    """
    chosen_ratio = policy_chosen - ref_chosen
    rejected_ratio = policy_rejected - ref_rejected
    delta = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        return -F.logsigmoid(beta * delta)
    if loss_type == "hinge":
        return torch.relu(1 - beta * delta)
    if loss_type == "ipo":
        if chosen_tokens is None or rejected_tokens is None:
            raise ValueError("the ipo loss needs the completion token counts")
        per_token = chosen_ratio / chosen_tokens.clamp(min=1) - rejected_ratio / rejected_tokens.clamp(min=1)
        return (per_token - 1 / (2 * beta)) ** 2
    if loss_type == "robust":
        if not 0.0 <= label_smoothing < 0.5:
            raise ValueError("the robust loss needs 0 <= label_smoothing < 0.5")
        clean = -(1 - label_smoothing) * F.logsigmoid(beta * delta)
        flipped = -label_smoothing * F.logsigmoid(-beta * delta)
        return (clean - flipped) / (1 - 2 * label_smoothing)
    raise ValueError(f"unknown DPO loss {loss_type!r}; expected sigmoid, ipo, hinge or robust")
