"""Direct preference optimisation losses (Rafailov et al. 2023) and the variants TRL ships, plus Cal-DPO.

Every loss takes the summed reply log-probabilities of the policy and of the reference
and returns one loss per pair. Write ``c = policy_chosen - ref_chosen`` and
``r = policy_rejected - ref_rejected`` (the implicit rewards, before ``beta``), and
``delta = c - r``; ``c_t`` and ``r_t`` are ``c`` and ``r`` divided by the reply's token count.

| ``loss_type`` | per pair | paper |
|---|---|---|
| ``sigmoid`` | ``-log sigmoid(beta delta)`` | DPO, Rafailov et al. 2023 |
| ``hinge`` | ``relu(1 - beta delta)`` | SLiC-HF, Zhao et al. 2023 |
| ``ipo`` | ``(c_t - r_t - 1 / (2 beta))^2`` | IPO, Azar et al. 2023 |
| ``robust`` | ``(-(1-e) log sigmoid(beta delta) + e log sigmoid(-beta delta)) / (1 - 2e)`` | rDPO, Chowdhury et al. 2024 |
| ``exo_pair`` | ``KL([q, 1-q] || [1-e, e])`` with ``q = sigmoid(beta delta)`` | EXO, Ji et al. 2024 (Eq. 16) |
| ``nca_pair`` | ``-log sigmoid(beta c) - (log sigmoid(-beta c) + log sigmoid(-beta r)) / 2`` | NCA, Chen et al. 2024 |
| ``bco_pair`` | ``-log sigmoid(beta c) - log sigmoid(-beta r)`` | BCO, Jung et al. 2024 |
| ``sppo_hard`` | ``(c - 1 / (2 beta))^2 + (r + 1 / (2 beta))^2`` | SPPO, Wu et al. 2024 (hard labels) |
| ``aot`` | DPO on the batch's sorted policy and sorted reference log-ratio margins | AOT, Melnyk et al. 2024 |
| ``aot_unpaired`` | DPO on the batch's sorted ``c`` against its sorted ``r`` | AOT, Melnyk et al. 2024 |
| ``apo_zero`` | ``1 - sigmoid(beta c) + sigmoid(beta r)`` | APO, D'Oosterlinck et al. 2024 (Eq. 7) |
| ``apo_down`` | ``sigmoid(beta c) + 1 - sigmoid(beta delta)`` | APO, D'Oosterlinck et al. 2024 (Eq. 8) |
| ``discopop`` | logistic and exponential losses of ``beta delta``, mixed by ``sigmoid(beta delta / tau)`` | DiscoPOP, Lu et al. 2024 (Eq. 5) |
| ``sigmoid_norm`` | ``-log sigmoid(beta (c_t - r_t))`` | length-normalised DPO (as in TRL) |
| ``cal_dpo`` | ``-log sigmoid(delta) + ((c - 1/(2 beta))^2 + (r + 1/(2 beta))^2) / 2`` | Cal-DPO, Xiao et al. 2024 |

All but ``cal_dpo`` equal TRL's ``DPOTrainer`` with the same ``loss_type`` (loss and
gradient; ``tests/lm/test_dpo_loss.py`` checks each on one batch). ``cal_dpo`` is not in
TRL; it follows the authors' code (github.com/tengxiao1/Cal-DPO, ``loss_type="Cal-DPO"``):
the contrastive term is not scaled by ``beta`` and the calibration term is weighted
by 1/2, as there. ``e`` is ``label_smoothing`` and ``tau`` is ``discopop_tau``. ``aot`` and
``aot_unpaired`` couple the pairs of a batch (they sort them), so their per-pair values
depend on the batch.
"""

from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F

LossType = Literal["sigmoid", "hinge", "ipo", "robust", "exo_pair", "nca_pair", "bco_pair", "sppo_hard", "aot",
                   "aot_unpaired", "apo_zero", "apo_down", "discopop", "sigmoid_norm", "cal_dpo"]


@dataclass(frozen=True)
class PairScores:
    """Summed reply log-probabilities of a batch of pairs, and the replies' token counts."""

    policy_chosen: torch.Tensor
    policy_rejected: torch.Tensor
    ref_chosen: torch.Tensor
    ref_rejected: torch.Tensor
    chosen_tokens: torch.Tensor | None = None
    rejected_tokens: torch.Tensor | None = None

    @property
    def chosen_ratio(self) -> torch.Tensor:
        return self.policy_chosen - self.ref_chosen

    @property
    def rejected_ratio(self) -> torch.Tensor:
        return self.policy_rejected - self.ref_rejected

    @property
    def delta(self) -> torch.Tensor:
        return self.chosen_ratio - self.rejected_ratio

    def per_token_delta(self, loss_type: str) -> torch.Tensor:
        """``c_t - r_t``: each log-ratio averaged over its reply's tokens."""
        if self.chosen_tokens is None or self.rejected_tokens is None:
            raise ValueError(f"the {loss_type} loss needs the completion token counts")
        return (self.chosen_ratio / self.chosen_tokens.clamp(min=1)
                - self.rejected_ratio / self.rejected_tokens.clamp(min=1))


@dataclass(frozen=True)
class LossOptions:
    """The numbers a loss may read besides the scores."""

    beta: float
    label_smoothing: float = 0.0
    discopop_tau: float = 0.05


LossFunction = Callable[[PairScores, LossOptions], torch.Tensor]
LOSSES: dict[str, LossFunction] = {}


def register_loss(name: str) -> Callable[[LossFunction], LossFunction]:
    """Add a loss under ``name``; a second loss of the same name is refused.

    Example:
        >>> register_loss("sigmoid")(lambda scores, options: scores.delta)
        Traceback (most recent call last):
        ...
        ValueError: a DPO loss named 'sigmoid' is already registered
    """
    def add(function: LossFunction) -> LossFunction:
        if name in LOSSES:
            raise ValueError(f"a DPO loss named {name!r} is already registered")
        LOSSES[name] = function
        return function
    return add


def _smoothed_logistic(margin: torch.Tensor, smoothing: float) -> torch.Tensor:
    return -(1 - smoothing) * F.logsigmoid(margin) - smoothing * F.logsigmoid(-margin)


@register_loss("sigmoid")
def _sigmoid(s: PairScores, o: LossOptions) -> torch.Tensor:
    return -F.logsigmoid(o.beta * s.delta)


@register_loss("hinge")
def _hinge(s: PairScores, o: LossOptions) -> torch.Tensor:
    return torch.relu(1 - o.beta * s.delta)


@register_loss("ipo")
def _ipo(s: PairScores, o: LossOptions) -> torch.Tensor:
    # Log-ratios averaged over reply tokens, as TRL does (the IPO authors' normalised form).
    return (s.per_token_delta("ipo") - 1 / (2 * o.beta)) ** 2


@register_loss("robust")
def _robust(s: PairScores, o: LossOptions) -> torch.Tensor:
    if not 0.0 <= o.label_smoothing < 0.5:
        raise ValueError("the robust loss needs 0 <= label_smoothing < 0.5")
    clean = -(1 - o.label_smoothing) * F.logsigmoid(o.beta * s.delta)
    flipped = -o.label_smoothing * F.logsigmoid(-o.beta * s.delta)
    return (clean - flipped) / (1 - 2 * o.label_smoothing)


@register_loss("exo_pair")
def _exo_pair(s: PairScores, o: LossOptions) -> torch.Tensor:
    if not 0.0 < o.label_smoothing < 1.0:
        raise ValueError("the exo_pair loss needs 0 < label_smoothing < 1 (the EXO paper uses 1e-3)")
    margin = o.beta * s.delta
    smoothing = torch.tensor(o.label_smoothing, dtype=margin.dtype, device=margin.device)
    return (torch.sigmoid(margin) * (F.logsigmoid(margin) - torch.log1p(-smoothing))
            + torch.sigmoid(-margin) * (F.logsigmoid(-margin) - torch.log(smoothing)))


@register_loss("nca_pair")
def _nca_pair(s: PairScores, o: LossOptions) -> torch.Tensor:
    chosen, rejected = o.beta * s.chosen_ratio, o.beta * s.rejected_ratio
    return -F.logsigmoid(chosen) - 0.5 * F.logsigmoid(-chosen) - 0.5 * F.logsigmoid(-rejected)


@register_loss("bco_pair")
def _bco_pair(s: PairScores, o: LossOptions) -> torch.Tensor:
    return -F.logsigmoid(o.beta * s.chosen_ratio) - F.logsigmoid(-o.beta * s.rejected_ratio)


@register_loss("sppo_hard")
def _sppo_hard(s: PairScores, o: LossOptions) -> torch.Tensor:
    return (s.chosen_ratio - 0.5 / o.beta) ** 2 + (s.rejected_ratio + 0.5 / o.beta) ** 2


@register_loss("aot")
def _aot(s: PairScores, o: LossOptions) -> torch.Tensor:
    policy = torch.sort(s.policy_chosen - s.policy_rejected, dim=0).values
    reference = torch.sort(s.ref_chosen - s.ref_rejected, dim=0).values
    return _smoothed_logistic(o.beta * (policy - reference), o.label_smoothing)


@register_loss("aot_unpaired")
def _aot_unpaired(s: PairScores, o: LossOptions) -> torch.Tensor:
    chosen = torch.sort(s.chosen_ratio, dim=0).values
    rejected = torch.sort(s.rejected_ratio, dim=0).values
    return _smoothed_logistic(o.beta * (chosen - rejected), o.label_smoothing)


@register_loss("apo_zero")
def _apo_zero(s: PairScores, o: LossOptions) -> torch.Tensor:
    return 1 - torch.sigmoid(o.beta * s.chosen_ratio) + torch.sigmoid(o.beta * s.rejected_ratio)


@register_loss("apo_down")
def _apo_down(s: PairScores, o: LossOptions) -> torch.Tensor:
    return torch.sigmoid(o.beta * s.chosen_ratio) + 1 - torch.sigmoid(o.beta * s.delta)


@register_loss("discopop")
def _discopop(s: PairScores, o: LossOptions) -> torch.Tensor:
    margin = o.beta * s.delta
    mix = torch.sigmoid(margin / o.discopop_tau)
    return -F.logsigmoid(margin) * (1 - mix) + torch.exp(-margin) * mix


@register_loss("sigmoid_norm")
def _sigmoid_norm(s: PairScores, o: LossOptions) -> torch.Tensor:
    return -F.logsigmoid(o.beta * s.per_token_delta("sigmoid_norm"))


@register_loss("cal_dpo")
def _cal_dpo(s: PairScores, o: LossOptions) -> torch.Tensor:
    # The authors' code: the contrastive term on the unscaled log-ratios, and both rewards pulled
    # towards +-1/(2 beta) (their mean squared errors, weighted by 1/2).
    target = 1.0 / (2.0 * o.beta)
    calibration = (s.chosen_ratio - target) ** 2 + (s.rejected_ratio + target) ** 2
    return -F.logsigmoid(s.delta) + 0.5 * calibration


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, *, beta: float, loss_type: LossType = "sigmoid",
             label_smoothing: float = 0.0, chosen_tokens: torch.Tensor | None = None,
             rejected_tokens: torch.Tensor | None = None, discopop_tau: float = 0.05) -> torch.Tensor:
    """Per-pair DPO-family loss (the table of this module says which).

    Example:
        >>> zero = torch.zeros(2)
        >>> dpo_loss(zero, zero, zero, zero, beta=0.1)   # policy == reference: log 2
        tensor([0.6931, 0.6931])
        >>> dpo_loss(zero, zero, zero, zero, beta=0.5, loss_type="sppo_hard")   # 2 * (1 / (2 beta))^2
        tensor([2., 2.])
    """
    try:
        loss = LOSSES[loss_type]
    except KeyError:
        raise ValueError(f"unknown DPO loss {loss_type!r}; expected one of {', '.join(LOSSES)}") from None
    scores = PairScores(policy_chosen, policy_rejected, ref_chosen, ref_rejected, chosen_tokens, rejected_tokens)
    return loss(scores, LossOptions(beta, label_smoothing, discopop_tau))

