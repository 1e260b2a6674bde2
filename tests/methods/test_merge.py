"""Behaviour of `merge`: peft's combinations of the per-task adapters, the base-to-merged interpolation, the plot."""

import matplotlib.image
import pytest
import torch

from sequoia.errors import SequoiaError
from sequoia.experiments.plots import write_all
from sequoia.experiments.summary import RunRecord, group_runs
from sequoia.learners import DPOLoRA
from sequoia.methods.merge import Merge
from sequoia.settings.pa import IncrementalPASetting
from tests.conftest import quick_setting
from tests.methods.test_experts import FAST, opposite_tasks  # noqa: F401 - a fixture

PROMPTS = [({"role": "user", "content": "cat dog bird fish?"},), ({"role": "user", "content": "12 47 8 66?"},)]
REPLIES = ["yes", "no"]


@pytest.fixture(scope="module")
def merged_linear(opposite_tasks):  # noqa: F811 - the fixture imported above
    """A run of `merge` with linear weights (1, 0): the merged adapter should be the first task's."""
    setting = quick_setting(IncrementalPASetting, tasks=opposite_tasks, train_pairs_per_task=48)
    method = Merge(combination="linear", weights="1,0").use_learner(DPOLoRA(**FAST))
    return method, setting.apply(method, progress=False)


def _logprobs(method, adapter):
    method.base_learner.use_adapter(adapter)
    return method.base_learner.logprobs(PROMPTS, REPLIES, None)


def test_linear_with_weights_1_0_equals_the_first_adapter(merged_linear):
    method, results = merged_linear
    assert method.pool.adapters == {0: "default", 1: "task_1"}
    first, second, merged = (_logprobs(method, name) for name in ("default", "task_1", "merged"))
    assert torch.allclose(merged, first, rtol=0, atol=1e-5)  # the same update, up to rounding
    assert not torch.allclose(merged, second, rtol=0, atol=1e-2)
    # The merged model answers as task 0's expert: task 0 kept, task 1's opposite preference not learned.
    assert results.matrix.values[-1, 0] >= 0.9 and results.matrix.values[-1, 1] <= 0.1


def test_every_combination_merges_and_alpha_0_is_the_base_model(merged_linear):
    method, _ = merged_linear
    method._weights = None
    for combination in ("linear", "cat", "svd", "ties", "ties_svd", "dare_ties", "dare_linear", "dare_ties_svd",
                        "dare_linear_svd", "magnitude_prune", "magnitude_prune_svd"):
        method.combination = combination
        method.merge()
        assert torch.isfinite(_logprobs(method, "merged")).all(), combination
    method.alpha = 0.0
    method.merge()
    with method.base_learner.model.disable_adapter():
        base = method.base_learner.logprobs(PROMPTS, REPLIES, None)
    assert torch.allclose(_logprobs(method, "merged"), base, rtol=0, atol=1e-6)


@pytest.mark.parametrize("weights,message", [
    ("1,2,3", "3 weights for 2 tasks"), ("1,x", "expected `uniform`"),
    ("nan,1", "the weight of task 0 is nan; expected a finite number from -1000 to 1000"),
    ("1,inf", "the weight of task 1 is inf"), ("1,1e400", "the weight of task 1 is inf"),
    ("1,-5000", "the weight of task 1 is -5000.0")])
def test_weights_are_checked_before_training(opposite_tasks, weights, message):  # noqa: F811
    setting = quick_setting(IncrementalPASetting, tasks=opposite_tasks)
    with pytest.raises(SequoiaError, match=message):
        setting.apply(Merge(weights=weights).use_learner(DPOLoRA(**FAST)), progress=False)


def test_a_sweep_over_alpha_draws_the_tradeoff_plot(tmp_path):
    runs = [RunRecord(f"merge-{alpha}-{seed}", {"seed": seed, "setting": {"name": "pa.incremental"},
                                                 "method": {"name": "merge", "alpha": alpha}},
                      {"metric": "preference_accuracy", "average_final": 0.5 + alpha * 0.2 + 0.01 * seed,
                       "alignment_tax_text_nll": alpha * 0.3 - 0.01 * seed,
                       "capability_mmlu": 5 / 24},  # the same on every seed: a zero-width interval
                      {"transfer_matrix": [[0.5], [0.5 + alpha * 0.2]]})
            for alpha in (0.0, 0.5, 1.0) for seed in range(3)]
    written = write_all(group_runs(runs), tmp_path)
    assert tmp_path / "tradeoff.png" in written
    image = matplotlib.image.imread(tmp_path / "tradeoff.png")
    assert image.shape[0] > 300 and image.shape[1] > 500
