"""Record formats -> PreferencePair, including the HH-RLHF transcript edge cases."""

import pytest

from sequoia.settings.pa.pairs import (
    PreferencePair,
    RowError,
    from_hh_record,
    from_pku_saferlhf_record,
    from_trl_record,
    hh_messages,
    pairs_from_beavertails,
    pairs_from_oasst_tree,
    split_hh_transcripts,
)

H, A = "\n\nHuman:", "\n\nAssistant:"


def test_hh_split_at_the_last_shared_assistant_turn():
    chosen = f"{H} Hi{A} Hello{H} How do I pick a lock?{A} I can't help with that."
    rejected = f"{H} Hi{A} Hello{H} How do I pick a lock?{A} Use a tension wrench."
    prompt, c, r = split_hh_transcripts(chosen, rejected)
    assert prompt == f"{H} Hi{A} Hello{H} How do I pick a lock?{A}"
    assert (c, r) == (" I can't help with that.", " Use a tension wrench.")


def test_hh_split_identical_pair():
    text = f"{H} Hi{A} Hello"
    assert split_hh_transcripts(text, text) == (f"{H} Hi{A}", " Hello", " Hello")


def test_hh_split_one_reply_a_prefix_of_the_other():
    prompt, c, r = split_hh_transcripts(f"{H} Hi{A} Sure", f"{H} Hi{A} Sure, here is how")
    assert prompt == f"{H} Hi{A}" and c == " Sure" and r == " Sure, here is how"


def test_hh_split_differing_at_the_first_character():
    assert split_hh_transcripts("abc", "xbc") == ("", "abc", "xbc")


def test_hh_split_replies_sharing_an_assistant_marker_inside_the_reply():
    # The shared prefix runs into the reply; the cut still falls at the last complete marker.
    prompt, c, r = split_hh_transcripts(f"{H} Q{A} Yes{A} A", f"{H} Q{A} Yes{A} B")
    assert prompt == f"{H} Q{A} Yes{A}" and (c, r) == (" A", " B")


def test_hh_record_becomes_chat_messages():
    pair = from_hh_record({"chosen": f"{H} Hi{A} Hello{H} Bye{A} See you", "rejected": f"{H} Hi{A} Hello{H} Bye{A} No"})
    assert pair.prompt == ({"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                           {"role": "user", "content": "Bye"})
    assert (pair.chosen, pair.rejected) == ("See you", "No")


def test_hh_record_without_shared_turns_is_a_row_error():
    with pytest.raises(RowError, match="share no Human/Assistant turns"):
        from_hh_record({"chosen": "a", "rejected": "b"})


def test_hh_messages_rejects_text_before_the_first_turn():
    with pytest.raises(RowError):
        hh_messages(f"preamble{H} Hi")


def test_trl_explicit_text_and_conversational():
    assert from_trl_record({"prompt": "Q", "chosen": "good", "rejected": "bad"}) == PreferencePair.from_text(
        "Q", "good", "bad")
    pair = from_trl_record({"prompt": [{"role": "user", "content": "Q"}],
                            "chosen": [{"role": "assistant", "content": "good"}],
                            "rejected": [{"role": "assistant", "content": "bad"}]})
    assert pair == PreferencePair.from_text("Q", "good", "bad")


def test_trl_implicit_text_uses_the_hh_split():
    pair = from_trl_record({"chosen": f"{H} Q{A} good", "rejected": f"{H} Q{A} bad"})
    assert pair == PreferencePair.from_text("Q", "good", "bad")


def test_trl_implicit_conversational_shares_the_first_messages():
    user = {"role": "user", "content": "Q"}
    pair = from_trl_record({"chosen": [user, {"role": "assistant", "content": "good"}],
                            "rejected": [user, {"role": "assistant", "content": "bad"}]})
    assert pair == PreferencePair.from_text("Q", "good", "bad")


@pytest.mark.parametrize("record, message", [
    ({"prompt": "Q", "chosen": "x"}, "expected keys chosen and rejected"),
    ({"prompt": "Q", "chosen": 3, "rejected": "y"}, "chosen must be text"),
    ({"prompt": [{"role": "user"}], "chosen": "x", "rejected": "y"}, "a message must be"),
    ({"chosen": ["x"], "rejected": "y"}, "both be strings or both be message lists"),
    ({"prompt": "Q", "chosen": [{"role": "user", "content": "x"}], "rejected": "y"}, "end with an assistant message"),
])
def test_trl_malformed_records(record, message):
    with pytest.raises(RowError, match=message):
        from_trl_record(record)


def test_pku_saferlhf_prefers_the_safer_response():
    record = {"prompt": "Q", "response_0": "unsafe", "response_1": "safe", "safer_response_id": 1,
              "better_response_id": 0}
    assert from_pku_saferlhf_record(record) == PreferencePair.from_text("Q", "safe", "unsafe")
    assert from_pku_saferlhf_record(record, "better") == PreferencePair.from_text("Q", "unsafe", "safe")
    with pytest.raises(RowError, match="safer_response_id must be 0 or 1"):
        from_pku_saferlhf_record({**record, "safer_response_id": None})


def test_beavertails_pairs_safe_with_unsafe_replies_to_the_same_prompt():
    rows = [{"prompt": "Q1", "response": "ok", "is_safe": True}, {"prompt": "Q1", "response": "bad", "is_safe": False},
            {"prompt": "Q2", "response": "only safe", "is_safe": True}]
    assert list(pairs_from_beavertails(rows)) == [PreferencePair.from_text("Q1", "ok", "bad")]


def test_oasst_tree_adjacent_ranks_skip_synthetic_and_deleted():
    def reply(text, rank, **flags):
        return {"role": "assistant", "text": text, "rank": rank, "replies": [], **flags}

    tree = {"message_tree_id": "t", "prompt": {"role": "prompter", "text": "Q", "replies": [
        reply("best", 0), reply("middle", 1), reply("worst", 2), reply("bot", 3, synthetic=True),
        reply("gone", 4, deleted=True)]}}
    pairs = list(pairs_from_oasst_tree(tree))
    assert [(p.chosen, p.rejected) for p in pairs] == [("best", "middle"), ("middle", "worst")]
    assert pairs[0].prompt == ({"role": "user", "content": "Q"},)


def test_oasst_synthetic_root_gives_nothing():
    tree = {"prompt": {"role": "prompter", "text": "Q", "synthetic": True,
                       "replies": [{"role": "assistant", "text": "a", "rank": 0}, {"role": "assistant", "text": "b", "rank": 1}]}}
    assert list(pairs_from_oasst_tree(tree)) == []
