"""The SL branch: how tasks are built and what the method is (not) shown."""

import numpy as np
import torch

from sequoia.methods.base import Method
from sequoia.settings.sl import (
    ContinualSLSetting,
    DiscreteTaskAgnosticSLSetting,
    DomainIncrementalSLSetting,
    IncrementalSLSetting,
    MultiTaskSLSetting,
    SLSetting,
    TaskIncrementalSLSetting,
)


class Recorder(Method):
    """Records everything the setting passes to it; predicts label 0."""

    name = "recorder"
    target_setting = SLSetting

    def __init__(self):
        self.calls = []

    def configure(self, setting):
        self.calls.append(("configure",))

    def on_task_switch(self, task_id):
        self.calls.append(("switch", task_id))

    def fit(self, train, valid):
        self.calls.append(("fit", len(train), None if train.task_ids is None else train.task_ids.unique().tolist(),
                           train.y.unique().tolist()))

    def predict(self, x, task_id):
        self.calls.append(("predict", len(x), task_id))
        return torch.zeros(len(x), dtype=torch.long)


def run(setting):
    method = Recorder()
    results = setting.apply(method, progress=False)
    return method.calls, results


def test_class_incremental_splits_digits_into_pairs_and_signals_boundaries():
    calls, results = run(IncrementalSLSetting(nb_tasks=5))
    fits = [c for c in calls if c[0] == "fit"]
    assert [f[3] for f in fits] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert [f[2] for f in fits] == [[0], [1], [2], [3], [4]]  # task ids known in training
    assert [c[1] for c in calls if c[0] == "switch"] == [0, 1, 2, 3, 4]
    assert all(c[2] is None for c in calls if c[0] == "predict")  # no task id at test
    assert results.matrix.values.shape == (6, 5)
    # Predicting 0 everywhere is right on task 0's zeros only.
    assert results.matrix.values[0, 0] > 0.4 and results.matrix.values[0, 1:].max() == 0.0


def test_task_incremental_gives_task_ids_at_test():
    calls, _ = run(TaskIncrementalSLSetting(nb_tasks=5))
    assert sorted({c[2] for c in calls if c[0] == "predict"}) == [0, 1, 2, 3, 4]


def test_task_agnostic_levels_hide_boundaries_and_task_ids_and_measure_online():
    for cls in (ContinualSLSetting, DiscreteTaskAgnosticSLSetting):
        calls, results = run(cls(nb_tasks=5, chunks_per_task=4))
        assert not [c for c in calls if c[0] == "switch"]
        fits = [c for c in calls if c[0] == "fit"]
        assert len(fits) == 20 and all(f[2] is None for f in fits)
        assert all(c[2] is None for c in calls if c[0] == "predict")
        assert results.online_performance is not None and len(results.curves["online"]) == 20


def test_smooth_drift_mixes_neighbouring_tasks_but_abrupt_shift_does_not():
    def classes_per_fit(cls):
        calls, _ = run(cls(nb_tasks=5, chunks_per_task=4, drift_width=0.5))
        return [set(c[3]) for c in calls if c[0] == "fit"]

    assert all(len(classes) <= 2 or classes <= {8, 9} for classes in classes_per_fit(DiscreteTaskAgnosticSLSetting)[:4])
    assert any(len(classes) > 2 for classes in classes_per_fit(ContinualSLSetting))


def test_domain_incremental_shares_labels_and_permutes_pixels():
    setting = DomainIncrementalSLSetting(nb_tasks=3)
    calls, _ = run(setting)
    fits = [c for c in calls if c[0] == "fit"]
    assert all(f[3] == list(range(10)) for f in fits)
    (x0, _), _ = setting.prepared.tasks[0]
    (x1, _), _ = setting.prepared.tasks[1]
    assert not torch.equal(x0, x1)
    assert torch.allclose(x0.sum(dim=(1, 2)), x1.sum(dim=(1, 2)))  # same pixels, other places


def test_multi_task_trains_once_on_everything_shuffled():
    calls, results = run(MultiTaskSLSetting(nb_tasks=5))
    fits = [c for c in calls if c[0] == "fit"]
    assert len(fits) == 1 and fits[0][2] == [0, 1, 2, 3, 4] and fits[0][3] == list(range(10))
    assert results.matrix.values.shape == (2, 5)


def test_valid_split_and_samples_per_class():
    setting = IncrementalSLSetting(nb_tasks=5, samples_per_class=20, valid_fraction=0.25)
    seen = []

    class Validating(Recorder):
        def fit(self, train, valid):
            seen.append((len(train), len(valid)))

    setting.apply(Validating(), progress=False)
    assert seen == [(30, 10)] * 5


def test_same_seed_same_splits_other_seed_other_splits():
    def first_test_images(seed):
        setting = IncrementalSLSetting()
        setting.apply(Recorder(), seed=seed, progress=False)
        return setting.prepared.tasks[0][1][0]

    assert torch.equal(first_test_images(1), first_test_images(1))
    assert not torch.equal(first_test_images(1), first_test_images(2))


def test_test_labels_never_reach_the_method():
    setting = IncrementalSLSetting(nb_tasks=2)
    seen_args = []

    class Spy(Recorder):
        def predict(self, x, task_id):
            seen_args.append((type(x), task_id))
            return torch.zeros(len(x), dtype=torch.long)

    setting.apply(Spy(), progress=False)
    assert all(kind is torch.Tensor for kind, _ in seen_args)
    assert np.isclose(len(seen_args), 2 * 3)  # 2 tasks x (before + 2 phases)


def test_task_ids_at_test_are_used_before_training_too():
    """Row 0 of task_incremental: guesses among each task's own 2 classes, not 10-way guesses."""
    from sequoia.methods import EWC, Naive, Replay

    fwt = {}
    for method in (Naive(), EWC(), Replay()):
        results = TaskIncrementalSLSetting().apply(method, progress=False)
        assert results.matrix.values[0].min() >= 0.15, results.matrix.values[0]
        fwt[method.name] = results.matrix.fwt()
    assert len(set(fwt.values())) > 1  # FWT measures the method again, not the mask
