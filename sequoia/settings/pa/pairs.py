"""Preference pairs and the record formats they come in.

Every source is turned into :class:`PreferencePair`: a prompt as a list of chat
messages, and the chosen and rejected replies as text. The converters below
handle one record each and raise :class:`RowError` for a malformed one; the
loaders in ``sources.py`` add the file and row to the message.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

Message = dict[str, str]

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"


class RowError(ValueError):
    """A record that does not fit the format being read."""


@dataclass(frozen=True)
class PreferencePair:
    """One prompt (chat messages) with a preferred and a dispreferred reply.

    Example:
        >>> pair = PreferencePair.from_text("Say hi.", "Hi!", "No.")
        >>> pair.prompt
        ({'role': 'user', 'content': 'Say hi.'},)
    """

    prompt: tuple[Message, ...]
    chosen: str
    rejected: str

    @classmethod
    def from_text(cls, prompt: str, chosen: str, rejected: str) -> "PreferencePair":
        """A pair whose prompt is a single user turn."""
        return cls(({"role": "user", "content": prompt},), chosen, rejected)

    def to_record(self) -> dict[str, Any]:
        """TRL's explicit conversational format, the one the shipped files use."""
        return {
            "prompt": [dict(m) for m in self.prompt],
            "chosen": [{"role": "assistant", "content": self.chosen}],
            "rejected": [{"role": "assistant", "content": self.rejected}],
        }


def split_hh_transcripts(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two HH-RLHF transcripts into (prompt, chosen reply, rejected reply).

    The prompt is their longest common prefix, cut back to end with the last
    ``"\\n\\nAssistant:"`` in it, so a reply that starts with the same words as the
    other stays whole. With no shared ``"\\n\\nAssistant:"`` the prompt is empty.

    Example:
        >>> split_hh_transcripts("\\n\\nHuman: Hi\\n\\nAssistant: Hello there",
        ...                      "\\n\\nHuman: Hi\\n\\nAssistant: Hello. Go away")
        ('\\n\\nHuman: Hi\\n\\nAssistant:', ' Hello there', ' Hello. Go away')
    """
    shared = 0
    for a, b in zip(chosen, rejected):
        if a != b:
            break
        shared += 1
    cut = chosen.rfind(ASSISTANT, 0, shared)  # the whole marker lies inside the shared prefix
    if cut < 0:
        return "", chosen, rejected
    end = cut + len(ASSISTANT)
    return chosen[:end], chosen[end:], rejected[end:]


def hh_messages(transcript: str) -> tuple[Message, ...]:
    """The turns of an HH-RLHF transcript (``\\n\\nHuman: ... \\n\\nAssistant: ...``) as chat messages.

    A trailing empty ``Assistant:`` turn (the cue for the reply) is dropped.

    Example:
        >>> hh_messages("\\n\\nHuman: Hi\\n\\nAssistant: Hello\\n\\nHuman: Bye\\n\\nAssistant:")
        ({'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello'}, {'role': 'user', 'content': 'Bye'})
    """
    messages: list[Message] = []
    rest = transcript
    while rest:
        turn = _first_turn(rest)
        if turn is None:
            if rest.strip():
                raise RowError("text outside the Human/Assistant turns")
            break
        start, role, marker = turn
        if rest[:start].strip() and not messages:
            raise RowError("the transcript must start with a 'Human:' or 'Assistant:' turn")
        rest = rest[start + len(marker):]
        following = _first_turn(rest)
        end = following[0] if following else len(rest)
        messages.append({"role": role, "content": rest[:end].strip()})
        rest = rest[end:]
    if messages and messages[-1]["role"] == "assistant" and not messages[-1]["content"]:
        messages.pop()
    return tuple(messages)


def _first_turn(text: str) -> tuple[int, str, str] | None:
    """Where the first ``Human:`` or ``Assistant:`` marker of ``text`` starts, its role and the marker."""
    found = [(text.find(marker), role, marker) for role, marker in (("user", HUMAN), ("assistant", ASSISTANT))]
    found = [turn for turn in found if turn[0] >= 0]
    return min(found) if found else None


def from_hh_record(record: dict[str, Any]) -> PreferencePair:
    """An HH-RLHF record ``{chosen, rejected}`` of two full transcripts."""
    chosen, rejected = _strings(record, "chosen", "rejected")
    prompt, chosen_reply, rejected_reply = split_hh_transcripts(chosen, rejected)
    if not prompt:
        raise RowError("the two transcripts share no Human/Assistant turns")
    return PreferencePair(hh_messages(prompt), chosen_reply.strip(), rejected_reply.strip())


def from_trl_record(record: dict[str, Any]) -> PreferencePair:
    """TRL's preference formats: explicit or implicit prompt, text or conversational.

    * explicit: ``{prompt, chosen, rejected}``: strings, or message lists;
    * implicit: ``{chosen, rejected}``: whole conversations sharing their start,
      as message lists or as HH-style transcripts.

    Example:
        >>> from_trl_record({"prompt": "2+2?", "chosen": "4", "rejected": "5"}).chosen
        '4'
        >>> pair = from_trl_record({
        ...     "chosen": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
        ...     "rejected": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "5"}]})
        >>> pair.prompt, pair.rejected
        (({'role': 'user', 'content': '2+2?'},), '5')
    """
    if "chosen" not in record or "rejected" not in record:
        raise RowError(f"expected keys chosen and rejected (and optionally prompt); found {sorted(record)}")
    chosen, rejected = record["chosen"], record["rejected"]
    if "prompt" in record:
        return PreferencePair(_as_messages(record["prompt"]), _reply_text(chosen, "chosen"),
                              _reply_text(rejected, "rejected"))
    if isinstance(chosen, str) and isinstance(rejected, str):
        return from_hh_record(record)
    if isinstance(chosen, list) and isinstance(rejected, list):
        return _from_implicit_conversations([_message(m) for m in chosen], [_message(m) for m in rejected])
    raise RowError("chosen and rejected must both be strings or both be message lists")


def _from_implicit_conversations(chosen: list[Message], rejected: list[Message]) -> PreferencePair:
    """Two conversations sharing their first messages (the prompt); each reply is what follows them."""
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == 0:
        raise RowError("implicit conversational pairs must share their first message(s)")
    return PreferencePair(tuple(chosen[:shared]), _reply_text(chosen[shared:], "chosen"),
                          _reply_text(rejected[shared:], "rejected"))


def from_pku_saferlhf_record(record: dict[str, Any], preference: str = "safer") -> PreferencePair:
    """PKU-SafeRLHF: ``{prompt, response_0, response_1, safer_response_id, better_response_id}``."""
    prompt, first, second = _strings(record, "prompt", "response_0", "response_1")
    key = f"{preference}_response_id"
    if record.get(key) not in (0, 1, "0", "1"):
        raise RowError(f"{key} must be 0 or 1, got {record.get(key)!r}")
    chosen_first = int(record[key]) == 0
    return PreferencePair.from_text(prompt, first if chosen_first else second, second if chosen_first else first)


def pairs_from_beavertails(records: list[dict[str, Any]]) -> Iterator[PreferencePair]:
    """BeaverTails rows ``{prompt, response, is_safe}``: each safe reply against each unsafe one to the same prompt."""
    by_prompt: dict[str, tuple[list[str], list[str]]] = {}
    for record in records:
        prompt, response = _strings(record, "prompt", "response")
        if not isinstance(record.get("is_safe"), bool):
            raise RowError(f"is_safe must be true or false, got {record.get('is_safe')!r}")
        safe, unsafe = by_prompt.setdefault(prompt, ([], []))
        (safe if record["is_safe"] else unsafe).append(response)
    for prompt, (safe, unsafe) in by_prompt.items():
        for good, bad in zip(safe, unsafe):
            yield PreferencePair.from_text(prompt, good, bad)


def pairs_from_oasst_tree(tree: dict[str, Any]) -> Iterator[PreferencePair]:
    """Adjacent-rank reply pairs of one OpenAssistant message tree.

    At each prompter message with two or more ranked assistant replies, the reply of
    rank ``i`` is chosen over the one of rank ``i + 1``. Synthetic or deleted
    messages are skipped, and so is everything below them.
    """
    if not isinstance(tree.get("prompt"), dict):
        raise RowError("an OASST tree needs a 'prompt' message object")

    def usable(message: dict[str, Any]) -> bool:
        return not message.get("synthetic") and not message.get("deleted") and isinstance(message.get("text"), str)

    def walk(message: dict[str, Any], history: tuple[Message, ...]) -> Iterator[PreferencePair]:
        if not usable(message):
            return
        role = "user" if message.get("role") == "prompter" else "assistant"
        history = (*history, {"role": role, "content": message["text"]})
        replies = [r for r in message.get("replies", []) if isinstance(r, dict)]
        if role == "user":
            ranked = sorted((r for r in replies if usable(r) and r.get("rank") is not None), key=lambda r: r["rank"])
            for better, worse in zip(ranked, ranked[1:]):
                yield PreferencePair(history, better["text"], worse["text"])
        for reply in replies:
            yield from walk(reply, history)

    yield from walk(tree["prompt"], ())


def _strings(record: dict[str, Any], *keys: str) -> tuple[str, ...]:
    missing = [k for k in keys if not isinstance(record.get(k), str)]
    if missing:
        raise RowError(f"expected text fields {', '.join(keys)}; missing or not text: {', '.join(missing)}")
    return tuple(record[k] for k in keys)


def _message(value: Any) -> Message:
    if not (isinstance(value, dict) and isinstance(value.get("role"), str) and isinstance(value.get("content"), str)):
        raise RowError(f"a message must be {{'role': str, 'content': str}}, got {str(value)[:80]!r}")
    return {"role": value["role"], "content": value["content"]}


def _as_messages(prompt: Any) -> tuple[Message, ...]:
    if isinstance(prompt, str):
        return ({"role": "user", "content": prompt},)
    if isinstance(prompt, list) and prompt:
        return tuple(_message(m) for m in prompt)
    raise RowError("prompt must be text or a non-empty list of messages")


def _reply_text(reply: Any, name: str) -> str:
    if isinstance(reply, str):
        return reply
    if isinstance(reply, list) and reply:
        messages = [_message(m) for m in reply]
        if messages[-1]["role"] != "assistant":
            raise RowError(f"{name} must end with an assistant message")
        return "\n\n".join(m["content"] for m in messages)
    raise RowError(f"{name} must be text or a non-empty list of messages")
