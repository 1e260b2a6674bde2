"""The chunked output head gives the full ``log_softmax``'s log-probabilities and gradients, whatever the head."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from sequoia.lm.head import _chunk_logprobs, even_chunks, token_logprobs

HIDDEN, VOCAB, TOKENS = 8, 50, 13


def heads():
    """Frozen heads of each kind the scorer builds (:func:`sequoia.lm.scoring.output_head`), and a trainable one."""
    torch.manual_seed(0)
    plain = torch.nn.Linear(HIDDEN, VOCAB, bias=False).requires_grad_(False)
    biased = torch.nn.Linear(HIDDEN, VOCAB).requires_grad_(False)

    def softcapped(hidden):  # Gemma 2's final soft-capping, after a scale: a head that is not one linear map
        return torch.tanh(plain(hidden) * 1.5 / 4.0) * 4.0

    softcapped.parameters = plain.parameters
    trainable = torch.nn.Linear(HIDDEN, VOCAB, bias=False)
    return {"linear": plain, "biased": biased, "softcapped": softcapped, "trainable": trainable}


@pytest.mark.parametrize("kind", ["linear", "biased", "softcapped", "trainable"])
@pytest.mark.parametrize("chunk", [1, 4, 6, 256])
def test_chunked_log_probs_and_gradients_equal_the_full_log_softmax(kind, chunk):
    head = heads()[kind]
    hidden = torch.randn(TOKENS, HIDDEN, generator=torch.Generator().manual_seed(1), requires_grad=True)
    targets = torch.randint(0, VOCAB, (TOKENS,), generator=torch.Generator().manual_seed(2))
    weights = torch.linspace(-1, 2, TOKENS)  # a downstream loss that weighs tokens differently
    inputs = [hidden] + ([head.weight] if kind == "trainable" else [])
    full = torch.log_softmax(head(hidden), -1).gather(-1, targets[:, None]).squeeze(-1)
    expected = torch.autograd.grad((full * weights).sum(), inputs)
    ours = token_logprobs(hidden, head, targets, chunk=chunk)
    got = torch.autograd.grad((ours * weights).sum(), inputs)
    torch.testing.assert_close(ours, full, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(got[0], expected[0], atol=1e-6, rtol=1e-5)
    if kind == "trainable":
        torch.testing.assert_close(got[1], expected[1], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_gradient_written_in_place_is_autograds_to_the_bit(dtype):
    """``onehot - softmax`` written into the logits' float32 copy is what autograd computes through
    ``gather`` and ``logsumexp`` of the same chunk, bit for bit, in float32 and in bf16."""
    head = torch.nn.Linear(HIDDEN, VOCAB, bias=False, dtype=dtype).requires_grad_(False)
    hidden = torch.randn(TOKENS, HIDDEN, dtype=dtype, requires_grad=True)
    targets = torch.randint(0, VOCAB, (TOKENS,))
    ours = token_logprobs(hidden, head, targets, chunk=TOKENS)
    (got,) = torch.autograd.grad(ours.sum(), hidden)
    reference = _chunk_logprobs(head, hidden, targets)
    (expected,) = torch.autograd.grad(reference.sum(), hidden)
    assert torch.equal(ours, reference.detach()) and torch.equal(got, expected)


@given(st.integers(0, 5000), st.integers(1, 600))
def test_even_chunks_are_as_few_as_the_limit_allows_and_none_over_it(total, chunk):
    size = even_chunks(total, chunk)
    assert 1 <= size <= chunk
    assert -(-total // size) == -(-total // chunk)  # as many chunks as the limit forces, no more
