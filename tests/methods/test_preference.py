"""Behaviour of the PA methods on a tiny random model and easy synthetic preference tasks."""

import numpy as np
import pytest
import torch

from sequoia.learners import DPOLoRA, LoRASFT
from sequoia.methods import EWC, DPOLoRAMethod, LoRASFTMethod, Replay
from sequoia.settings.pa import IncrementalPASetting
from sequoia.settings.pa.setting import PreferenceData
from sequoia.settings.pa.sources import load_task
from tests.conftest import NO_TASK, YES_TASK, quick_setting

FAST = {"lr": 1e-2, "epochs": 3}


def setting(*tasks, **overrides):
    return quick_setting(IncrementalPASetting, tasks=",".join(str(t) for t in tasks), **overrides)


def test_dpo_lifts_preference_accuracy_from_chance_to_090():
    results = setting(YES_TASK).apply(DPOLoRAMethod().use_learner(DPOLoRA(**FAST)), progress=False)
    before, after = results.matrix.values[:, 0]
    assert before == 0.5  # the untrained model is its own reference: every margin is 0
    assert after >= 0.9
    assert results.metrics()["mean_margin"] > 0


def test_opposite_preference_causes_forgetting_and_replay_reduces_it():
    # The second task has three times the pairs (and steps) of the first, so that it can undo it.
    naive = setting(YES_TASK, NO_TASK, train_pairs_per_task=96).apply(
        DPOLoRAMethod().use_learner(DPOLoRA(**FAST)), progress=False)
    replay = setting(YES_TASK, NO_TASK, train_pairs_per_task=96).apply(
        Replay(buffer_size=32, replay_share=0.5).use_learner(DPOLoRA(**FAST)), progress=False)
    assert naive.matrix.values[1, 0] >= 0.9  # learned task 0...
    assert naive.matrix.average_forgetting() >= 0.3  # ...and the opposite task 1 undid it
    assert replay.matrix.average_forgetting() < naive.matrix.average_forgetting() - 0.1


def test_only_lora_weights_change():
    s = setting(YES_TASK)
    method = DPOLoRAMethod().use_learner(DPOLoRA(**FAST))
    s.rng = np.random.default_rng(0)
    s.prepare()
    method.configure(s.view())
    model = method.base_learner.model
    before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" in n}
    method.fit(next(iter(s.phases())).chunks[0], None)
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before)  # bitwise
    assert any(not torch.equal(lora_before[n], after[n]) for n in lora_before)
    assert set(method.base_learner.trainable_parameters()) == set(lora_before)


def fitted_learner(reference, sft_steps=0):
    s = setting(YES_TASK, NO_TASK)
    s.rng = np.random.default_rng(0)
    s.prepare()
    learner = DPOLoRA(**FAST, reference=reference, sft_steps=sft_steps)
    learner.configure(s)
    phases = list(s.phases())
    learner.fit(phases[0].chunks[0], None)
    return learner, phases[1].chunks[0]


@pytest.mark.parametrize("reference", ["previous_task", "base"])
def test_reference_log_probs_are_cached_from_the_chosen_model(reference):
    learner, next_task = fitted_learner(reference)
    rows = learner.prepare_rows(learner.encode_pairs(next_task.pairs))
    with torch.no_grad():
        current = learner.batched_logprobs(rows["prompt_ids"], rows["chosen_ids"])
        with learner.model.disable_adapter():
            base = learner.batched_logprobs(rows["prompt_ids"], rows["chosen_ids"])
    expected, other = (current, base) if reference == "previous_task" else (base, current)
    torch.testing.assert_close(rows["ref_chosen"], expected)
    assert not torch.allclose(rows["ref_chosen"], other)


def test_sft_then_dpo_raises_the_likelihood_of_chosen_replies():
    task = load_task(str(YES_TASK))
    plain, _ = fitted_learner("previous_task")
    with_sft, _ = fitted_learner("previous_task", sft_steps=8)
    pairs = PreferenceData(task.test).pairs
    prompts, replies = [p.prompt for p in pairs], [p.chosen for p in pairs]
    assert with_sft.logprobs(prompts, replies, None).mean() > plain.logprobs(prompts, replies, None).mean()


def test_lora_sft_learns_the_chosen_replies():
    results = setting(YES_TASK).apply(LoRASFTMethod().use_learner(LoRASFT(**FAST)), progress=False)
    assert results.matrix.values[1, 0] >= 0.9 and results.metrics()["drift"] > 0


def test_ewc_on_pa_uses_only_lora_parameters():
    method = EWC(fisher_samples=8).use_learner(DPOLoRA(**FAST))
    setting(YES_TASK, NO_TASK).apply(method, progress=False)
    assert method.plugin.fisher and all("lora_" in name for name in method.plugin.fisher)
    assert any(f.abs().sum() > 0 for f in method.plugin.fisher.values())


def test_generations_are_saved_as_samples():
    results = setting(YES_TASK, generations_per_task=2).apply(
        DPOLoRAMethod().use_learner(DPOLoRA(**FAST)), progress=False)
    assert len(results.samples) == 2 and all(isinstance(s["generated"], str) for s in results.samples)
