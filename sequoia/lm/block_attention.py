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

On a CUDA GPU in half precision the same layout goes to FlashAttention's variable-length
kernel as torch ships it (``torch.nn.attention.varlen``): every prompt of the batch in one
call, every reply (its queries against its prompt's keys and its own) in another. Elsewhere
it is one SDPA call per prompt and per reply.

The function is registered with transformers' ``AttentionInterface`` under the name
``sequoia_blocks`` and behaves exactly as ``sdpa`` unless :func:`blocks` is active,
so generation and ordinary forward passes of a model switched to it are unchanged.

Example:
    >>> import torch
    >>> from transformers.integrations.sdpa_attention import sdpa_attention_forward
    >>> from sequoia.lm.packing import Group, pack
    >>> rows = pack([Group([1, 2], [[3, 6], [4, 5, 7]])], budget=8, pad_id=0)
    >>> module = torch.nn.Module()
    >>> q, k, v = (torch.randn(1, 2, 5, 4) for _ in range(3))
    >>> with blocks(rows.spans, width=5):
    ...     split, _ = block_attention(module, q, k, v, rows.mask, is_causal=False)
    >>> whole, _ = sdpa_attention_forward(module, q, k, v, rows.mask, is_causal=False)
    >>> torch.allclose(split, whole, atol=1e-6)
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

NAME = "sequoia_blocks"

_ACTIVE: ContextVar["Layout | None"] = ContextVar("sequoia_attention_blocks", default=None)

_SDPA_TAKES_GQA = tuple(int(part) for part in torch.__version__.split(".")[:2]) >= (2, 5)
"""Whether SDPA takes ``enable_gqa`` (torch 2.5 and later)."""

VarlenKernel = Callable[..., torch.Tensor]
"""A variable-length attention function with the signature of torch's ``varlen_attn``."""


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
    """The calls of a row whose groups lie at ``groups`` (:class:`sequoia.lm.packing.GroupSpan`).

    Example (a row with a stem of 2 tokens, two prompts of 1 token and a reply each):
        >>> from sequoia.lm.packing import Group, pack
        >>> rows = pack([Group([1, 2, 3], [[4, 7]]), Group([1, 2, 5], [[6, 8]])], budget=16, pad_id=0, stems=True)
        >>> plan = plan_row(rows.spans[0], width=6, device=torch.device("cpu"))
        >>> plan.sizes, [(queries, keys) for queries, keys, _ in plan.calls]
        ([2, 1, 1, 1, 1, 0], [(0, [0]), (1, [0, 1]), (2, [0, 1, 2]), (3, [0, 3]), (4, [0, 3, 4])])
    """
    stem = groups[0].stem[1] - groups[0].stem[0]
    calls: list[tuple[int, list[int], torch.Tensor | None]] = [(0, [0], None)] if stem else []
    context = [0] if stem else []  # the segments every query of the row sees before its group's own
    segment, seen = len(context), _SeenMasks(device)
    for group in groups:
        prompt, length = segment, group.prompt[1] - group.prompt[0]
        calls.append((prompt, [*context, prompt], seen(stem, length) if stem else None))
        replies = [(prompt + k, end - start) for k, (start, end) in enumerate(group.replies, start=1)]
        # A reply of one token lays out none (:func:`sequoia.lm.packing.pack`): its segment is empty, and has no call.
        calls += [(reply, [*context, prompt, reply], seen(stem + length, size)) for reply, size in replies if size]
        segment += len(replies) + 1
    return RowPlan(_segment_sizes(groups, stem, width), calls)


def _segment_sizes(groups: list, stem: int, width: int) -> list[int]:
    """A row's segments in order: its stem (if any), each prompt and its replies, then the padding."""
    bounds = [0] + ([stem] if stem else []) + [end for group in groups for _, end in (group.prompt, *group.replies)]
    return [b - a for a, b in zip(bounds, bounds[1:])] + [width - bounds[-1]]


class _SeenMasks:
    """``(own, before + own)`` masks: every key before, and its own keys up to itself; each shape built once."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.built = device, {}

    def __call__(self, before: int, own: int) -> torch.Tensor:
        if (before, own) not in self.built:
            causal = torch.ones(own, own, dtype=torch.bool, device=self.device).tril()
            visible = torch.ones(own, before, dtype=torch.bool, device=self.device)
            self.built[before, own] = torch.cat([visible, causal], 1)
        return self.built[before, own]


@dataclass
class VarlenPlan:
    """The batch's prompts and replies as two variable-length batches (FlashAttention's layout).

    Positions are flat (``row * width + position``). Prompts attend causally to
    themselves; each reply's queries attend to its prompt's keys followed by its own
    keys, causally aligned at the end (query ``i`` of a reply of ``n`` tokens after a
    prompt of ``p`` sees keys ``0 .. p + i``).
    """

    prompt_tokens: torch.Tensor
    prompt_starts: torch.Tensor
    longest_prompt: int
    reply_queries: torch.Tensor
    reply_keys: torch.Tensor
    query_starts: torch.Tensor
    key_starts: torch.Tensor
    longest_reply: int
    longest_keys: int


def plan_varlen(spans: list, width: int, device: torch.device) -> VarlenPlan:
    """The variable-length layout of rows whose groups lie at ``spans``.

    Example:
        >>> from sequoia.lm.packing import Group, pack
        >>> rows = pack([Group([1, 2], [[3, 6], [4, 5, 7]])], budget=8, pad_id=0)
        >>> plan = plan_varlen(rows.spans, width=5, device=torch.device("cpu"))
        >>> plan.reply_queries.tolist(), plan.reply_keys.tolist(), plan.key_starts.tolist()
        ([2, 3, 4], [0, 1, 2, 0, 1, 3, 4], [0, 3, 7])
    """
    prompts, queries, keys = [], [], []
    prompt_lengths, query_lengths, key_lengths = [], [], []

    def attend(own: list[int], seen: list[int]) -> None:  # queries `own` see `seen` then themselves, causally
        queries.extend(own)
        keys.extend(seen + own)
        query_lengths.append(len(own))
        key_lengths.append(len(seen) + len(own))

    for row, groups in enumerate(spans):
        stem = list(range(row * width + groups[0].stem[0], row * width + groups[0].stem[1]))
        if stem:  # the stem attends to itself; each prompt after it, as a reply does to its prompt
            prompts += stem
            prompt_lengths.append(len(stem))
        for group in groups:
            prompt = list(range(row * width + group.prompt[0], row * width + group.prompt[1]))
            if stem:
                attend(prompt, stem)
            else:
                prompts += prompt
                prompt_lengths.append(len(prompt))
            for start, end in group.replies:
                if end > start:  # a reply of one token lays out none
                    attend(list(range(row * width + start, row * width + end)), stem + prompt)

    def starts(lengths: list[int]) -> torch.Tensor:
        return torch.tensor([0] + lengths, dtype=torch.int32, device=device).cumsum(0, dtype=torch.int32)

    def positions(values: list[int]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.long, device=device)

    return VarlenPlan(positions(prompts), starts(prompt_lengths), max(prompt_lengths), positions(queries),
                      positions(keys), starts(query_lengths), starts(key_lengths), max(query_lengths),
                      max(key_lengths))


@dataclass
class Layout:
    """The packed rows' groups while :func:`blocks` is active, with each form of plan built once per forward pass."""

    spans: list
    width: int
    kernel: VarlenKernel | None
    plans: dict = field(default_factory=dict)

    def rows(self, device: torch.device) -> list[RowPlan]:
        if "rows" not in self.plans:
            self.plans["rows"] = [plan_row(groups, self.width, device) for groups in self.spans]
        return self.plans["rows"]

    def varlen(self, device: torch.device) -> VarlenPlan:
        if "varlen" not in self.plans:
            self.plans["varlen"] = plan_varlen(self.spans, self.width, device)
        return self.plans["varlen"]


@contextmanager
def blocks(spans: list, width: int, kernel: VarlenKernel | None = None) -> Iterator[None]:
    """Inside the block, models using :data:`NAME` attend within ``spans`` (:attr:`PackedRows.spans`) only.

    ``kernel``: a variable-length attention function to use (torch's ``varlen_attn``
    signature); by default FlashAttention's, where the inputs are half precision on a
    CUDA GPU and torch has it, else SDPA per prompt and reply. The plans are built on
    the attention inputs' device, at the first layer.
    """
    token = _ACTIVE.set(Layout(spans, width, kernel))
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

    layout = _ACTIVE.get()
    if layout is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if kwargs.get("softcap") is not None or kwargs.get("position_bias") is not None:
        raise ValueError("attention per prompt and reply takes no soft-capping or position bias")
    options = {"dropout_p": kwargs.get("dropout", 0.0), "scale": kwargs.get("scaling")}
    kernel = layout.kernel or flash_varlen(query)
    if kernel is not None and not options["dropout_p"]:
        return _varlen_attention(query, key, value, layout.varlen(query.device), kernel, options["scale"]), None
    dtype = query.dtype
    query, key, value = _for_sdpa(query, key, value, options)
    rows = [_row_attention(query[row], key[row], value[row], plan, options)
            for row, plan in enumerate(layout.rows(query.device))]
    return torch.stack(rows).to(dtype), None


def _for_sdpa(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              options: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inputs as the per-segment SDPA calls take them, ``options`` told of grouped-query heads."""
    if query.device.type == "cpu" and query.dtype in (torch.bfloat16, torch.float16):
        # The CPU's bf16 attention backward is 2-4 times slower than float32's at these sizes
        # (8 prompts and 16 replies a layer, 20-150 tokens each); the blocks are small, so the
        # casts cost little, and attention is computed more precisely.
        query, key, value = query.float(), key.float(), value.float()
    repeats = query.shape[1] // key.shape[1]  # grouped-query attention: each key head serves `repeats` queries
    if repeats > 1 and _SDPA_TAKES_GQA:  # SDPA reads each key head for its queries, without copies
        options["enable_gqa"] = True
    elif repeats > 1:
        key, value = key.repeat_interleave(repeats, 1), value.repeat_interleave(repeats, 1)
    return query, key, value


def flash_varlen(query: torch.Tensor) -> VarlenKernel | None:
    """torch's FlashAttention variable-length kernel where it serves ``query`` (half precision on CUDA), else ``None``."""
    if not query.is_cuda or query.dtype not in (torch.float16, torch.bfloat16):
        return None
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:  # torch before 2.10
        return None
    return varlen_attn


def reference_varlen(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, cu_seq_q: torch.Tensor,
                     cu_seq_k: torch.Tensor, max_q: int, max_k: int, *, scale: float | None = None,
                     window_size: tuple[int, int] = (-1, -1), enable_gqa: bool = False,
                     num_splits: int | None = None) -> torch.Tensor:
    """What torch's ``varlen_attn`` computes, sequence by sequence with SDPA (for tests, on any device).

    Causal (``window_size=(-1, 0)``) aligns the last query with the last key, as
    FlashAttention does when a sequence has fewer queries than keys.
    """
    if window_size not in ((-1, -1), (-1, 0)):
        raise ValueError(f"window_size {window_size}: only (-1, -1) and (-1, 0) are reproduced")
    outputs = []
    for i in range(len(cu_seq_q) - 1):
        q = query[cu_seq_q[i]:cu_seq_q[i + 1]].transpose(0, 1)
        k, v = (t[cu_seq_k[i]:cu_seq_k[i + 1]].transpose(0, 1) for t in (key, value))
        if enable_gqa:
            k, v = (t.repeat_interleave(q.shape[0] // t.shape[0], 0) for t in (k, v))
        mask = None
        if window_size == (-1, 0):
            mask = torch.ones(q.shape[1], k.shape[1], dtype=torch.bool, device=q.device).tril(k.shape[1] - q.shape[1])
        outputs.append(F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale).transpose(0, 1))
    return torch.cat(outputs)


def _varlen_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, plan: VarlenPlan,
                      kernel: VarlenKernel, scale: float | None) -> torch.Tensor:
    """Attention ``(rows, T, heads, dim)`` from ``(rows, heads, T, dim)`` inputs: one kernel call for all
    prompts, one for all replies."""
    rows, heads, width, _ = query.shape

    def flat(tensor: torch.Tensor) -> torch.Tensor:  # (rows * T, heads, dim)
        return tensor.transpose(1, 2).reshape(rows * width, tensor.shape[1], tensor.shape[-1])

    q, k, v = flat(query), flat(key), flat(value)
    options = {"scale": scale, "window_size": (-1, 0), "enable_gqa": k.shape[1] != heads, "num_splits": 1}
    prompts = kernel(q[plan.prompt_tokens], k[plan.prompt_tokens], v[plan.prompt_tokens], plan.prompt_starts,
                     plan.prompt_starts, plan.longest_prompt, plan.longest_prompt, **options)
    replies = kernel(q[plan.reply_queries], k[plan.reply_keys], v[plan.reply_keys], plan.query_starts,
                     plan.key_starts, plan.longest_reply, plan.longest_keys, **options)
    # num_splits=1: each sequence reduced alone, so a reply's result does not depend on its batch.
    out = q.new_zeros(rows * width, heads, value.shape[-1])
    out = out.index_copy(0, plan.prompt_tokens, prompts).index_copy(0, plan.reply_queries, replies)
    return out.view(rows, width, heads, value.shape[-1])


def _row_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, plan: RowPlan,
                   options: dict) -> torch.Tensor:
    """One row's attention ``(T, heads, dim)`` from queries ``(heads, T, dim)`` and keys and values ``(key heads,
    T, dim)`` (fewer heads: grouped-query attention, which ``options`` then enables), call by call of ``plan``."""
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
