"""The gradient step every learner takes: gradient accumulation and loss checks."""

from types import SimpleNamespace

import pytest
import torch

from sequoia.errors import NonFiniteLossError
from sequoia.learners import Classifier
from sequoia.methods.ewc import EWCPlugin


def configured(**options) -> Classifier:
    torch.manual_seed(0)
    learner = Classifier(hidden_size=16, **options)
    learner.configure(SimpleNamespace(input_shape=(8,), num_classes=3, task_classes=None, progress=False))
    return learner


def test_gradient_accumulation_takes_the_same_step():
    batch = {"x": torch.randn(10, 8), "y": torch.randint(3, (10,))}  # 10 rows: pieces of 3, 4, 3
    losses = {}
    learners = {"plain": configured(), "accumulated": configured(gradient_accumulation=3)}
    for key, learner in learners.items():
        plugin = EWCPlugin(ewc_lambda=5.0)  # the penalty must count once, not once per piece
        plugin.consolidate(learner, {n: torch.ones_like(p) for n, p in learner.trainable_parameters().items()}, 1.0)
        learner.plugins = [plugin]
        with torch.no_grad():
            next(learner.model.parameters()).add_(0.1)  # away from the anchor, so the penalty has a gradient
        losses[key] = torch.stack([learner.optimize(batch) for _ in range(3)])
    assert torch.allclose(losses["plain"], losses["accumulated"], atol=1e-6)
    assert losses["plain"][-1] < losses["plain"][0]
    plain, accumulated = learners["plain"].trainable_parameters(), learners["accumulated"].trainable_parameters()
    for name in plain:
        assert torch.allclose(plain[name], accumulated[name], atol=1e-6), name
    assert not torch.equal(plain["1.weight"], configured().trainable_parameters()["1.weight"])  # it did train


def test_a_nan_loss_stops_before_the_optimizer_step():
    learner = configured()
    before = {n: p.detach().clone() for n, p in learner.trainable_parameters().items()}
    batch = {"x": torch.full((4, 8), float("nan")), "y": torch.zeros(4, dtype=torch.long)}
    with pytest.raises(NonFiniteLossError, match="the loss became nan"):
        learner.optimize(batch)
    for name, parameter in learner.trainable_parameters().items():
        assert torch.equal(parameter, before[name])
