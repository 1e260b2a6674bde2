"""Scoring replies with a causal LM: each prompt once, no padding, no full logits.

:class:`ReplyScorer` turns groups (a prompt and the replies scored after it, see
:mod:`sequoia.lm.packing`) into the summed log-probability of each reply:

1. the groups are packed into rows (prefix sharing, several groups a row, the beginning
   common to a row's prompts computed once, a 4D mask);
2. the model's backbone runs once over the rows;
3. the final hidden states at the positions that predict reply tokens are gathered,
   and each token's log-probability comes from the output head a chunk at a time
   (:mod:`sequoia.lm.head`): no ``[rows, length, vocab]`` logits exist.

Two checks run once per model, on a few synthetic token ids, before the first scores:

* does the head, applied to the backbone's last hidden states, give the model's own
  logits? If not (an unknown logit transform), the model's logits are used, at the
  reply positions only (the full path);
* do packed rows give the same log-probabilities as one left-padded row per reply?
  If not (a model or attention kernel that ignores 4D masks or position ids), every
  reply is scored in its own padded row, as TRL does; a one-line note says so.

Example:
    >>> from sequoia.lm.models import tiny_random_model
    >>> scorer = ReplyScorer(tiny_random_model(), pad_id=256)
    >>> scores = scorer.score([Group([1, 2, 3], [[4, 5], [6]])])
    >>> scores.logprobs.shape, scores.tokens.tolist(), scorer.mode
    (torch.Size([2]), [2, 1], 'packed')
"""

from __future__ import annotations

import sys
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal

import torch

from sequoia import progress
from sequoia.lm import block_attention
from sequoia.lm.head import DEFAULT_CHUNK, Head, token_kl_sum, token_logprobs
from sequoia.lm.logprobs import pad_left
from sequoia.lm.packing import Group, PackedRows, pack

DEFAULT_BUDGET = 2048
"""Tokens per packed row; a group longer than this gets a row of its own. Attention per prompt
and reply costs nothing across groups, but where a model takes the 4D mask itself (eager
attention) a row costs its length squared, so rows stay moderate."""

Mode = Literal["packed", "padded"]
_NOTED: set[str] = set()


def note_once(message: str) -> None:
    """Print ``sequoia: note: message`` on stderr, the first time only."""
    if message not in _NOTED:
        _NOTED.add(message)
        print(f"sequoia: note: {message}", file=sys.stderr)


@dataclass
class ReplyScores:
    """A causal LM's scores of replies given their prompts, with gradients.

    Attributes:
        logprobs: summed log-probability of each reply, shape ``(N,)``.
        tokens: reply lengths in tokens, shape ``(N,)``.
        features: what the head turns into each reply token's logits: the final hidden
            state of the position that predicts it, shape ``(M, hidden)``, M the reply
            tokens of all replies in order (or the logits themselves, with ``head`` the
            identity, for a model scored through its full logits).
        head: features to logits.
    """

    logprobs: torch.Tensor
    tokens: torch.Tensor
    features: torch.Tensor
    head: Head

    def distillation(self, teacher: "ReplyScores", temperature: float) -> torch.Tensor:
        """Mean over reply tokens of ``KL(teacher || self)`` of the next-token distributions (LwF)."""
        total = token_kl_sum(self.features, teacher.features, self.head, temperature)
        return total / max(len(self.features), 1)


def causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers causal LM inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def output_head(model: torch.nn.Module) -> tuple[torch.nn.Module, Head]:
    """The backbone (embeddings to final hidden states) and the head (hidden states to logits).

    The head applies what transformers applies after the output layer for the
    architectures that transform logits (Gemma 2's final soft-capping, Cohere's scale).
    """
    lm = causal_lm(model)
    backbone = lm.base_model
    layer = lm.get_output_embeddings()
    config = lm.config.get_text_config() if hasattr(lm.config, "get_text_config") else lm.config
    softcap = getattr(config, "final_logit_softcapping", None)
    scale = getattr(config, "logit_scale", None)
    if softcap is None and scale in (None, 1.0):
        return backbone, layer

    def head(hidden: torch.Tensor) -> torch.Tensor:
        logits = layer(hidden)
        if scale not in (None, 1.0):
            logits = logits * scale
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    head.parameters = layer.parameters  # type: ignore[attr-defined] - whether it trains
    return backbone, head


class ReplyScorer:
    """Scores groups of replies with ``model``: packed with prefix sharing where the model allows it.

    Args:
        model: a transformers causal LM, or a peft model around one.
        pad_id: the padding token id (rows shorter than the longest end in it).
        budget: tokens per packed row.
        chunk: reply tokens whose logits exist at once.
        packing: ``False`` scores every reply in its own left-padded row (the way TRL
            does), for comparison.
        stems: packed rows compute the prefix common to their prompts once
            (:func:`sequoia.lm.packing.pack`); ``False`` computes every prompt whole.
    """

    def __init__(self, model: torch.nn.Module, pad_id: int, budget: int = DEFAULT_BUDGET,
                 chunk: int = DEFAULT_CHUNK, packing: bool = True, stems: bool = True) -> None:
        self.model, self.pad_id, self.budget, self.chunk = model, pad_id, budget, chunk
        self.packing, self.stems = packing, stems
        if packing:  # the same results as SDPA, without computing attention across groups
            block_attention.use_block_attention(causal_lm(model))
        self._mode: Mode | None = None if packing else "padded"
        self._full_logits: bool | None = None

    @property
    def mode(self) -> Mode:
        """``packed`` or ``padded``, decided by the check at the first call."""
        if self._mode is None:
            self._mode = "packed" if self._packing_works() else "padded"
        return self._mode

    def score(self, groups: list[Group]) -> ReplyScores:
        """Summed log-probabilities of every reply of ``groups``, in the order the groups list them."""
        if self._full_logits is None:
            self._full_logits = not self._head_works()
        mode = self.mode
        window = sliding_window(self.model)
        if mode == "packed" and window is not None and max(len(group) for group in groups) > window:
            # One 4D mask serves every layer, so a layer with a sliding window would see past its window.
            mode = "padded"
        return self._score(groups, mode)

    # -- the two layouts ------------------------------------------------------------
    def _score(self, groups: list[Group], mode: Mode) -> ReplyScores:
        spans = None
        if mode == "packed":
            rows = pack(groups, self.budget, self.pad_id, self.stems)
            inputs = {"input_ids": rows.input_ids, "position_ids": rows.position_ids,
                      "attention_mask": self._mask(rows)}
            predictors, targets, replies, lengths = rows.predictors, rows.targets, rows.reply_of_token, rows.reply_lengths
            spans = rows.spans
        else:
            inputs, predictors, targets, replies, lengths = padded_rows(groups, self.pad_id)
        device = self._device()
        width = inputs["input_ids"].shape[1]
        with block_attention.blocks(spans, width) if spans else nullcontext():
            features, head = self._features({k: v.to(device) for k, v in inputs.items()}, predictors.to(device))
        logprobs = token_logprobs(features, head, targets.to(device), self.chunk)
        sums = torch.zeros(len(lengths), dtype=logprobs.dtype, device=device).index_add(0, replies.to(device),
                                                                                        logprobs)
        return ReplyScores(sums, lengths.to(device), features, head)

    def _features(self, inputs: dict[str, torch.Tensor], predictors: torch.Tensor) -> tuple[torch.Tensor, Head]:
        """The head's inputs at ``predictors`` (flat positions), and the head."""
        if self._full_logits:
            logits = self.model(**inputs, use_cache=False).logits
            return logits.reshape(-1, logits.shape[-1])[predictors], torch.nn.Identity()
        backbone, head = output_head(self.model)
        hidden = backbone(**inputs, use_cache=False).last_hidden_state
        return hidden.reshape(-1, hidden.shape[-1])[predictors], head

    def _mask(self, rows: PackedRows) -> torch.Tensor:
        """The rows' 4D mask in the form the model's attention takes: booleans for SDPA, additive floats for eager.

        Attention per prompt and per reply (:mod:`sequoia.lm.block_attention`) reads the
        rows' spans instead, and gets a mask of the right shape that costs no memory.
        """
        kind = attention_kind(self.model)
        if kind == block_attention.NAME:
            rows_, width = rows.input_ids.shape
            return torch.ones((), dtype=torch.bool).expand(rows_, 1, width, width)
        mask = rows.mask
        if kind == "sdpa":
            return mask
        dtype = next(self.model.parameters()).dtype
        dtype = dtype if dtype.is_floating_point else torch.float32
        return torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- the checks ---------------------------------------------------------------
    @torch.no_grad()
    def _head_works(self) -> bool:
        ids = _probe_ids(self.model, 12).unsqueeze(0).to(self._device())
        lm = causal_lm(self.model)
        backbone, head = output_head(self.model)
        with _eval(self.model):
            expected = lm(input_ids=ids, use_cache=False).logits.float()
            ours = head(backbone(input_ids=ids, use_cache=False).last_hidden_state).float()
        works = ours.shape == expected.shape and torch.allclose(ours, expected, atol=_tolerance(self.model),
                                                                rtol=1e-3)
        if not works:
            note_once(f"{type(lm).__name__}: the output head does not reproduce the model's logits from its hidden "
                      "states; reply tokens are scored through the full logits")
        return works

    @torch.no_grad()
    def _packing_works(self) -> bool:
        """Whether packed rows score a few synthetic groups as padded rows do."""
        if attention_kind(self.model) not in ("sdpa", "eager", block_attention.NAME):
            note_once(f"attention {attention_kind(self.model)!r} takes no 4D mask: every reply is scored in its "
                      "own padded row")
            return False
        if self._full_logits is None:
            self._full_logits = not self._head_works()
        ids = _probe_ids(self.model, 20).tolist()
        # The two prompts begin alike, so that rows with a stem are checked too where ``stems`` is on.
        groups = [Group(ids[:5], [ids[5:8], ids[8:12]]), Group(ids[:2] + ids[12:15], [ids[15:20]])]
        with _eval(self.model):
            try:
                packed = self._score(groups, "packed").logprobs.float()
            except Exception as error:  # noqa: BLE001 - any failure means: not this model
                packed, reason = None, f"{type(error).__name__}"
            padded = self._score(groups, "padded").logprobs.float()
        works = packed is not None and torch.allclose(packed, padded, atol=_tolerance(self.model) * 20, rtol=0)
        if not works:
            reason = reason if packed is None else "packed and padded scores differ"
            note_once(f"{type(causal_lm(self.model)).__name__} cannot score prompts shared by their replies "
                      f"({reason}): every reply is scored in its own padded row")
        return works


def padded_rows(groups: list[Group], pad_id: int):
    """One left-padded row per reply (TRL's layout): inputs, predictor positions, targets, replies, lengths."""
    sequences = [group.prompt + reply for group in groups for reply in group.replies]
    replies = [reply for group in groups for reply in group.replies]
    ids, attention = pad_left(sequences, pad_id)
    width = ids.shape[1]
    predictors, targets, owners = [], [], []
    for row, reply in enumerate(replies):
        first = row * width + width - len(reply) - 1  # the position before the reply's first token
        predictors += range(first, first + len(reply))
        targets += reply
        owners += [row] * len(reply)
    positions = (attention.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift positions
    inputs = {"input_ids": ids, "attention_mask": attention, "position_ids": positions}
    lengths = torch.as_tensor([len(r) for r in replies], dtype=torch.long)
    return (inputs, torch.as_tensor(predictors), torch.as_tensor(targets, dtype=torch.long),
            torch.as_tensor(owners), lengths)


def sliding_window(model: torch.nn.Module) -> int | None:
    """The attention window of models whose layers (some or all) attend to recent tokens only, else ``None``.

    Example:
        >>> from sequoia.lm.models import tiny_random_model
        >>> sliding_window(tiny_random_model()) is None
        True
    """
    config = causal_lm(model).config.get_text_config()
    window = getattr(config, "sliding_window", None)
    if window is None or getattr(config, "use_sliding_window", True) is False:
        return None
    return int(window)


def attention_kind(model: torch.nn.Module) -> str:
    """The attention implementation transformers runs the model with (``sdpa``, ``eager``, ``flash_attention_2``...)."""
    return getattr(causal_lm(model).config, "_attn_implementation", None) or "eager"


def _probe_ids(model: torch.nn.Module, n: int) -> torch.Tensor:
    """``n`` fixed token ids spread over the vocabulary (no tokenizer needed)."""
    vocab = causal_lm(model).config.get_text_config().vocab_size
    return (torch.arange(n) * 7919 + 11) % vocab


def _tolerance(model: torch.nn.Module) -> float:
    """How far two computations of the same log-probability may differ in the model's dtype."""
    dtype = next(model.parameters()).dtype
    return 1e-4 if dtype in (torch.float32, torch.float64) else 5e-2


class _eval:
    """The model in eval mode (no dropout) inside the block, as it was after."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model

    def __enter__(self) -> None:
        self.training = self.model.training
        self.model.eval()

    def __exit__(self, *exc) -> None:
        self.model.train(self.training)


def group_by_prompt(prompts: list[list[int]], replies: list[list[int]]) -> tuple[list[Group], list[int]]:
    """The replies to the same prompt as one group, and which input reply each grouped reply is.

    Example:
        >>> groups, order = group_by_prompt([[1], [2], [1]], [[5], [6], [7]])
        >>> [(g.prompt, g.replies) for g in groups], order
        ([([1], [[5], [7]]), ([2], [[6]])], [0, 2, 1])
    """
    members: dict[tuple[int, ...], list[int]] = {}
    for index, prompt in enumerate(prompts):
        members.setdefault(tuple(prompt), []).append(index)
    groups = [Group(list(prompt), [replies[i] for i in rows]) for prompt, rows in members.items()]
    return groups, [i for rows in members.values() for i in rows]


def passes(groups: list[Group], replies_per_pass: int) -> list[list[int]]:
    """Groups (by index) for each forward pass: similar lengths together, up to ``replies_per_pass`` replies each.

    Example:
        >>> passes([Group([1], [[2]] * 3), Group([1, 1], [[2]]), Group([1], [[2]])], replies_per_pass=2)
        [[2, 1], [0]]
    """
    order = sorted(range(len(groups)), key=lambda i: len(groups[i]))
    batches: list[list[int]] = [[]]
    count = 0
    for index in order:
        size = len(groups[index].replies)
        if batches[-1] and count + size > replies_per_pass:
            batches.append([])
            count = 0
        batches[-1].append(index)
        count += size
    return batches


@torch.no_grad()
def score_replies(scorer: ReplyScorer, prompts: list[list[int]], replies: list[list[int]],
                  replies_per_pass: int) -> torch.Tensor:
    """Summed log-probability of each reply given its prompt (float32, on the CPU), each prompt computed once."""
    groups, order = group_by_prompt(prompts, replies)
    first = [0]
    for group in groups:
        first.append(first[-1] + len(group.replies))
    out = torch.empty(len(replies))
    done = 0
    for batch in passes(groups, replies_per_pass):
        sums = scorer.score([groups[g] for g in batch]).logprobs.float().cpu()
        slots = [order[first[g] + k] for g in batch for k in range(len(groups[g].replies))]
        out[torch.as_tensor(slots)] = sums
        done += len(slots)
        progress.items(done, len(replies), "replies")
    return out
