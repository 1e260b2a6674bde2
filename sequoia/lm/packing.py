"""Packing prompts and their replies into rows without padding, each prompt computed once.

A *group* is one prompt and the replies scored after it: a preference pair's chosen
and rejected replies (DPO), one chosen reply (SFT), the answer choices of a
multiple-choice item. A group becomes one stretch of a row, ``[prompt | reply 1 |
reply 2 | ...]``, in which each reply attends to the prompt and to itself but not to
the other replies, and its position ids continue from the end of the prompt, as if it
followed the prompt alone (prefix sharing: Wang et al. 2024, "Accelerating Direct
Preference Optimization with Prefix Sharing", arXiv 2410.20305). Several groups share
a row up to a token budget, blocked off from each other (block-diagonal attention), so
no layer computes on padding except at the end of rows shorter than the longest. A
reply's last token is scored (the token before it predicts it) but not laid out: its
own output would predict the token after the reply, which nothing scores.

With ``stems=True`` the prompts of a row that begin alike (a chat template's system
prompt) share that beginning too: the row starts with the *stem*, the longest prefix
common to all its prompts, computed once; each prompt's remaining tokens attend to the
stem and to themselves, with positions continuing after it, and its replies to the stem,
their prompt and themselves. Every score stays what it is without the stem (up to float
rounding: where a prompt is cut depends on what shares its row); only the repeated tokens
are no longer computed. :class:`sequoia.lm.scoring.ReplyScorer` asks for stems by default.

The attention rules travel as a 4D mask ``(rows, 1, T, T)`` that transformers passes
to the attention kernel as it is; :func:`sequoia.lm.scoring` checks once per model
that packed and padded scores agree, and falls back to padded rows where they do not.

Example:
    >>> rows = pack([Group([1, 2], [[3, 6], [4, 5, 7]])], budget=16, pad_id=0)
    >>> rows.input_ids.tolist()             # 6 and 7 end their replies: scored, not laid out
    [[1, 2, 3, 4, 5]]
    >>> rows.position_ids.tolist()          # the second reply starts where the prompt ends
    [[0, 1, 2, 2, 3]]
    >>> rows.mask[0, 0].int().tolist()     # reply 2 sees the prompt and itself, not reply 1
    [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 1, 0, 1, 0], [1, 1, 0, 1, 1]]
    >>> rows.predictors.tolist(), rows.targets.tolist(), rows.reply_of_token.tolist()
    ([1, 2, 1, 3, 4], [3, 6, 4, 5, 7], [0, 0, 1, 1, 1])
    >>> pack([Group([1], [[2]]), Group([3, 4], [[5, 6], [7]])], budget=16, pad_id=0).spans
    ... # doctest: +NORMALIZE_WHITESPACE
    [[GroupSpan(prompt=(0, 1), replies=((1, 1),), stem=(0, 0)),
      GroupSpan(prompt=(1, 3), replies=((3, 4), (4, 4)), stem=(0, 0))]]
    >>> stemmed = pack([Group([1, 2, 3], [[4, 7]]), Group([1, 2, 5], [[6, 8]])], budget=16, pad_id=0, stems=True)
    >>> stemmed.input_ids.tolist(), stemmed.position_ids.tolist()  # the common [1, 2] once
    ([[1, 2, 3, 4, 5, 6]], [[0, 1, 2, 3, 2, 3]])
    >>> stemmed.mask[0, 0, 4:].int().tolist()  # the second prompt and its reply see the stem, not the first group
    [[1, 1, 0, 0, 1, 0], [1, 1, 0, 0, 1, 1]]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Group:
    """A prompt's token ids and the token ids of each reply scored after it (each reply non-empty)."""

    prompt: list[int]
    replies: list[list[int]]

    def __len__(self) -> int:
        return len(self.prompt) + sum(len(reply) for reply in self.replies)

    @property
    def row_tokens(self) -> int:
        """Tokens it takes in a packed row: a reply's last token is scored but not laid out (see :func:`pack`)."""
        return len(self) - len(self.replies)


@dataclass
class PackedRows:
    """Groups laid out in rows, with what a forward pass and the scoring of replies need.

    Attributes:
        input_ids, position_ids: ``(rows, T)``; the end of a shorter row is padding.
        block, branch: ``(rows, T)``: which group of its row each token belongs to (-1:
            padding, :data:`STEM`: the row's stem), and whether it is the prompt (0) or which
            reply (k + 1); :attr:`mask` follows from them.
        predictors: for each reply token, in reply order, the flat index (``row * T + t``)
            of the position whose output predicts it: the previous token of its reply, or
            the prompt's last token for a reply's first token.
        targets: each reply token's id, aligned with ``predictors``.
        reply_of_token: which reply (in the order the groups listed them) each token belongs to.
        reply_lengths: tokens of each reply, in that order.
        spans: per row, each group's prompt ``(start, end)`` and its replies' ``(start, end)``, a reply's
            tokens but its last (for :mod:`sequoia.lm.block_attention`).
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    block: torch.Tensor
    branch: torch.Tensor
    predictors: torch.Tensor
    targets: torch.Tensor
    reply_of_token: torch.Tensor
    reply_lengths: torch.Tensor
    spans: list[list["GroupSpan"]]

    @property
    def mask(self) -> torch.Tensor:
        """``(rows, 1, T, T)`` booleans, ``True`` where a query token (dim 2) may attend to a key token (dim 3);
        a padding token attends to itself only. Built on demand: it has ``T x T`` entries a row."""
        return attention_mask(self.block, self.branch)

    @property
    def tokens(self) -> int:
        """Tokens the forward pass computes on, padding included."""
        return self.input_ids.numel()


def assign_rows(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Which groups share a row: first-fit decreasing within ``budget`` tokens per row.

    A group longer than the budget gets a row of its own. Rows keep their groups in
    input order, so the layout is the same for the same lengths.

    Example:
        >>> assign_rows([5, 3, 4, 2], budget=7)
        [[0, 3], [1, 2]]
        >>> assign_rows([9, 1], budget=4)
        [[0], [1]]
    """
    if budget <= 0:
        raise ValueError(f"the token budget of a row must be positive, got {budget}")
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        row = next((r for r, free in enumerate(room) if free >= lengths[index]), None)
        if row is None:
            rows.append([])
            room.append(budget)
            row = len(rows) - 1
        rows[row].append(index)
        room[row] -= lengths[index]
    return [sorted(row) for row in rows]


STEM = -2
"""The ``block`` of the tokens of a row's stem, which every group of the row attends to (-1 is padding)."""


@dataclass(frozen=True)
class GroupSpan:
    """Where a group lies in its row: the prompt's ``(start, end)`` tokens and each reply's (all but its last
    token, so empty for a reply of one); ``stem``, the row's shared prefix of the prompts (``(0, 0)``: none),
    which comes before ``prompt`` in the group's context."""

    prompt: tuple[int, int]
    replies: tuple[tuple[int, int], ...]
    stem: tuple[int, int] = (0, 0)


@dataclass
class _Layout:
    """One row's token-level description, before it becomes tensors."""

    ids: list[int]
    positions: list[int]
    block: list[int]  # which group (in this row) each token belongs to
    branch: list[int]  # 0 for the prompt, k + 1 for its reply k
    spans: list[GroupSpan]


def stem_length(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens at the start of every one of several ``prompts``, leaving each prompt at least one of its own.

    Example:
        >>> stem_length([[1, 2, 3], [1, 2, 4, 5]]), stem_length([[1, 2], [1, 2, 3]]), stem_length([[1, 2]])
        (2, 1, 0)
    """
    if len(prompts) < 2:
        return 0
    shortest = min(len(prompt) for prompt in prompts)
    length = 0
    while length < shortest - 1 and all(prompt[length] == prompts[0][length] for prompt in prompts):
        length += 1
    return length


def _lay_out(row_groups: list[Group], first_reply: list[int], row: int,
             predictors: list[tuple[int, int, int, int]], stems: bool = False) -> _Layout:
    """The tokens of the groups of one row; each reply token's (reply, row, position, target) into ``predictors``."""
    shared = stem_length([group.prompt for group in row_groups]) if stems else 0
    layout = _Layout(list(row_groups[0].prompt[:shared]), list(range(shared)), [STEM] * shared, [0] * shared, [])
    for block, (group, reply_base) in enumerate(zip(row_groups, first_reply)):
        start = len(layout.ids)
        layout.ids += group.prompt[shared:]
        layout.positions += range(shared, len(group.prompt))
        layout.block += [block] * (len(group.prompt) - shared)
        layout.branch += [0] * (len(group.prompt) - shared)
        last_prompt = len(layout.ids) - 1
        replies = []
        for k, reply in enumerate(group.replies):
            reply_start, inputs = len(layout.ids), reply[:-1]  # the last token predicts nothing that is scored
            replies.append((reply_start, reply_start + len(inputs)))
            layout.ids += inputs
            layout.positions += range(len(group.prompt), len(group.prompt) + len(inputs))
            layout.block += [block] * len(inputs)
            layout.branch += [k + 1] * len(inputs)
            for j, token in enumerate(reply):
                predictors.append((reply_base + k, row, last_prompt if j == 0 else reply_start + j - 1, token))
        layout.spans.append(GroupSpan((start, last_prompt + 1), tuple(replies), (0, shared)))
    return layout


def pack(groups: Sequence[Group], budget: int, pad_id: int, stems: bool = False) -> PackedRows:
    """Lay ``groups`` out in rows of at most ``budget`` tokens (a longer group alone in its row); with
    ``stems``, the prefix common to the prompts of a row computed once (see the module's docstring).

    Every group needs a non-empty prompt: the first reply token is predicted from the
    prompt's last token.
    """
    _check(groups)
    lengths = [len(reply) for group in groups for reply in group.replies]
    layouts, predictors = _layouts(groups, budget, stems)
    width = max(len(layout.ids) for layout in layouts)
    columns = [_padded([getattr(layout, name) for layout in layouts], width, fill)
               for name, fill in (("ids", pad_id), ("positions", 0), ("block", -1), ("branch", 0))]
    reply, row, position, target = torch.as_tensor(predictors, dtype=torch.long).T
    return PackedRows(*columns, row * width + position, target, reply, torch.as_tensor(lengths),
                      [layout.spans for layout in layouts])


def _layouts(groups: Sequence[Group], budget: int,
             stems: bool = False) -> tuple[list[_Layout], list[tuple[int, int, int, int]]]:
    """Each row's layout, and every reply token's ``(reply, row, predicting position, token)`` in reply order."""
    first_reply = [0, *itertools.accumulate(len(group.replies) for group in groups)]
    predictors: list[tuple[int, int, int, int]] = []
    layouts = []
    for r, row in enumerate(assign_rows([group.row_tokens for group in groups], budget)):
        layouts.append(_lay_out([groups[i] for i in row], [first_reply[i] for i in row], r, predictors, stems))
    predictors.sort(key=lambda entry: entry[0])  # stable: tokens stay in order within a reply
    return layouts, predictors


def _check(groups: Sequence[Group]) -> None:
    if not groups:
        raise ValueError("pack needs at least one group")
    if not all(group.prompt and group.replies and all(group.replies) for group in groups):
        raise ValueError("every group needs a non-empty prompt and at least one non-empty reply")


def _padded(rows: list[list[int]], width: int, fill: int) -> torch.Tensor:
    """Rows of integers as one ``(rows, width)`` tensor, each filled up with ``fill``."""
    out = torch.full((len(rows), width), fill, dtype=torch.long)
    for r, values in enumerate(rows):
        out[r, : len(values)] = torch.as_tensor(values, dtype=torch.long)
    return out


def attention_mask(block: torch.Tensor, branch: torch.Tensor) -> torch.Tensor:
    """The 4D boolean mask of rows described by each token's group (``block``; -1: padding, :data:`STEM`: the
    row's stem) and branch.

    A token attends to earlier tokens of its own group that are either the prompt
    (branch 0) or of its own reply, and to the row's stem; a padding token attends to itself.
    """
    width = block.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    same_block = (block.unsqueeze(2) == block.unsqueeze(1)) & (block.unsqueeze(1) != -1)
    visible = (branch.unsqueeze(1) == 0) | (branch.unsqueeze(2) == branch.unsqueeze(1))
    stem = (block.unsqueeze(1) == STEM) & (block.unsqueeze(2) != -1)
    mask = ((same_block & visible) | stem) & causal
    padding = (block == -1).unsqueeze(2) & torch.eye(width, dtype=torch.bool)
    return (mask | padding).unsqueeze(1)
