"""Summed log-probabilities of completions, in one padded forward pass."""

import inspect
from dataclasses import dataclass

import torch


@dataclass
class ReplyScores:
    """A causal LM's scores of completions (replies) given their prompts, with gradients.

    Attributes:
        logprobs: summed log-probability of each completion, shape ``(N,)``.
        tokens: completion lengths in tokens, shape ``(N,)``.
        logits: the logits that predict each completion token, shape ``(N, L, vocab)``,
            ``L`` the longest completion; completions sit at the end of their row.
        mask: which of those ``L`` positions hold a completion token, shape ``(N, L)``.
    """

    logprobs: torch.Tensor
    tokens: torch.Tensor
    logits: torch.Tensor
    mask: torch.Tensor


def pad_left(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into ``(ids, attention_mask)``.

    Left padding puts every completion at the end of its row, so that the forward
    pass can stop computing logits before the longest completion starts.
    """
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, width - len(sequence):] = torch.as_tensor(sequence, dtype=torch.long)
        mask[row, width - len(sequence):] = 1
    return ids, mask


def _accepts_logits_to_keep(model: torch.nn.Module) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def completion_logprobs(model: torch.nn.Module, prompts: list[list[int]], completions: list[list[int]],
                        pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each completion given its prompt, and its token count.

    Returns:
        ``(logprob_sums, token_counts)``, each of shape ``(len(prompts),)``.
    """
    scores = reply_scores(model, prompts, completions, pad_id)
    return scores.logprobs, scores.tokens


def reply_scores(model: torch.nn.Module, prompts: list[list[int]], completions: list[list[int]],
                 pad_id: int) -> ReplyScores:
    """Score each completion given its prompt in one padded forward pass.

    Only completion tokens count (the prompt is context). Logits are computed only
    for the last ``longest completion`` positions, where the model supports it.
    """
    sequences = [p + c for p, c in zip(prompts, completions)]
    device = next(model.parameters()).device
    ids, attention = (tensor.to(device) for tensor in pad_left(sequences, pad_id))
    positions = (attention.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift positions
    longest = max(len(c) for c in completions)
    keep = longest + 1 if _accepts_logits_to_keep(model) else 0
    kwargs = {"logits_to_keep": keep} if keep else {}
    logits = model(input_ids=ids, attention_mask=attention, position_ids=positions, use_cache=False,
                   **kwargs).logits
    # logits[:, t] predicts token t + 1; the last `longest` tokens hold every completion.
    logits = logits[:, -longest - 1 : -1]
    targets = ids[:, -longest:]
    lengths = torch.as_tensor([len(c) for c in completions])
    completion_mask = torch.arange(longest).unsqueeze(0) >= (longest - lengths).unsqueeze(1)
    token_logprobs = selective_log_softmax(logits, targets)
    mask = completion_mask.to(device)
    return ReplyScores((token_logprobs * mask).sum(-1), lengths.to(device), logits, mask)


def selective_log_softmax(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log_softmax(logits).gather(targets)`` without materialising the full log-softmax.

    Row by row, so the float32 copy of the logits that ``logsumexp`` needs stays
    one row large.
    """
    rows = []
    for row_logits, row_targets in zip(logits, targets):
        row_logits = row_logits.float()
        picked = row_logits.gather(-1, row_targets.unsqueeze(-1)).squeeze(-1)
        rows.append(picked - torch.logsumexp(row_logits, dim=-1))
    return torch.stack(rows)
