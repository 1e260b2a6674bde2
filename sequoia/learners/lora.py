"""The shared part of the PA learners: a causal LM with LoRA adapters (peft), its tokenization and scoring."""

import warnings
from dataclasses import dataclass as plain_dataclass
from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass
from tqdm.auto import tqdm

from sequoia import progress
from sequoia.batching import Batch, take
from sequoia.learners.base import FitRecord, Learner
from sequoia.lm.logprobs import pad_left
from sequoia.lm.lora_targets import target_modules
from sequoia.lm.packing import Group
from sequoia.lm.scoring import ReplyScorer, ReplyScores, score_replies
from sequoia.lm.tokens import Encoding, TokenCache, is_chat
from sequoia.options import CommaSeparated
from sequoia.seeding import derived_generator
from sequoia.settings.pa.protocol import Generates, ScoresReplies
from sequoia.settings.pa.setting import PAView, PreferenceData, PreferenceSetting


@plain_dataclass
class LanguageModelTools:
    """What a LoRA learner builds in ``configure`` beside its model (its options are the learner's fields).

    Attributes:
        tokenizer: the model's tokenizer.
        lora_config: the adapters' peft configuration (new adapters of the same shape use it).
        encoding: the setting's tokenization limits.
        chat: whether the tokenizer has a chat template (prompts are rendered with it).
        tokens: prompts and replies tokenized once per run.
        scorer: scores replies (prefix sharing, packing, log-probs without full logits).
    """

    tokenizer: Any
    lora_config: Any
    encoding: Encoding
    chat: bool
    tokens: TokenCache
    scorer: ReplyScorer


@dataclass
class LoRALearner(Learner):
    """A causal LM from the setting's ``model``, trained through LoRA adapters (Hu et al. 2021).

    Only the adapter weights train; the base weights stay bitwise unchanged. Batches
    are rows of token ids (``prompt_ids``, ``chosen_ids``, ``rejected_ids``), so replay
    can store them and EWC can take per-pair gradients. Their outputs
    (:class:`sequoia.lm.scoring.ReplyScores`) are the scores of the replies the loss
    uses: the chosen ones for SFT, chosen then rejected for DPO.

    Replies are scored by :class:`sequoia.lm.scoring.ReplyScorer`: a pair's prompt is
    computed once for both replies, several pairs share a row without padding, and no
    ``[tokens, vocab]`` logits are kept for the backward pass. Prompts and replies met
    in evaluation are tokenized once per run.
    """

    domain: ClassVar[type] = PreferenceSetting
    test_protocols: ClassVar[tuple[type, ...]] = (ScoresReplies, Generates)
    checkpoint_attributes: ClassVar[tuple[str, ...]] = ("record",)

    lora_rank: Annotated[int, Field(gt=0, le=65_536)] = 8
    """LoRA rank r."""
    lora_alpha: Annotated[float, Field(gt=0)] = 16.0
    """LoRA scaling alpha (the update is scaled by alpha / r)."""
    lora_dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    """Dropout on the LoRA input."""
    target_modules: CommaSeparated = "auto"
    """Comma-separated module names to adapt, `all-linear`, or `auto` (peft's default for the architecture)."""
    lr: Annotated[float, Field(gt=0, le=10)] = 1e-3
    """AdamW learning rate."""
    epochs: Annotated[int, Field(gt=0, le=10_000)] = 2
    """Passes over each `fit` call's pairs."""
    batch_size: Annotated[int, Field(gt=0, le=65_536)] = 8
    """Pairs per step."""
    eval_batch_size: Annotated[int, Field(gt=0, le=65_536)] = 32
    """Replies per forward pass when scoring (and prompts per `generate` call)."""
    packing: bool = True
    """Score each prompt once with all its replies, several prompts to a row, without padding (`false`: one
    left-padded row per reply, the way TRL does; the same numbers up to rounding, slower)."""
    stems: bool = True
    """With packing: compute the beginning common to a row's prompts once (a chat template's system prompt);
    `false`: every prompt whole. The same numbers up to rounding."""
    max_grad_norm: Annotated[float, Field(ge=0)] = 1.0
    """Gradient clipping (0: none)."""

    def configure(self, view: PAView) -> None:
        from peft import LoraConfig, get_peft_model

        from sequoia.lm.model_directory import check_vocabulary
        from sequoia.lm.models import load_model, load_tokenizer

        tokenizer = load_tokenizer(view.model)
        base = load_model(view.model, view.dtype, view.device, view.quantization)
        check_vocabulary(tokenizer, base, view.model)
        # A quantized base goes to peft as it loads, as TRL's DPOTrainer passes it. peft's
        # `prepare_model_for_kbit_training` would cast the embeddings and norms to float32, which
        # turns every hidden state float32 and doubles the activations' memory (10.7 GB against
        # 6.0 GB for TRL on a 1.1B model); the input gradients it enables serve only gradient
        # checkpointing, which sequoia does not use. LoRA weights stay float32 (peft's default).
        config = LoraConfig(r=self.lora_rank, lora_alpha=self.lora_alpha, lora_dropout=self.lora_dropout,
                            target_modules=target_modules(self.target_modules, base, view.model),
                            task_type="CAUSAL_LM")
        with warnings.catch_warnings():
            # peft calls a transformers property that transformers 5 marks deprecated; not ours to fix.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            self.model = get_peft_model(base, config)
        self.torch_optimizer = torch.optim.AdamW(self.trainable_parameters().values(), lr=self.lr)
        encoding = view.encoding()
        self.lm = LanguageModelTools(tokenizer, config, encoding, is_chat(tokenizer), TokenCache(tokenizer, encoding),
                                     ReplyScorer(self.model, tokenizer.pad_token_id, packing=self.packing,
                                                 stems=self.stems))
        self.progress = view.progress
        self.record = FitRecord(shuffle=derived_generator())

    @property
    def tokenizer(self) -> Any:
        return self.lm.tokenizer

    @property
    def lora_config(self) -> Any:
        return self.lm.lora_config

    @property
    def encoding(self) -> Encoding:
        return self.lm.encoding

    @property
    def chat(self) -> bool:
        return self.lm.chat

    @property
    def tokens(self) -> TokenCache:
        return self.lm.tokens

    @property
    def scorer(self) -> ReplyScorer:
        return self.lm.scorer

    # -- tokens -------------------------------------------------------------------
    def encode_pairs(self, pairs) -> Batch:
        """Token-id rows for preference pairs."""
        return {
            "prompt_ids": self.tokens.prompts([p.prompt for p in pairs]),
            "chosen_ids": self.tokens.replies([p.chosen for p in pairs]),
            "rejected_ids": self.tokens.replies([p.rejected for p in pairs]),
        }

    def score_groups(self, groups: list[Group]) -> ReplyScores:
        """The model's scores of each group's replies given its prompt, with gradients, in the groups' order."""
        return self.scorer.score(groups)

    def chosen_outputs(self, batch: Batch) -> ReplyScores:
        """Scores of the chosen replies: what SFT trains on."""
        return self.score_groups([Group(p, [c]) for p, c in zip(batch["prompt_ids"], batch["chosen_ids"])])

    def sft_loss(self, batch: Batch, outputs: ReplyScores | None = None) -> torch.Tensor:
        """Completion-only negative log-likelihood of the chosen replies, averaged over their tokens."""
        scores = self.chosen_outputs(batch) if outputs is None else outputs
        return -scores.logprobs.sum() / scores.tokens.sum()

    def distillation(self, outputs: ReplyScores, teacher: ReplyScores, temperature: float) -> torch.Tensor:
        """Token-level KL from the teacher's next-token distributions to ours, on the replies' tokens.

        ``sum_v q(v) (log q(v) - log p(v))`` at each reply position (teacher ``q``,
        ours ``p``, both softened by ``temperature``), averaged over the reply tokens
        of the batch: LwF's "KL to the previous policy on the current task's replies".
        The distributions are computed a chunk of tokens at a time from the hidden
        states (:func:`sequoia.lm.head.token_kl_sum`), never all at once.
        """
        return outputs.distillation(teacher, temperature)

    # -- several adapters on the one base model --------------------------------------
    def add_adapter(self, name: str) -> None:
        """A new, untrained adapter ``name`` on the same base model, made the one that trains.

        The optimizer starts afresh over the new adapter's weights; the other adapters
        stay in memory, frozen (peft's multi-adapter API: no copy of the base model).
        """
        self.model.add_adapter(name, self.lora_config)
        self.use_adapter(name)
        self.torch_optimizer = torch.optim.AdamW(self.trainable_parameters().values(), lr=self.lr)

    def use_adapter(self, name: str) -> None:
        """Make adapter ``name`` the active one: it alone scores, generates and trains."""
        self.model.set_adapter(name)

    # -- training -----------------------------------------------------------------
    def prepare_rows(self, rows: Batch) -> Batch:
        """Add what training needs beyond token ids (DPO: cached reference log-probs)."""
        return rows

    def train_phase(self, train: PreferenceData, valid: Any) -> None:
        rows = self.prepare_rows(self.encode_pairs(train.pairs))
        self.record.last = rows
        self.train_epochs(rows, self.epochs)

    def train_epochs(self, rows: Batch, epochs: int, max_steps: int | None = None) -> None:
        """Minibatch steps over ``rows`` for ``epochs`` passes (or ``max_steps`` steps)."""
        self.model.train()
        steps: list[torch.Tensor] = []
        for _ in range(epochs):
            steps += torch.randperm(len(rows["prompt_ids"]), generator=self.record.shuffle).split(self.batch_size)
        steps = steps[:max_steps]
        bar = tqdm(steps, desc=f"{self.name} steps", leave=False, disable=not self.progress)
        for indices in bar:
            loss = self.optimize(take(rows, indices))
            bar.set_postfix(loss=f"{loss.item():.4f}")
        self.model.eval()

    def before_step(self) -> None:
        if self.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(self.trainable_parameters().values(), self.max_grad_norm)

    def experience(self) -> Batch:
        assert self.record.last is not None, "fit() first"
        return self.record.last

    # -- evaluation ---------------------------------------------------------------
    @torch.no_grad()
    def logprobs(self, prompts: list, responses: list[str], task_id: int | None) -> torch.Tensor:
        self.model.eval()
        return self.batched_logprobs(self.tokens.prompts(prompts), self.tokens.replies(responses))

    def batched_logprobs(self, prompts: list[list[int]], replies: list[list[int]]) -> torch.Tensor:
        """Summed log-probability of each reply given its prompt, replies to the same prompt scored together."""
        return score_replies(self.scorer, prompts, replies, self.eval_batch_size)

    @torch.no_grad()
    def generate(self, prompts: list, max_new_tokens: int, sample: bool = False) -> list[str]:
        """Replies to ``prompts``, ``eval_batch_size`` prompts (left-padded) per ``generate`` call."""
        self.model.eval()
        how = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0} if sample else {"do_sample": False}
        encoded = self.tokens.prompts(prompts)
        replies = []
        for start in range(0, len(encoded), self.eval_batch_size):
            ids, mask = pad_left(encoded[start : start + self.eval_batch_size], self.tokenizer.pad_token_id)
            ids, mask = ids.to(self.model.device), mask.to(self.model.device)
            out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                      pad_token_id=self.tokenizer.pad_token_id, **how)
            replies += [text.strip() for text in self.tokenizer.batch_decode(out[:, ids.shape[1]:],
                                                                               skip_special_tokens=True)]
            progress.items(len(replies), len(encoded), "replies generated")
        return replies
