"""Attention in packed rows computed per prompt and per reply: no time on masked-out pairs, and each
reply's result independent of what else shares its row.

A packed row (:mod:`sequoia.lm.packing`) holds groups that never attend to each other,
and in a group each reply attends to the prompt and to itself only. SDPA with the
row's 4D mask would still compute every query-key pair of the row and mask most of them
away (for a row of 8 preference pairs, over a quarter of a SmolLM2 training step on the
CPU). Here each prompt's queries meet the prompt's keys, and each reply's queries the
prompt's keys and its own: one SDPA call for each. So a reply is computed the same way
whichever replies and groups share its row or its batch (or its rank, under several
processes): two identical replies get identical scores, as they do unpacked.

The function is registered with transformers' ``AttentionInterface`` under the name
``sequoia_blocks`` and behaves exactly as ``sdpa`` unless :func:`blocks` is active,
so generation and ordinary forward passes of a model switched to it are unchanged.

Example:
    >>> import torch
    >>> from transformers.integrations.sdpa_attention import sdpa_attention_forward
    >>> from sequoia.lm.packing import Group, pack
    >>> rows = pack([Group([1, 2], [[3], [4, 5]])], budget=8, pad_id=0)
    >>> module = torch.nn.Module()
    >>> q, k, v = (torch.randn(1, 2, 5, 4) for _ in range(3))
    >>> with blocks(rows.spans, width=5):
    ...     split, _ = block_attention(module, q, k, v, rows.mask, is_causal=False)
    >>> whole, _ = sdpa_attention_forward(module, q, k, v, rows.mask, is_causal=False)
    >>> torch.allclose(split, whole, atol=1e-6)
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
import torch.nn.functional as F

NAME = "sequoia_blocks"

_ACTIVE: ContextVar[list["RowPlan"] | None] = ContextVar("sequoia_attention_blocks", default=None)


@dataclass
class RowPlan:
    """One row's attention calls, the same in every layer: built once per forward pass.

    Attributes:
        sizes: the row's segments in order (each prompt, its replies, then padding), for one ``split``.
        calls: per call, the query segment, the key segments and the mask (``None``: causal).
    """

    sizes: list[int]
    calls: list[tuple[int, list[int], torch.Tensor | None]]


def plan_row(groups: list, width: int, device: torch.device) -> RowPlan:
    """The calls of a row whose groups lie at ``groups`` (:class:`sequoia.lm.packing.GroupSpan`)."""
    bounds = [0] + [end for group in groups for _, end in (group.prompt, *group.replies)]
    sizes = [b - a for a, b in zip(bounds, bounds[1:])] + [width - bounds[-1]]
    calls, segment, masks = [], 0, {}
    for group in groups:
        prompt, length = segment, group.prompt[1] - group.prompt[0]
        calls.append((prompt, [prompt], None))
        for start, end in group.replies:
            segment += 1
            shape = (length, end - start)
            if shape not in masks:  # a reply's queries see every prompt key and its own keys up to themselves
                causal = torch.ones(shape[1], shape[1], dtype=torch.bool, device=device).tril()
                masks[shape] = torch.cat([torch.ones(shape[1], length, dtype=torch.bool, device=device), causal], 1)
            calls.append((segment, [prompt, segment], masks[shape]))
        segment += 1
    return RowPlan(sizes, calls)


@contextmanager
def blocks(spans: list, width: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Inside the block, models using :data:`NAME` attend within ``spans`` (:attr:`PackedRows.spans`) only."""
    token = _ACTIVE.set([plan_row(groups, width, torch.device(device)) for groups in spans])
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def block_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                    attention_mask: torch.Tensor | None, **kwargs) -> tuple[torch.Tensor, None]:
    """SDPA per prompt and per reply of each row while :func:`blocks` is active, else transformers' SDPA.

    Shapes as transformers gives them: ``query`` ``(rows, heads, T, dim)``; returns
    ``(rows, T, heads, dim)``.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    plans = _ACTIVE.get()
    if plans is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if kwargs.get("softcap") is not None or kwargs.get("position_bias") is not None:
        raise ValueError("attention per prompt and reply takes no soft-capping or position bias")
    dtype = query.dtype
    if query.device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
        # The CPU's bf16 attention backward is 2-4 times slower than float32's at these sizes
        # (8 prompts and 16 replies a layer, 20-150 tokens each); the blocks are small, so the
        # casts cost little, and attention is computed more precisely.
        query, key, value = query.float(), key.float(), value.float()
    repeats = query.shape[1] // key.shape[1]  # grouped-query attention: each key head serves `repeats` queries
    options = {"dropout_p": kwargs.get("dropout", 0.0), "scale": kwargs.get("scaling")}
    rows = [_row_attention(query[row], key[row].repeat_interleave(repeats, 0),
                           value[row].repeat_interleave(repeats, 0), plan, options)
            for row, plan in enumerate(plans)]
    return torch.stack(rows).to(dtype), None


def _row_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, plan: RowPlan,
                   options: dict) -> torch.Tensor:
    """One row's attention ``(T, heads, dim)`` from ``(heads, T, dim)`` inputs, call by call of ``plan``."""
    # The row cut once into its segments: the backward pass of one split is one concatenation,
    # where that of many slices would fill a row-sized zero tensor each.
    qs, ks, vs = (tensor.split(plan.sizes, dim=1) for tensor in (query, key, value))
    pieces = []
    for queries, keys, mask in plan.calls:
        k = ks[keys[0]] if len(keys) == 1 else torch.cat([ks[i] for i in keys], dim=1)
        v = vs[keys[0]] if len(keys) == 1 else torch.cat([vs[i] for i in keys], dim=1)
        out = F.scaled_dot_product_attention(qs[queries][None], k[None], v[None], attn_mask=mask,
                                             is_causal=mask is None, **options)
        pieces.append(out[0].transpose(0, 1))
    if plan.sizes[-1]:  # padding at the end of the row: its outputs are never read
        pieces.append(query.new_zeros(plan.sizes[-1], query.shape[0], value.shape[-1]))
    return torch.cat(pieces)


def register() -> None:
    """Make :data:`NAME` an attention implementation transformers knows (masks built as for SDPA)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, block_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)


def use_block_attention(model: torch.nn.Module) -> bool:
    """Switch an SDPA model to :data:`NAME` (same results, less work on packed rows); whether it switched."""
    if getattr(model.config, "_attn_implementation", None) == NAME:
        return True
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    register()
    try:
        model.set_attn_implementation(NAME)
    except (ValueError, AttributeError, NotImplementedError):
        return False
    return getattr(model.config, "_attn_implementation", None) == NAME
