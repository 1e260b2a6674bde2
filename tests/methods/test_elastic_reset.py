"""Elastic Reset: the moving average and the resets of the authors' code, and less drift than naive DPO."""

import pytest
import torch

from sequoia.learners import DPOLoRA
from sequoia.methods import DPOLoRAMethod, ElasticReset
from sequoia.methods.elastic_reset import ElasticResetPlugin
from sequoia.settings.pa import IncrementalPASetting
from tests.conftest import YES_TASK, quick_setting

FAST = {"lr": 1e-2, "epochs": 3}


class OneWeight:
    """A learner with one trainable weight that each "step" sets to a given value."""

    def __init__(self) -> None:
        self.weight = torch.nn.Parameter(torch.zeros(3))

    def trainable_parameters(self):
        return {"w": self.weight}


def as_the_authors_write_it(values, decay, reset_every, initial):
    """er_training.py's loop with torch_ema's update (``shadow -= (1 - decay) * (shadow - param)``):
    after each step the EMA moves; every ``reset_every`` steps ``ema.copy_to()`` then
    ``ema.load_state_dict(initial)``. Returns the online weight after each step."""
    shadow, online = initial.clone(), []
    for step, value in enumerate(values, start=1):
        param = value.clone()
        shadow -= (1 - decay) * (shadow - param)
        if step % reset_every == 0:
            param = shadow.clone()
            shadow = initial.clone()
        online.append(param)
    return online


def test_the_average_and_the_resets_follow_the_authors_code():
    generator = torch.Generator().manual_seed(0)
    values = [torch.randn(3, generator=generator) for _ in range(11)]
    learner, plugin = OneWeight(), ElasticResetPlugin(decay=0.8, reset_every=4, reset_to="task_start")
    plugin.before_fit(learner, None)
    expected = as_the_authors_write_it(values, 0.8, 4, torch.zeros(3))
    for value, after in zip(values, expected):
        with torch.no_grad():
            learner.weight.copy_(value)  # the optimizer's step
        plugin.after_step(learner)
        torch.testing.assert_close(learner.weight.detach(), after)
    assert plugin.resets == 2


@pytest.mark.parametrize("reset_to", ["task_start", "run_start"])
def test_the_initial_weights_are_those_of_the_task_or_of_the_run(reset_to):
    learner, plugin = OneWeight(), ElasticResetPlugin(decay=0.5, reset_every=100, reset_to=reset_to)
    plugin.before_fit(learner, None)
    with torch.no_grad():
        learner.weight.fill_(3.0)  # the first task moved the weight
    plugin.after_fit(learner)
    plugin.on_task_switch(learner, 1)
    plugin.before_fit(learner, None)
    expected = 3.0 if reset_to == "task_start" else 0.0
    assert plugin.initial["w"].tolist() == [expected] * 3 and plugin.ema["w"].tolist() == [expected] * 3


def test_a_run_too_short_for_a_reset_says_so_once(capsys):
    learner, plugin = OneWeight(), ElasticResetPlugin(decay=0.5, reset_every=100, reset_to="task_start")
    plugin.before_fit(learner, None)
    plugin.after_step(learner)
    plugin.after_fit(learner)
    plugin.after_fit(learner)
    err = capsys.readouterr().err
    assert err.count("elastic_reset: 1 optimizer steps so far, fewer than --method.reset_every 100") == 1


def test_elastic_reset_drifts_less_than_dpo_and_still_learns():
    # One task, starting from LoRA's B = 0 (the base model): how far B moved is the drift.
    def run(method):
        torch.manual_seed(0)  # the same LoRA initialisation for both
        setting = quick_setting(IncrementalPASetting, tasks=str(YES_TASK))
        results = setting.apply(method.use_learner(DPOLoRA(**FAST)), progress=False)
        moved = sum(float((p.detach() ** 2).sum()) for name, p in method.base_learner.trainable_parameters().items()
                    if "lora_B" in name)
        return results, moved

    naive, naive_moved = run(DPOLoRAMethod())
    elastic, elastic_moved = run(ElasticReset(reset_every=4, ema_decay=0.5))
    assert elastic_moved < 0.75 * naive_moved, (elastic_moved, naive_moved)  # measured: 4.58 against 8.28
    assert elastic.matrix.values[1, 0] >= 0.8 and naive.matrix.values[1, 0] >= 0.8
