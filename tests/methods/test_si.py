"""SI: the path integral as Zenke et al. define it, and less forgetting than naive on task-incremental digits."""

from types import SimpleNamespace

import pytest
import torch

from sequoia.learners import Classifier
from sequoia.methods import SI, Naive
from sequoia.methods.si import SIPlugin
from sequoia.settings.sl import TaskIncrementalSLSetting


def test_importance_is_the_path_integral_over_the_squared_move():
    torch.manual_seed(0)
    learner = Classifier(hidden_layers=0, optimizer="sgd", lr=0.1)
    learner.configure(SimpleNamespace(input_shape=(3,), num_classes=2, task_classes=None, progress=False))
    plugin = SIPlugin(strength=1.0, damping=0.1)
    learner.plugins = [plugin]
    start = {n: p.detach().clone() for n, p in learner.trainable_parameters().items()}
    plugin.before_fit(learner, None)

    # Plain SGD moves by -lr * g, so each step adds -g * (-lr * g) = lr * g^2 to the path integral.
    expected = {n: torch.zeros_like(p) for n, p in start.items()}
    for seed in (1, 2):
        generator = torch.Generator().manual_seed(seed)
        batch = {"x": torch.randn(4, 3, generator=generator), "y": torch.randint(2, (4,), generator=generator)}
        for name, grad in learner.gradient(batch).items():
            expected[name] += 0.1 * grad**2
        learner.optimize(batch)
    for name in expected:
        torch.testing.assert_close(plugin.path_integral[name], expected[name])

    plugin.after_fit(learner)
    learner.on_task_switch(1)
    for name, p in learner.trainable_parameters().items():
        torch.testing.assert_close(plugin.importance[name], expected[name] / ((p.detach() - start[name]) ** 2 + 0.1))
        assert torch.equal(plugin.path_integral[name], torch.zeros_like(p))
    assert plugin.penalty(learner).item() == pytest.approx(0.0)  # at the anchor
    with torch.no_grad():
        next(learner.model.parameters()).add_(1.0)
    assert plugin.penalty(learner).item() > 0


def test_si_forgets_less_than_naive_on_task_incremental_digits():
    naive = TaskIncrementalSLSetting().apply(Naive(), progress=False)
    si = TaskIncrementalSLSetting().apply(SI(), progress=False)
    assert si.matrix.average_forgetting() < 0.5 * naive.matrix.average_forgetting()
