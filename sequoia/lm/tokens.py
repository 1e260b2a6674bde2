"""Turning prompts (chat messages) and replies into token ids, with truncation."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sequoia.errors import SequoiaError

Message = dict[str, str]


class PromptTooLongError(SequoiaError):
    """A prompt over ``max_prompt_length`` tokens where truncation is turned off."""

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(f"the prompt has {tokens} tokens, over --setting.max_prompt_length {limit}")


@dataclass(frozen=True)
class Encoding:
    """How prompts and replies become tokens: limits, and which end of a long prompt to cut.

    Replies are always cut at their end, so the model learns their beginning.
    """

    max_prompt_length: int = 128
    max_completion_length: int = 64
    truncation_side: Literal["left", "right", "error"] = "left"


def render_prompt(tokenizer, messages: Sequence[Message]) -> str:
    """The prompt as text: the tokenizer's chat template with the reply cue, or HH-style turns.

    Example:
        >>> from sequoia.lm.models import byte_tokenizer
        >>> render_prompt(byte_tokenizer(), [{"role": "user", "content": "Hi"}])
        '\\n\\nHuman: Hi\\n\\nAssistant:'
    """
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    return f"{hh_turns(messages)}\n\nAssistant:"


def hh_turns(messages: Sequence[Message]) -> str:
    """Messages as HH-RLHF-style turns (``\\n\\nHuman: ...\\n\\nAssistant: ...``).

    Example:
        >>> hh_turns([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])
        '\\n\\nHuman: Hi\\n\\nAssistant: Hello'
    """
    names = {"user": "Human", "assistant": "Assistant", "system": "System"}
    return "".join(f"\n\n{names.get(m['role'], m['role'].title())}: {m['content']}" for m in messages)


def encode_prompt(tokenizer, messages: Sequence[Message], encoding: Encoding) -> list[int]:
    """Token ids of a prompt, cut to ``max_prompt_length`` on ``truncation_side`` (``error``: never cut)."""
    ids = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"]
    if len(ids) > encoding.max_prompt_length:
        if encoding.truncation_side == "error":
            raise PromptTooLongError(len(ids), encoding.max_prompt_length)
        ids = ids[-encoding.max_prompt_length:] if encoding.truncation_side == "left" else ids[: encoding.max_prompt_length]
    return ids


def encode_reply(tokenizer, reply: str, encoding: Encoding, chat: bool) -> list[int]:
    """Token ids of a reply followed by the end-of-sequence token, cut to ``max_completion_length``.

    Without a chat template the reply is separated from the ``Assistant:`` cue by a space.
    """
    text = reply if chat else " " + reply.lstrip()
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return ids[: encoding.max_completion_length]


def is_chat(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


class TokenCache:
    """Token ids of prompts and replies, each text encoded once per run (test pairs and probes recur at every
    evaluation).

    Example:
        >>> from sequoia.lm.models import byte_tokenizer
        >>> cache = TokenCache(byte_tokenizer(), Encoding())
        >>> cache.prompts([[{"role": "user", "content": "Hi"}]]) == cache.prompts([[{"role": "user", "content": "Hi"}]])
        True
        >>> len(cache)
        1
    """

    limit = 1_000_000
    """Entries kept before the cache starts afresh (a bound on memory, far above a run's test items)."""

    def __init__(self, tokenizer, encoding: Encoding) -> None:
        self.tokenizer, self.encoding, self.chat = tokenizer, encoding, is_chat(tokenizer)
        self._prompts: dict[tuple, list[int]] = {}
        self._replies: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self._prompts) + len(self._replies)

    def prompts(self, prompts: Sequence[Sequence[Message]]) -> list[list[int]]:
        """Token ids of each prompt (chat messages), cut as :func:`encode_prompt` cuts."""
        return [self._get(self._prompts, tuple((m["role"], m["content"]) for m in prompt),
                          lambda: encode_prompt(self.tokenizer, prompt, self.encoding)) for prompt in prompts]

    def replies(self, replies: Sequence[str]) -> list[list[int]]:
        """Token ids of each reply, end of sequence included, cut as :func:`encode_reply` cuts."""
        return [self._get(self._replies, reply, lambda: encode_reply(self.tokenizer, reply, self.encoding, self.chat))
                for reply in replies]

    def _get(self, table: dict, key, encode) -> list[int]:
        if key not in table:
            if len(self) >= self.limit:
                self._prompts.clear()
                self._replies.clear()
            table[key] = encode()
        return table[key]
