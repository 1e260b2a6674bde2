"""Summed log-probabilities of completions the plain way: one left-padded row per completion, full logits.

This is the layout TRL's ``concatenated_forward`` uses, kept as the reference that
:mod:`sequoia.lm.scoring` (shared prompts, packed rows, chunked head) is tested
against, and for left-padded batches of prompts (generation, the experts' router).
"""

import torch


def pad_left(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-pad token lists into ``(ids, attention_mask)``.

    Left padding puts every sequence's end at the end of its row, where generation continues.

    Example:
        >>> ids, mask = pad_left([[5, 6], [7]], pad_id=0)
        >>> ids.tolist(), mask.tolist()
        ([[5, 6], [0, 7]], [[1, 1], [0, 1]])
    """
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, width - len(sequence):] = torch.as_tensor(sequence, dtype=torch.long)
        mask[row, width - len(sequence):] = 1
    return ids, mask


def completion_logprobs(model: torch.nn.Module, prompts: list[list[int]], completions: list[list[int]],
                        pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of each completion given its prompt, and its token count (the reference path).

    One left-padded row per completion, the model's own logits for the last
    ``longest completion + 1`` positions, ``log_softmax`` in float32.

    Returns:
        ``(logprob_sums, token_counts)``, each of shape ``(len(prompts),)``.
    """
    sequences = [p + c for p, c in zip(prompts, completions)]
    device = next(model.parameters()).device
    ids, attention = (tensor.to(device) for tensor in pad_left(sequences, pad_id))
    positions = (attention.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift positions
    longest = max(len(c) for c in completions)
    logits = model(input_ids=ids, attention_mask=attention, position_ids=positions, use_cache=False,
                   logits_to_keep=longest + 1).logits
    # logits[:, t] predicts token t + 1; the last `longest` tokens hold every completion.
    logits = logits[:, -longest - 1 : -1].float()
    targets = ids[:, -longest:]
    lengths = torch.as_tensor([len(c) for c in completions])
    mask = (torch.arange(longest).unsqueeze(0) >= (longest - lengths).unsqueeze(1)).to(device)
    token_logprobs = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (token_logprobs * mask).sum(-1), lengths.to(device)
