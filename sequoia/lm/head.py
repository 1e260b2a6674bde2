"""Log-probabilities of chosen tokens from hidden states, without keeping ``[tokens, vocab]`` logits.

A causal LM's output head turns each final hidden state into logits over the whole
vocabulary (49,152 entries for SmolLM2). Scoring replies only needs, per reply token,
``logit[target] - logsumexp(logits)``; a training step also needs that number's
gradient with respect to the hidden state. Both are computed here a chunk of tokens
at a time, so that at most ``chunk x vocab`` logits exist at once, and none are kept
for the backward pass (the idea of Liger's fused linear cross-entropy, Hsu et al.
2024, in plain torch so that it runs on the CPU too).

Because a token's log-probability depends on its own hidden state only, its gradient
with respect to that state is a vector ``u`` that does not depend on anything
downstream; :class:`HeadLogprobs` computes ``u`` while the chunk's logits exist and
the backward pass is then ``grad_output * u``: no logits are recomputed.
That needs a frozen head (LoRA's default: the output layer is not adapted); a head
with trainable weights goes through :func:`torch.utils.checkpoint` instead, which
recomputes each chunk's logits in the backward pass.

Example:
    >>> head = torch.nn.Linear(4, 10, bias=False).requires_grad_(False)
    >>> hidden = torch.randn(3, 4, requires_grad=True)
    >>> targets = torch.tensor([1, 2, 3])
    >>> ours = token_logprobs(hidden, head, targets, chunk=2)
    >>> full = torch.log_softmax(head(hidden), -1).gather(-1, targets[:, None]).squeeze(-1)
    >>> torch.allclose(ours, full)
    True
    >>> torch.allclose(torch.autograd.grad(ours.sum(), hidden)[0], torch.autograd.grad(full.sum(), hidden)[0])
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint

Head = Callable[[torch.Tensor], torch.Tensor]
"""Hidden states ``(n, hidden)`` to logits ``(n, vocab)``."""

DEFAULT_CHUNK = 256
"""Tokens per chunk at most, the tokens cut into chunks of nearly one size (:func:`even_chunks`): 256 x 49,152
float32 logits are 48 MB."""


def _chunk_logprobs(head: Head, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Float32 log-probabilities of ``targets`` under ``head(hidden)``, for one chunk."""
    logits = head(hidden).float()
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def _chunk_logprobs_and_grad(head: Head, hidden: torch.Tensor,
                             targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One chunk's float32 log-probabilities of ``targets`` and their gradient with respect to ``hidden``.

    The gradient with respect to the logits is written down rather than taken through
    autograd: ``d (z[t] - logsumexp(z)) / dz = onehot(t) - softmax(z)``, computed in place
    in the chunk's one float32 copy of the logits. Autograd's way builds a zero tensor
    of the logits' size for ``gather`` and another for ``logsumexp``, and adds them.
    Only the head's own backward (for a linear head, one matrix product) goes through autograd.
    """
    hidden = hidden.detach().requires_grad_()
    with torch.enable_grad():
        logits = head(hidden)
    scores = logits.detach().to(torch.float32, copy=True)  # a copy: the head's backward may read its output
    normaliser = torch.logsumexp(scores, dim=-1, keepdim=True)
    logprobs = scores.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - normaliser.squeeze(-1)
    slope = scores.sub_(normaliser).exp_().neg_()  # -softmax
    slope[torch.arange(len(targets), device=targets.device), targets] += 1
    (grad,) = torch.autograd.grad(logits, hidden, slope.to(logits.dtype))
    return logprobs, grad


def even_chunks(total: int, chunk: int) -> int:
    """The chunk size that cuts ``total`` tokens into as few chunks as ``chunk`` allows, all of nearly one size.

    A last chunk of a few tokens costs almost as much time as a full one (its matrix
    products run far below the machine's speed), and smaller chunks keep the logits in cache.

    Example:
        >>> even_chunks(293, 256), even_chunks(256, 256), even_chunks(0, 256)
        (147, 256, 1)
    """
    if total <= 0:
        return 1
    pieces = -(-total // chunk)
    return -(-total // pieces)


class HeadLogprobs(torch.autograd.Function):
    """Per-token log-probabilities through a frozen head, the gradient taken chunk by chunk in the forward pass
    (``chunk`` tokens at a time: :func:`token_logprobs` passes it evened out)."""

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, targets: torch.Tensor, head: Head, chunk: int) -> torch.Tensor:
        wants_grad = ctx.needs_input_grad[0]
        out = torch.empty(len(hidden), dtype=torch.float32, device=hidden.device)
        grads = torch.empty_like(hidden) if wants_grad else None
        for start in range(0, len(hidden), chunk):
            piece, piece_targets = hidden[start : start + chunk], targets[start : start + chunk]
            if wants_grad:
                out[start : start + chunk], grads[start : start + chunk] = _chunk_logprobs_and_grad(
                    head, piece, piece_targets)
            else:
                with torch.no_grad():
                    out[start : start + chunk] = _chunk_logprobs(head, piece, piece_targets)
        if wants_grad:
            ctx.save_for_backward(grads)
        return out

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        (grads,) = ctx.saved_tensors
        return grad_output.unsqueeze(-1).to(grads.dtype) * grads, None, None, None


def head_is_frozen(head: Head) -> bool:
    """Whether ``head`` has no trainable weights (then :class:`HeadLogprobs` applies)."""
    parameters = head.parameters() if isinstance(head, torch.nn.Module) else getattr(head, "parameters", list)()
    return not any(p.requires_grad for p in parameters)


def token_logprobs(hidden: torch.Tensor, head: Head, targets: torch.Tensor,
                   chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """``log_softmax(head(hidden))[targets]`` per token, float32, at most ``chunk`` tokens' logits at a time."""
    chunk = even_chunks(len(hidden), chunk)
    if not torch.is_grad_enabled() or not hidden.requires_grad:
        with torch.no_grad():
            return torch.cat([_chunk_logprobs(head, hidden[s : s + chunk], targets[s : s + chunk])
                              for s in range(0, len(hidden), chunk)]) if len(hidden) else hidden.new_zeros(0).float()
    if head_is_frozen(head):
        return HeadLogprobs.apply(hidden, targets, head, chunk)
    return torch.cat([checkpoint(_chunk_logprobs, head, hidden[s : s + chunk], targets[s : s + chunk],
                                 use_reentrant=False) for s in range(0, len(hidden), chunk)])


def _chunk_kl(head: Head, student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Summed ``KL(q || p)`` over a chunk's tokens, teacher ``q`` and student ``p`` softened by ``temperature``."""
    ours = torch.log_softmax(head(student).float() / temperature, dim=-1)
    target = torch.log_softmax(head(teacher).float() / temperature, dim=-1)
    return (target.exp() * (target - ours)).sum()


def token_kl_sum(student: torch.Tensor, teacher: torch.Tensor, head: Head, temperature: float,
                 chunk: int = DEFAULT_CHUNK) -> torch.Tensor:
    """``sum_tokens sum_v q(v) (log q(v) - log p(v))``, chunk by chunk, each chunk's logits recomputed for backward.

    ``student`` and ``teacher`` are the hidden states (or, for a model scored through its
    full logits, the logits with ``head`` the identity) at the same reply tokens.

    Example:
        >>> head = torch.nn.Linear(4, 6, bias=False).requires_grad_(False)
        >>> hidden = torch.randn(5, 4)
        >>> float(token_kl_sum(hidden, hidden, head, temperature=2.0, chunk=2)) == 0.0
        True
    """
    teacher = teacher.detach()
    total = student.new_zeros((), dtype=torch.float32)
    for start in range(0, len(student), chunk):
        pieces = (head, student[start : start + chunk], teacher[start : start + chunk], temperature)
        if student.requires_grad and torch.is_grad_enabled():
            total = total + checkpoint(_chunk_kl, *pieces, use_reentrant=False)
        else:
            total = total + _chunk_kl(*pieces)
    return total
