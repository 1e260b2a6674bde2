"""Batches as plain dictionaries of equally long columns.

A column is a tensor whose first dimension is the batch, or a list. Every domain
uses this one shape (SL: ``{"x", "y"}``, RL: transitions, PA: tokenized pairs), so
that replay and EWC can store, slice and merge batches without knowing the domain.

Example:
    >>> import torch
    >>> b = {"x": torch.zeros(4, 2), "y": torch.arange(4), "note": list("abcd")}
    >>> batch_size(b)
    4
    >>> take(b, [0, 3])["note"]
    ['a', 'd']
    >>> batch_size(concat([b, b]))
    8
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import torch

Column = Union[torch.Tensor, list]
Batch = dict[str, Any]


def batch_size(batch: Batch) -> int:
    """Number of rows in a batch (the length of its first column)."""
    first = next(iter(batch.values()))
    return len(first)


def take(batch: Batch, indices: Sequence[int] | torch.Tensor) -> Batch:
    """The rows at ``indices``, in that order."""
    if isinstance(indices, torch.Tensor):
        index_list = indices.tolist()
        index_tensor = indices
    else:
        index_list = list(indices)
        index_tensor = torch.as_tensor(index_list, dtype=torch.long)
    out: Batch = {}
    for key, column in batch.items():
        if isinstance(column, torch.Tensor):
            out[key] = column[index_tensor]
        else:
            out[key] = [column[i] for i in index_list]
    return out


def concat(batches: Sequence[Batch]) -> Batch:
    """Stack batches with the same keys row-wise."""
    if not batches:
        raise ValueError("concat needs at least one batch")
    keys = batches[0].keys()
    out: Batch = {}
    for key in keys:
        columns = [b[key] for b in batches]
        if isinstance(columns[0], torch.Tensor):
            out[key] = torch.cat(columns)
        else:
            out[key] = [row for column in columns for row in column]
    return out
