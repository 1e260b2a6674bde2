"""What a preference-alignment setting builds at run time, apart from its options.

The setting's fields are its options only. :meth:`prepare` builds a :class:`Prepared`
(the loaded tasks and what evaluation scores with, loaded again when a run resumes) and
a fresh :class:`Baseline`: the untrained method's scores, measured at the evaluation
before training (row 0) and the reference of every later row. The baseline is what a
checkpoint keeps of the setting (beside its random generator).

Example:
    >>> import torch
    >>> baseline = Baseline()
    >>> first = baseline.of(baseline.logprobs, 0, lambda: (torch.tensor([1.0]), torch.tensor([0.0])))
    >>> later = baseline.of(baseline.logprobs, 0, lambda: (torch.tensor([9.0]), torch.tensor([9.0])))
    >>> later == first  # the first measurement of a task stays its baseline
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from sequoia.settings.pa.pairs import PreferencePair

Value = TypeVar("Value")


@dataclasses.dataclass
class Prepared:
    """The tasks and evaluation tools :meth:`PreferenceSetting.prepare` loads (not saved: loaded again on resume).

    Attributes:
        task_names: each task's name, in sequence order.
        train: each task's training pairs.
        test: each task's evaluation pairs (test pairs, or validation pairs held out of training).
        tokenizer: the model's tokenizer, for length checks and token counts as methods see them.
        tokens: each reply's token count, counted once per run (:class:`sequoia.lm.tokens.TokenCache`).
        probes: the capability probes, by metric name (``capability_<probe>``).
        held_out: preference sets only scored, by metric name (``preference_accuracy@<set>``).
        lm_eval: the lm-eval task manager of ``--eval.lm_eval_tasks``, or ``None``.
        reward_model: the reward model of ``--eval.reward_model``, or ``None``.
        reference: the base model for the sampled KL, or ``None``.
    """

    task_names: list[str]
    train: list[list[PreferencePair]]
    test: list[list[PreferencePair]]
    tokenizer: Any
    tokens: Any
    probes: dict[str, Any] = dataclasses.field(default_factory=dict)
    held_out: dict[str, list[PreferencePair]] = dataclasses.field(default_factory=dict)
    lm_eval: Any = None
    reward_model: Any = None
    reference: Any = None


@dataclasses.dataclass
class Baseline:
    """The untrained method's scores, by task (or held-out set): the reference every later evaluation compares with.

    Attributes:
        logprobs: per task, the log-probs of the chosen and the rejected test replies.
        reply_tokens: per task, the token counts of the chosen and the rejected test replies.
        rewards: per task, the rewards of the untrained method's generated replies.
        held_out: per held-out set, the log-probs of its chosen and rejected replies.
    """

    logprobs: dict[int, tuple[torch.Tensor, torch.Tensor]] = dataclasses.field(default_factory=dict)
    reply_tokens: dict[int, tuple[torch.Tensor, torch.Tensor]] = dataclasses.field(default_factory=dict)
    rewards: dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)
    held_out: dict[str, tuple[torch.Tensor, torch.Tensor]] = dataclasses.field(default_factory=dict)

    @staticmethod
    def of(table: dict[Any, Value], key: Any, measure: Callable[[], Value]) -> Value:
        """``table[key]``, measured now where this is its first evaluation (row 0: the untrained method)."""
        if key not in table:
            table[key] = measure()
        return table[key]
