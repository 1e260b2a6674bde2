"""What a preference-alignment setting asks of a method at test time (:mod:`sequoia.protocols`).

Every method scores replies (:class:`ScoresReplies`); those that can also write
replies (:class:`Generates`) get their samples scored by a reward model and kept as
examples. :func:`generate_replies` asks a method for replies where it can write them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class ScoresReplies(Protocol):
    """Scores replies to prompts: the evaluation of every preference pair, probe and held-out set."""

    def logprobs(self, prompts: list, responses: list[str], task_id: int | None) -> torch.Tensor:
        """The summed log-probability of each response given its prompt (chat messages)."""


@runtime_checkable
class Generates(Protocol):
    """Writes replies to prompts (optional: a method without it is scored on its log-probabilities alone)."""

    def generate(self, prompts: list, max_new_tokens: int, sample: bool = False) -> list[str] | None:
        """A reply to each prompt, greedy, or sampled at temperature 1 where ``sample`` (the sampled KL needs it);
        ``None`` where this method cannot generate after all."""


def generate_replies(method: Any, prompts: list, max_new_tokens: int, sample: bool = False) -> list[str] | None:
    """``method``'s replies to ``prompts``, or ``None`` where it does not generate.

    Example:
        >>> generate_replies(object(), ["hi"], 4) is None
        True
    """
    if not isinstance(method, Generates):
        return None
    return method.generate(prompts, max_new_tokens, sample)
