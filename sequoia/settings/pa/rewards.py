"""Scoring generated replies: a reward model, win rates against the base model, and the sampled KL.

``--eval.reward_model`` takes any Hugging Face sequence-classification model. Good
ones for GPU users: ``OpenAssistant/reward-model-deberta-v3-large-v2`` (helpfulness
and harmlessness, trained on HH-RLHF, WebGPT and summarisation comparisons),
``Skywork/Skywork-Reward-Llama-3.1-8B-v0.2`` (RewardBench's top tier), and toxicity
classifiers such as ``facebook/roberta-hate-speech-dynabench-r4-target`` (their
label-1 log-odds is then the score: see :func:`reward_of_logits`; flip its sign for
a "less toxic is better" reading).

The reward model reads the conversation through its own chat template where its
tokenizer has one, else as HH-RLHF-style ``Human:``/``Assistant:`` turns.
"""

from __future__ import annotations

import torch

from sequoia.errors import SequoiaError

Messages = list[dict[str, str]]


def reward_of_logits(logits: torch.Tensor) -> torch.Tensor:
    """The reward of each row: the single logit, or with two labels the log-odds of label 1.

    Example:
        >>> reward_of_logits(torch.tensor([[0.5], [-1.0]]))
        tensor([ 0.5000, -1.0000])
        >>> reward_of_logits(torch.tensor([[1.0, 3.0]]))
        tensor([2.])
    """
    if logits.shape[-1] == 1:
        return logits[:, 0]
    return logits[:, 1] - logits[:, 0]


class RewardModel:
    """A sequence-classification reward model, loaded once, scoring (prompt, reply) pairs.

    Args:
        spec: a hub name or a local directory.
        device: where it runs (the policy's device).
        batch_size: conversations per forward pass.
    """

    def __init__(self, spec: str, device: torch.device, batch_size: int = 8) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from sequoia.lm.models import _from_pretrained

        self.tokenizer = _from_pretrained(AutoTokenizer, spec, "tokenizer")
        self.model = _from_pretrained(AutoModelForSequenceClassification, spec, "classifier").to(device).eval()
        labels = self.model.config.num_labels
        if labels not in (1, 2):
            raise SequoiaError(f"--eval.reward_model {spec} has {labels} output labels; a reward model has 1 "
                               "(a reward) or 2 (the log-odds of label 1 is taken)")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if self.model.config.pad_token_id is None:  # it finds each row's last token through the pad id
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.device, self.batch_size = device, batch_size

    def text(self, prompt: Messages, reply: str) -> str:
        """The conversation as the reward model reads it."""
        messages = list(prompt) + [{"role": "assistant", "content": reply}]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        from sequoia.lm.tokens import hh_turns

        return hh_turns(messages)

    @torch.no_grad()
    def __call__(self, prompts: list[Messages], replies: list[str]) -> torch.Tensor:
        """The reward of each reply to its prompt."""
        texts = [self.text(prompt, reply) for prompt, reply in zip(prompts, replies)]
        rewards = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(texts[start : start + self.batch_size], return_tensors="pt", padding=True,
                                   truncation=True, max_length=self._max_length())
            logits = self.model(**{k: v.to(self.device) for k, v in batch.items()}).logits
            rewards.append(reward_of_logits(logits.float()).cpu())
        return torch.cat(rewards)

    def _max_length(self) -> int:
        limit = getattr(self.tokenizer, "model_max_length", None) or 512
        return min(int(limit), 4096)


def win_rate_items(rewards: torch.Tensor, base_rewards: torch.Tensor) -> torch.Tensor:
    """Per prompt: 1 where the reply beats the base model's reply, 1/2 for a tie, else 0.

    Example:
        >>> win_rate_items(torch.tensor([1.0, 0.0, 2.0]), torch.tensor([0.0, 0.0, 3.0]))
        tensor([1.0000, 0.5000, 0.0000])
    """
    return (rewards > base_rewards).float() + 0.5 * (rewards == base_rewards).float()


class ReferenceModel:
    """The base model, held by the setting, scoring replies as LoRA methods do (the sampled KL's ``p0``).

    Args:
        model: the base causal LM, as the setting's options load it.
        tokenizer, encoding: the setting's, which every method also uses.
    """

    def __init__(self, model, tokenizer, encoding, batch_size: int = 32) -> None:
        from sequoia.lm.scoring import ReplyScorer
        from sequoia.lm.tokens import TokenCache

        self.model, self.tokenizer, self.encoding, self.batch_size = model, tokenizer, encoding, batch_size
        self.tokens = TokenCache(tokenizer, encoding)
        self.scorer = ReplyScorer(model, tokenizer.pad_token_id)

    @torch.no_grad()
    def __call__(self, prompts: list[Messages], replies: list[str]) -> torch.Tensor:
        """Summed log-probability of each reply given its prompt."""
        from sequoia.lm.scoring import score_replies

        return score_replies(self.scorer, self.tokens.prompts(prompts), self.tokens.replies(replies), self.batch_size)
