"""Shared prompts, packed rows and the chunked head give the padded forward's log-probs and gradients."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sequoia.lm import block_attention
from sequoia.lm.logprobs import completion_logprobs
from sequoia.lm.models import tiny_random_model
from sequoia.lm.packing import Group, pack
from sequoia.lm.scoring import ReplyScorer, group_by_prompt, score_replies

peft = pytest.importorskip("peft")
VOCAB, PAD = 259, 256


def tiny(architecture: str):
    """A 2-layer model of ``architecture`` from a config, float32, seeded."""
    from transformers import GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM

    if architecture == "llama":
        return tiny_random_model()
    torch.manual_seed(0)
    if architecture == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=512, n_embd=64, n_layer=2, n_head=4,
                                          resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                          attn_implementation="sdpa"))
    return Qwen2ForCausalLM(Qwen2Config(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, attn_implementation="sdpa"))


def with_lora(model, architecture: str):
    targets = ["c_attn"] if architecture == "gpt2" else ["q_proj", "v_proj"]
    model = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=targets,
                                                       fan_in_fan_out=architecture == "gpt2", task_type="CAUSAL_LM"))
    with torch.no_grad():  # B starts at zero; move it so the adapters change the scores
        generator = torch.Generator().manual_seed(1)
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)
    return model


def sample_groups(seed: int, n: int = 5, replies: int = 2) -> list[Group]:
    generator = torch.Generator().manual_seed(seed)

    def tokens(low, high):
        length = int(torch.randint(low, high, (1,), generator=generator))
        return torch.randint(0, PAD, (length,), generator=generator).tolist()

    groups = [Group(tokens(1, 30), [tokens(1, 20) for _ in range(replies)]) for _ in range(n)]
    # One reply of a single token (an answer letter), which a packed row scores without laying it out.
    groups[0].replies[-1][1:] = []
    return groups


def with_stem(groups: list[Group], length: int = 6) -> list[Group]:
    """The same groups, every prompt behind one common beginning (a system prompt's tokens)."""
    stem = list(range(200, 200 + length))
    return [Group(stem + g.prompt, g.replies) for g in groups]


def reference(model, groups):
    """One left-padded row per reply, the model's own logits: the layout the packed path replaces."""
    prompts = [g.prompt for g in groups for _ in g.replies]
    replies = [r for g in groups for r in g.replies]
    return completion_logprobs(model, prompts, replies, PAD)[0]


def lora_gradients(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("architecture", ["llama", "gpt2", "qwen2"])
@pytest.mark.parametrize("budget", [16, 1024])  # several rows (some groups alone in theirs), or one row
@pytest.mark.parametrize("stems", [False, True])  # prompts that begin alike, their beginning computed once a row
def test_packed_log_probs_and_gradients_equal_the_padded_forward(architecture, budget, stems):
    model = with_lora(tiny(architecture), architecture)
    groups = sample_groups(seed=len(architecture) + budget)
    groups = with_stem(groups) if stems else groups
    expected = reference(model, groups)
    expected.sum().backward()
    expected_gradients = lora_gradients(model)
    model.zero_grad()

    scorer = ReplyScorer(model, PAD, budget=budget * (4 if stems else 1), chunk=7, stems=stems)  # chunks split replies
    scores = scorer.score(groups)
    assert scorer.mode == "packed"
    assert (scores.logprobs - expected).abs().max() < 1e-4
    assert scores.tokens.tolist() == [len(r) for g in groups for r in g.replies]
    scores.logprobs.sum().backward()
    for name, gradient in lora_gradients(model).items():
        relative = (gradient - expected_gradients[name]).norm() / expected_gradients[name].norm()
        assert relative < 1e-4, (name, float(relative))


def test_packing_processes_each_prompt_once_and_no_padding_in_one_row():
    groups = sample_groups(seed=3)
    rows = pack(groups, budget=10_000, pad_id=PAD)
    # prompts once, no padding, and no reply's last token (its output would predict nothing scored)
    assert rows.tokens == sum(len(g) for g in groups) - sum(len(g.replies) for g in groups)
    padded_tokens = len([r for g in groups for r in g.replies]) * max(len(g.prompt) + len(r) for g in groups
                                                                       for r in g.replies)
    assert rows.tokens < 0.7 * padded_tokens


def test_a_stem_is_computed_once_a_row():
    groups = with_stem(sample_groups(seed=3), length=6)
    plain, stemmed = (pack(groups, budget=10_000, pad_id=PAD, stems=stems) for stems in (False, True))
    assert plain.tokens - stemmed.tokens == 6 * (len(groups) - 1)
    assert stemmed.spans[0][0].stem == (0, 6) and stemmed.input_ids[0, :6].tolist() == groups[0].prompt[:6]


def test_evaluation_groups_replies_by_prompt_in_any_order():
    model = tiny("llama").eval()
    groups = sample_groups(seed=5, n=4, replies=3)
    prompts = [g.prompt for g in groups for _ in g.replies]
    replies = [r for g in groups for r in g.replies]
    shuffle = torch.randperm(len(replies), generator=torch.Generator().manual_seed(0)).tolist()
    ours = score_replies(ReplyScorer(model, PAD), [prompts[i] for i in shuffle], [replies[i] for i in shuffle],
                         replies_per_pass=5)
    with torch.no_grad():
        expected = reference(model, groups)
    torch.testing.assert_close(ours, expected[shuffle], atol=1e-4, rtol=0)
    assert len(group_by_prompt([prompts[i] for i in shuffle], replies)[0]) == 4


def test_distillation_from_hidden_states_equals_the_kl_of_full_logits():
    model = with_lora(tiny("llama"), "llama")
    groups = sample_groups(seed=7)
    scorer = ReplyScorer(model, PAD, chunk=5)
    student = scorer.score(groups)
    with torch.no_grad(), model.disable_adapter():
        teacher = scorer.score(groups)
    loss = student.distillation(teacher, temperature=2.0)
    full_student = student.head(student.features).float() / 2.0
    full_teacher = teacher.head(teacher.features).float() / 2.0
    q, log_p = full_teacher.softmax(-1), full_student.log_softmax(-1)
    expected = (q * (q.log() - log_p)).sum(-1).mean()
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=1e-5)
    assert loss.item() > 1e-4  # the adapters moved the model: a real check
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_a_model_whose_packed_scores_differ_falls_back_to_padded_rows(capsys):
    model = tiny("llama")

    class Broken(ReplyScorer):
        def _mask(self, rows):  # every token sees the whole row: replies see each other
            return torch.ones_like(rows.mask)

    scorer = Broken(model, PAD)
    model.set_attn_implementation("sdpa")  # attention by the (broken) mask, not per prompt and reply
    assert scorer.mode == "padded"
    assert "cannot score prompts shared by their replies" in capsys.readouterr().err
    groups = sample_groups(seed=9)
    with torch.no_grad():
        torch.testing.assert_close(scorer.score(groups).logprobs, reference(model, groups), atol=1e-4, rtol=0)


def test_a_head_the_hidden_states_do_not_explain_is_scored_through_the_logits(capsys):
    model = tiny("llama")
    model.config.logit_scale = 3.0  # read by our head, ignored by Llama's forward: the check must catch it
    scorer = ReplyScorer(model, PAD)
    groups = sample_groups(seed=11)
    with torch.no_grad():
        scores = scorer.score(groups)
        torch.testing.assert_close(scores.logprobs, reference(model, groups), atol=1e-4, rtol=0)
    assert "scored through the full logits" in capsys.readouterr().err
    assert scores.features.shape[-1] == VOCAB


def test_without_packing_every_reply_has_its_own_padded_row():
    model = tiny("llama")
    scorer = ReplyScorer(model, PAD, packing=False)
    groups = sample_groups(seed=13)
    with torch.no_grad():
        torch.testing.assert_close(scorer.score(groups).logprobs, reference(model, groups), atol=1e-4, rtol=0)
    assert scorer.mode == "padded"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 6), st.lists(st.integers(1, 5), min_size=1, max_size=3)), min_size=1,
                max_size=6), st.integers(1, 30))
def test_packed_rows_follow_the_attention_rules(shape, budget):
    """Every reply token's predictor holds the token before it in its own reply (or the prompt's last), and
    the mask lets a token see exactly its group's prompt and its own reply, causally."""
    counter = iter(range(10_000))
    groups = [Group([next(counter) for _ in range(p)], [[next(counter) for _ in range(r)] for r in replies])
              for p, replies in shape]
    rows = pack(groups, budget, pad_id=-1)
    flat_ids = rows.input_ids.flatten().tolist()
    owner = {}  # token id -> (group, branch); every id is unique
    for g, group in enumerate(groups):
        owner |= {t: (g, 0) for t in group.prompt}
        owner |= {t: (g, k + 1) for k, reply in enumerate(group.replies) for t in reply}
    expected_targets = [t for group in groups for reply in group.replies for t in reply]
    assert rows.targets.tolist() == expected_targets
    assert not {reply[-1] for group in groups for reply in group.replies} & set(flat_ids)  # scored, not laid out
    for group in groups:
        for reply in group.replies:
            for j, token in enumerate(reply):
                before = group.prompt[-1] if j == 0 else reply[j - 1]
                index = expected_targets.index(token)
                assert flat_ids[rows.predictors[index]] == before
    width = rows.input_ids.shape[1]
    for r in range(len(rows.input_ids)):
        for q in range(width):
            for k in range(width):
                tq, tk = flat_ids[r * width + q], flat_ids[r * width + k]
                if tq == -1:
                    assert bool(rows.mask[r, 0, q, k]) == (q == k)
                    continue
                allowed = tk != -1 and k <= q and owner[tq][0] == owner[tk][0] and owner[tk][1] in (0, owner[tq][1])
                assert bool(rows.mask[r, 0, q, k]) == allowed


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.lists(st.tuples(st.integers(1, 4), st.lists(st.integers(1, 4), min_size=1, max_size=3)),
                                   min_size=1, max_size=5), st.integers(1, 40))
def test_rows_with_a_stem_follow_the_attention_rules_and_positions(stem, shape, budget):
    """Prompts beginning with the same ``stem`` tokens: each row's stem comes first, once; a token sees the stem
    and its group's prompt and its own reply, causally; positions count from each prompt's start."""
    counter = iter(range(100, 10_000))
    shared = list(range(stem))  # ids below 100: the common beginning of every prompt
    groups = [Group(shared + [next(counter) for _ in range(p)], [[next(counter) for _ in range(r)] for r in replies])
              for p, replies in shape]
    rows = pack(groups, budget, pad_id=-1, stems=True)
    flat_ids, width = rows.input_ids.flatten().tolist(), rows.input_ids.shape[1]
    where = {}  # token id -> (group, branch, position in its own sequence); stem ids are shared
    for g, group in enumerate(groups):
        where |= {t: (g, 0, i) for i, t in enumerate(group.prompt[stem:], start=stem)}
        where |= {t: (g, k + 1, len(group.prompt) + i) for k, reply in enumerate(group.replies)
                  for i, t in enumerate(reply)}
    for index, token in enumerate(t for group in groups for reply in group.replies for t in reply):
        group = groups[where[token][0]]
        reply = group.replies[where[token][1] - 1]
        j = reply.index(token)
        assert flat_ids[rows.predictors[index]] == (group.prompt[-1] if j == 0 else reply[j - 1])
    for r, spans in enumerate(rows.spans):
        length = spans[0].stem[1]
        assert length == (stem if len(spans) > 1 else 0)
        ids, positions = rows.input_ids[r].tolist(), rows.position_ids[r].tolist()
        assert ids[:length] == shared[:length] and positions[:length] == list(range(length))
        # A row without a stem holds one group, whose prompt begins with the shared ids.
        own = where if length else where | {i: (where[ids[stem]][0], 0, i) for i in shared}
        for q in range(width):
            if ids[q] == -1:
                assert rows.mask[r, 0, q].tolist() == [k == q for k in range(width)]
                continue
            if q >= length:
                assert positions[q] == own[ids[q]][2]
            for k in range(width):
                if q < length or k < length:
                    allowed = k <= q and k < length
                else:
                    (gq, bq, _), (gk, bk, _) = own[ids[q]], own.get(ids[k], (-1, -1, -1))
                    allowed = k <= q and gq == gk and bk in (0, bq)
                assert bool(rows.mask[r, 0, q, k]) == allowed, (r, q, k)


def test_a_reply_scores_the_same_whatever_shares_its_row():
    """Identical replies tie exactly, alone or beside others, so ties in preference accuracy survive any batching
    (and any split over processes). That is the guarantee of whole prompts: with stems, how much of a prompt is
    stem depends on its row, and only a pair's two replies, in one group, are promised to tie exactly."""
    model = tiny("llama").eval()
    scorer = ReplyScorer(model, PAD, stems=False)
    [group, other] = sample_groups(seed=17, n=2)
    reply = group.replies[0]
    with torch.no_grad():
        alone = scorer.score([Group(group.prompt, [reply])]).logprobs
        beside = scorer.score([other, Group(group.prompt, [group.replies[1], reply, reply])]).logprobs
        stemmed = ReplyScorer(model, PAD).score(with_stem([other, Group(group.prompt, [reply, reply])])).logprobs
    assert float(beside[-1]) == float(beside[-2]) == float(alone[0])
    assert float(stemmed[-1]) == float(stemmed[-2])  # with stems (the default), within one group


@pytest.mark.parametrize("stems", [False, True])
@pytest.mark.parametrize("sdpa_takes_gqa", [True, False])  # torch 2.5 and later; before, key heads are copied
def test_the_variable_length_layout_gives_the_per_block_attention_and_its_gradients(monkeypatch, stems,
                                                                                     sdpa_takes_gqa):
    """The layout FlashAttention's varlen kernel gets on a GPU (all prompts in one call, all replies in another),
    run here through a per-sequence SDPA stand-in for the kernel, with grouped-query heads."""
    monkeypatch.setattr(block_attention, "_SDPA_TAKES_GQA", sdpa_takes_gqa)
    groups = with_stem(sample_groups(seed=5, n=4, replies=3)) if stems else sample_groups(seed=5, n=4, replies=3)
    rows = pack(groups, budget=100 if stems else 60, pad_id=PAD, stems=stems)
    width = rows.input_ids.shape[1]
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(len(rows.spans), heads, width, 8, generator=generator, requires_grad=True)
              for heads in (4, 2, 2)]
    module = torch.nn.Module()
    results = []
    for kernel in (None, block_attention.reference_varlen):
        with block_attention.blocks(rows.spans, width, kernel=kernel):
            out, _ = block_attention.block_attention(module, *inputs, rows.mask, scaling=0.3)
        real = rows.input_ids != PAD  # padding outputs are never read
        results.append((out[real], torch.autograd.grad(out[real].square().sum(), inputs)))
    (out_rows, grads_rows), (out_varlen, grads_varlen) = results
    assert len(rows.spans) > 1 and (out_rows - out_varlen).abs().max() < 1e-5
    assert any(spans[0].stem != (0, 0) for spans in rows.spans) == stems
    for expected, got in zip(grads_rows, grads_varlen):
        assert (expected - got).abs().max() < 1e-5


@pytest.mark.parametrize("stems", [False, True])
def test_a_model_scored_through_the_variable_length_layout_equals_the_padded_forward(monkeypatch, stems):
    monkeypatch.setattr(block_attention, "flash_varlen", lambda query: block_attention.reference_varlen)
    model = tiny("qwen2")
    groups = with_stem(sample_groups(seed=3)) if stems else sample_groups(seed=3)
    expected = reference(model, groups)
    scorer = ReplyScorer(model, PAD, budget=64 + 24 * stems, stems=stems)
    scores = scorer.score(groups)
    assert scorer.mode == "packed"  # a kernel that disagreed with padded rows would have been refused
    assert (scores.logprobs - expected).abs().max() < 1e-4
