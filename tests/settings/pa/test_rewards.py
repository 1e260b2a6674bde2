"""Scored generations: a reward model's matrix, the win rate against the base model, and the sampled KL."""

import json

import pytest
import torch

from sequoia.settings.pa.rewards import RewardModel, reward_of_logits, win_rate_items
from tests.conftest import run_sequoia


@pytest.fixture(scope="module")
def reward_model_dir(tmp_path_factory):
    """A tiny random sequence-classification model with one output, saved with a byte-level tokenizer."""
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from sequoia.lm.models import byte_tokenizer

    directory = tmp_path_factory.mktemp("reward_model")
    config = LlamaConfig(vocab_size=259, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, pad_token_id=256, bos_token_id=257,
                         eos_token_id=258, num_labels=1)
    torch.manual_seed(0)
    LlamaForSequenceClassification(config).save_pretrained(directory)
    byte_tokenizer().save_pretrained(directory)
    return directory


def test_reward_model_scores_each_conversation_alone_whatever_the_batch(reward_model_dir):
    model = RewardModel(str(reward_model_dir), torch.device("cpu"), batch_size=3)
    prompts = [[{"role": "user", "content": f"question {i}" * (i + 1)}] for i in range(5)]
    replies = [f"reply {i}" for i in range(5)]
    together = model(prompts, replies)
    alone = torch.cat([model([prompt], [reply]) for prompt, reply in zip(prompts, replies)])
    assert together.shape == (5,)
    assert torch.allclose(together, alone, atol=1e-5)  # padding does not leak into the score
    assert model.text(prompts[0], "hi") == "\n\nHuman: question 0\n\nAssistant: hi"


def test_win_rate_and_two_label_rewards():
    assert win_rate_items(torch.tensor([2.0, 1.0]), torch.tensor([1.0, 1.0])).tolist() == [1.0, 0.5]
    assert reward_of_logits(torch.tensor([[0.0, 1.5]])).tolist() == [1.5]


def test_reward_matrix_win_rate_and_sample_kl_appear_in_results(tmp_path, reward_model_dir):
    proc = run_sequoia(["--setting", "class_incremental", "--method", "dpo_lora", "--preset", "smoke",
                        "--learner.lr", "0.05", "--eval.capability", "none", "--eval.reward_model",
                        str(reward_model_dir), "--eval.reward_prompts", "4", "--output", str(tmp_path)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    [results_file] = tmp_path.rglob("results.json")
    results = json.loads(results_file.read_text())
    for name in ("reward", "win_rate", "sample_kl"):
        matrix = results["matrices"][name]
        assert len(matrix) == 4 and len(matrix[0]) == 3  # before + 3 phases, by task
        assert name in results["metrics"] and name in results["intervals"]["cells"]
    # Row 0 is the base model against itself: every greedy reply ties with itself, and the KL is zero.
    assert results["matrices"]["win_rate"][0] == [0.5, 0.5, 0.5]
    assert results["matrices"]["sample_kl"][0] == pytest.approx([0.0, 0.0, 0.0], abs=1e-4)
    # After training the policy has moved: its replies and their rewards change, and so does the KL estimate.
    assert results["matrices"]["reward"][1] != results["matrices"]["reward"][0]
    assert results["matrices"]["sample_kl"][1] != results["matrices"]["sample_kl"][0]


def test_a_reward_model_that_is_not_one_is_refused_in_one_line(tmp_path):
    proc = run_sequoia(["--setting", "class_incremental", "--method", "dpo_lora", "--preset", "smoke",
                        "--eval.reward_model", str(tmp_path / "nowhere"), "--output", str(tmp_path / "out")])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"sequoia: error: model directory not found: {tmp_path / 'nowhere'}"]
