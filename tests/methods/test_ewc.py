from types import SimpleNamespace

import pytest
import torch

from sequoia.learners import Classifier
from sequoia.methods.ewc import EWC, EWCPlugin, diagonal_fisher
from sequoia.methods.naive import Naive
from sequoia.settings.sl import ContinualSLSetting, TaskIncrementalSLSetting


def small_learner(seed=0):
    torch.manual_seed(seed)
    learner = Classifier(hidden_size=8)
    learner.configure(SimpleNamespace(input_shape=(4,), num_classes=3, task_classes=None, progress=False))
    return learner


def test_fisher_is_the_mean_squared_per_sample_gradient():
    learner = small_learner()
    data = {"x": torch.randn(5, 4), "y": torch.tensor([0, 1, 2, 0, 1])}
    fisher = diagonal_fisher(learner, data, samples=5, generator=torch.Generator().manual_seed(0))

    expected = {name: torch.zeros_like(p) for name, p in learner.trainable_parameters().items()}
    for i in range(5):
        learner.model.zero_grad()
        learner.loss({"x": data["x"][i : i + 1], "y": data["y"][i : i + 1]}).backward()
        for name, p in learner.trainable_parameters().items():
            expected[name] += p.grad**2 / 5
    for name in expected:
        torch.testing.assert_close(fisher[name], expected[name])


def test_fisher_skips_frozen_parameters():
    learner = small_learner()
    learner.model[1].weight.requires_grad_(False)
    data = {"x": torch.randn(3, 4), "y": torch.tensor([0, 1, 2])}
    fisher = diagonal_fisher(learner, data, samples=3, generator=torch.Generator())
    assert "1.weight" not in fisher and "1.bias" in fisher


def test_penalty_is_zero_at_the_anchor_and_grows_away_from_it():
    learner = small_learner()
    plugin = EWCPlugin(ewc_lambda=2.0)
    assert plugin.penalty(learner) is None
    fisher = {name: torch.ones_like(p) for name, p in learner.trainable_parameters().items()}
    plugin.consolidate(learner, fisher, decay=1.0)
    assert plugin.penalty(learner).item() == 0.0
    with torch.no_grad():
        learner.model[1].bias.add_(1.0)  # 8 biases moved by 1: penalty = 2/2 * 8
    assert plugin.penalty(learner).item() == pytest.approx(8.0)


def test_online_decay_fades_old_fishers():
    learner = small_learner()
    plugin = EWCPlugin(ewc_lambda=1.0)
    ones = {name: torch.ones_like(p) for name, p in learner.trainable_parameters().items()}
    plugin.consolidate(learner, ones, decay=0.5)
    plugin.consolidate(learner, ones, decay=0.5)
    assert all(torch.allclose(f, torch.full_like(f, 1.5)) for f in plugin.fisher.values())


def test_ewc_cuts_forgetting_in_task_incremental_digits():
    naive = TaskIncrementalSLSetting().apply(Naive(), progress=False)
    ewc = TaskIncrementalSLSetting().apply(EWC(), progress=False)
    assert ewc.matrix.average_forgetting() < 0.7 * naive.matrix.average_forgetting()
    assert ewc.matrix.average_final() > naive.matrix.average_final()


def test_ewc_needs_task_boundaries():
    assert not EWC.is_applicable(ContinualSLSetting())
    assert EWC.is_applicable(TaskIncrementalSLSetting())
