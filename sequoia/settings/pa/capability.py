"""Capability probes: what the base model could do, measured again after every phase.

Alignment can cost capabilities the base model had (the "alignment tax", Lin et al.
2023, arXiv 2309.06256). A probe scores the method through the same blind
``logprobs`` interface as the preference metrics, so it works for any method:

* ``mmlu``: MMLU (Hendrycks et al. 2021) in its cloze form, the form lm-eval calls
  ``mmlu_continuation`` and SmolLM2's report calls MMLU-CF. The question is the user
  turn and each answer text a reply; an item is right when the true answer has the
  highest summed log-probability (lm-eval's ``acc``). The letter form sits at chance
  (0.25) for models of this size; the cloze form does not.
* ``truthfulqa_mc1``: TruthfulQA MC1 (Lin et al. 2022), scored the same way.
* ``text_nll``: the negative log-likelihood per token of human-written assistant replies
  (OpenAssistant) that no shipped task trains on. Lower is better; it is cheap and
  moves even where a small model sits near chance on multiple choice.

The shipped subsets are in ``sequoia/data/capability`` (their SOURCE.md files say how
they were drawn). Items are taken in file order, so every seed and every method sees
the same ones and runs compare item for item.

Example:
    >>> [len(load_probe(name).items) for name in PROBES]
    [228, 200, 122]
    >>> load_probe("mmlu", limit=3).items[0].choices[0]
    'Law and Economics'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from sequoia.errors import SequoiaError
from sequoia.metric_spec import MetricSpec

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "data" / "capability"
Messages = list[dict[str, str]]
Scorer = Callable[[list[Messages], list[str]], torch.Tensor]
"""Summed log-probabilities of replies given prompts (the method's ``logprobs``, task id fixed)."""


@dataclass(frozen=True)
class ChoiceItem:
    """A multiple-choice question: the prompt, the answer texts, and which one is true."""

    prompt: Messages
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class TextItem:
    """A conversation and a human-written reply to it."""

    prompt: Messages
    text: str


@dataclass(frozen=True)
class Probe:
    """A named set of items and how they are scored.

    Attributes:
        name: the probe's name; its matrix is ``capability_<name>``.
        items: :class:`ChoiceItem` or :class:`TextItem` objects.
        higher_is_better: ``False`` for a loss (``text_nll``): the tax is then ``final - base``.
    """

    name: str
    items: tuple[Any, ...]
    higher_is_better: bool = True

    def score(self, logprobs: Scorer, reply_tokens: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
        """One score per item: 1/0 for a right/wrong choice, or the reply's NLL per token."""
        if isinstance(self.items[0], ChoiceItem):
            return choice_accuracy(self.items, logprobs)
        return text_nll(self.items, logprobs, reply_tokens)


def choice_accuracy(items: tuple[ChoiceItem, ...], logprobs: Scorer) -> torch.Tensor:
    """1.0 where the true answer has the highest log-probability (the first of equals wins, as ``argmax``).

    Example:
        >>> items = (ChoiceItem([{"role": "user", "content": "2+2?"}], ("4", "5"), 0),)
        >>> choice_accuracy(items, lambda prompts, replies: torch.tensor([-1.0 if r == "4" else -2.0 for r in replies]))
        tensor([1.])
    """
    prompts = [item.prompt for item in items for _ in item.choices]
    replies = [choice for item in items for choice in item.choices]
    scores = torch.as_tensor(logprobs(prompts, replies), dtype=torch.float32).reshape(-1)
    right, start = [], 0
    for item in items:
        picked = int(scores[start : start + len(item.choices)].argmax())
        right.append(float(picked == item.answer))
        start += len(item.choices)
    return torch.tensor(right)


def text_nll(items: tuple[TextItem, ...], logprobs: Scorer,
             reply_tokens: Callable[[list[str]], torch.Tensor]) -> torch.Tensor:
    """Negative log-likelihood per token of each reply, over the tokens the method scores."""
    texts = [item.text for item in items]
    scores = torch.as_tensor(logprobs([item.prompt for item in items], texts), dtype=torch.float32).reshape(-1)
    return -scores / reply_tokens(texts)


PROBES = ("mmlu", "truthfulqa_mc1", "text_nll")
_FILES = {"mmlu": "mmlu", "truthfulqa_mc1": "truthfulqa_mc1", "text_nll": "text"}
LOSSES = ("text_nll",)
"""The probes where lower is better."""


def probe_spec(name: str) -> MetricSpec:
    """The metric of probe ``name``: matrix ``capability_<name>``, one column, and its alignment tax
    (``alignment_tax_<name>``: what the base model could do and the final model no longer does).

    Example:
        >>> spec = probe_spec("text_nll")
        >>> spec.name, spec.higher_is_better, spec.summary_name("lost", primary=False)
        ('capability_text_nll', False, 'alignment_tax_text_nll')
    """
    return MetricSpec(f"capability_{name}", higher_is_better=name not in LOSSES,
                      low=0.0, high=None if name in LOSSES else 1.0, summaries=("final", "lost"), label=name,
                      summary_names={"lost": f"alignment_tax_{name}"}, per_task=False)


def parse_probe_names(text: str) -> list[str]:
    """The probes named by ``--eval.capability`` (comma-separated; ``none`` or empty for none).

    Example:
        >>> parse_probe_names("mmlu, text_nll"), parse_probe_names("none")
        (['mmlu', 'text_nll'], [])
    """
    names = [name.strip() for name in text.split(",") if name.strip() and name.strip() != "none"]
    unknown = [name for name in names if name not in PROBES]
    if unknown:
        raise SequoiaError(f"unknown capability probe(s) {', '.join(map(repr, unknown))} in --eval.capability; "
                           f"known: {', '.join(PROBES)} (or none)")
    if len(set(names)) != len(names):
        raise SequoiaError(f"--eval.capability names a probe twice: {text!r}")
    return names


def load_probe(name: str, limit: int = 0) -> Probe:
    """The shipped probe ``name``, its first ``limit`` items (0: all)."""
    path = DATA_DIR / _FILES[name] / "items.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = rows[:limit] if limit else rows
    if name == "text_nll":
        return Probe(name, tuple(TextItem(row["prompt"], row["text"]) for row in rows), higher_is_better=False)
    return Probe(name, tuple(ChoiceItem([{"role": "user", "content": row["question"]}], tuple(row["choices"]),
                                        row["answer"]) for row in rows))
