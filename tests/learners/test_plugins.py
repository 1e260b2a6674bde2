"""The plugin hooks: their order, what they see, and the gradient seam A-GEM and SI use."""

from types import SimpleNamespace

import pytest
import torch

from sequoia.learners import Classifier
from sequoia.learners.base import Plugin
from sequoia.methods.agem import project
from sequoia.settings.sl import SupervisedData


def configured(**options) -> Classifier:
    torch.manual_seed(0)
    learner = Classifier(hidden_size=16, epochs=1, batch_size=10, **options)
    learner.configure(SimpleNamespace(input_shape=(8,), num_classes=3, task_classes=None, progress=False))
    return learner


def data(rows: int = 20, seed: int = 0) -> SupervisedData:
    generator = torch.Generator().manual_seed(seed)
    return SupervisedData(torch.randn(rows, 8, generator=generator), torch.randint(3, (rows,), generator=generator))


class Recorder(Plugin):
    def __init__(self):
        self.calls = []

    def on_task_switch(self, learner, task_id):
        self.calls.append(("switch", task_id))

    def before_fit(self, learner, train):
        self.calls.append(("before_fit", len(train)))

    def adapt_batch(self, learner, batch):
        self.calls.append(("adapt", len(batch["y"])))
        return batch

    def penalty(self, learner, batch, outputs):
        self.calls.append(("penalty", tuple(outputs.shape), outputs.requires_grad))
        return None

    def before_step(self, learner):
        self.calls.append(("before_step", all(p.grad is not None for p in learner.trainable_parameters().values())))

    def after_step(self, learner):
        self.calls.append(("after_step",))

    def after_fit(self, learner):
        self.calls.append(("after_fit",))


def test_hooks_run_in_order_and_see_the_batch_outputs():
    learner = configured()
    recorder = Recorder()
    learner.plugins = [recorder]
    learner.on_task_switch(0)
    learner.fit(data(20), None)
    step = [("adapt", 10), ("penalty", (10, 3), True), ("before_step", True), ("after_step",)]
    assert recorder.calls == [("switch", 0), ("before_fit", 20), *step, *step, ("after_fit",)]


def test_penalties_are_weighted_per_piece_and_count_once_per_step():
    """A penalty that ignores the batch adds the same gradient with or without accumulation."""

    class Constant(Plugin):
        def penalty(self, learner, batch, outputs):
            return sum((p ** 2).sum() for p in learner.trainable_parameters().values())

    grads = {}
    for pieces in (1, 4):
        learner = configured(gradient_accumulation=pieces)
        learner.plugins = [Constant()]
        learner.torch_optimizer = torch.optim.SGD(learner.model.parameters(), lr=0.0)  # keep the weights
        learner.optimize({"x": data(10).x, "y": data(10).y})
        grads[pieces] = torch.cat([p.grad.flatten() for p in learner.trainable_parameters().values()])
    torch.testing.assert_close(grads[1], grads[4])


def test_gradient_is_the_mean_loss_gradient_and_leaves_grads_alone():
    learner = configured(gradient_accumulation=3)
    batch = {"x": data(9).x, "y": data(9).y}
    learner.model.zero_grad()
    learner.loss(batch).backward()
    expected = {name: p.grad.clone() for name, p in learner.trainable_parameters().items()}
    learner.model.zero_grad(set_to_none=True)
    computed = learner.gradient(batch)
    for name, p in learner.trainable_parameters().items():
        assert p.grad is None
        torch.testing.assert_close(computed[name], expected[name])


def test_teacher_outputs_swap_weights_without_breaking_the_step():
    learner = configured()
    batch = {"x": data(10).x, "y": data(10).y}
    _, groups = learner.teacher_outputs(learner.snapshot(), batch)
    assert groups == []  # it knew no class yet: nothing to distill
    learner.trained_classes[:2] = True
    snapshot = learner.snapshot()
    before = learner.outputs(batch).detach()
    learner.optimize(batch)
    outputs = learner.outputs(batch)
    teacher, groups = learner.teacher_outputs(snapshot, batch)  # between the forward and the backward
    outputs.sum().backward()  # the autograd history is intact
    torch.testing.assert_close(teacher, before)
    assert [g.tolist() for g in groups] == [[0, 1]]  # one head: the classes it had trained
    assert not torch.allclose(outputs.detach(), before)
    assert learner.distillation(outputs, (teacher, groups), 2.0) > 0


def test_task_incremental_classifier_distills_each_head_apart():
    learner = Classifier(hidden_size=16)
    learner.configure(SimpleNamespace(input_shape=(8,), num_classes=4, task_classes=((0, 1), (2, 3)),
                                      progress=False))
    learner.trained_classes[:] = True
    _, groups = learner.teacher_outputs(learner.snapshot(), {"x": data(4).x})
    assert [g.tolist() for g in groups] == [[0, 1], [2, 3]]


def test_projection_removes_the_conflicting_component_only():
    gradient = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([-2.0])}
    reference = {"a": torch.tensor([0.0, 1.0]), "b": torch.tensor([1.0])}
    assert project(gradient, reference)
    dot = sum((gradient[k] * reference[k]).sum() for k in gradient)
    assert dot == pytest.approx(0.0, abs=1e-6)
    agreeing = {"a": torch.tensor([1.0, 1.0]), "b": torch.tensor([1.0])}
    assert not project(agreeing, reference) and agreeing["a"].tolist() == [1.0, 1.0]
