"""Every registered method on every registered setting it applies to.

The pairs come from the registry, so a new setting is tested by every method that
applies to it, and a new method on every setting it targets.
"""

import functools
import math

import numpy as np
import pytest
import torch

from sequoia import registry
from sequoia.methods.avalanche.adapter import AvalancheMethod
from sequoia.methods.learner_method import LearnerMethod
from tests.conftest import learned_criterion, quick_method, quick_setting

PAIRS = [
    (method_name, setting_name)
    for method_name, method in sorted(registry.methods().items())
    for setting_name, setting in sorted(registry.settings().items())
    if method.is_applicable(setting)
]


def is_avalanche(method_name: str) -> bool:
    return issubclass(registry.get_method(method_name), AvalancheMethod)


def marks(method_name: str, setting_name: str) -> list:
    """Avalanche's strategies run on sl.incremental by default, on their other settings as slow tests (time)."""
    return [pytest.mark.slow] if is_avalanche(method_name) and setting_name != "sl.incremental" else []


def params(pairs: list[tuple[str, str]], slow_rl: bool = False) -> list:
    """The pairs as test parameters; with ``slow_rl``, RL pairs other than rl.incremental are slow tests."""
    def slow(m: str, s: str) -> list:
        rl_elsewhere = slow_rl and s.startswith("rl.") and s != "rl.incremental"
        return [pytest.mark.slow] if rl_elsewhere else marks(m, s)

    return [pytest.param(m, s, marks=slow(m, s), id=f"{m}-{s}") for m, s in pairs]


@functools.lru_cache(maxsize=None)
def run_pair(method_name: str, setting_name: str):
    """``(setting, method, results)`` of one quick run, computed once per session."""
    setting_cls = registry.settings()[setting_name]
    setting = quick_setting(setting_cls)
    method = quick_method(registry.get_method(method_name), setting_cls)
    return setting, method, setting.apply(method, seed=0, progress=False)


# Methods that change their learner (plugins, or an Avalanche strategy other than Naive); the
# others train it as it is and are baselines.
CHANGING = [(m, s) for m, s in PAIRS
            if (is_avalanche(m) and m != "avalanche.naive")
            or (issubclass(registry.get_method(m), LearnerMethod) and not is_avalanche(m)
                and registry.get_method(m).make_plugins is not LearnerMethod.make_plugins)]


def test_every_method_applies_somewhere():
    applied = {method for method, _ in PAIRS}
    assert applied == set(registry.methods())


@pytest.mark.parametrize(("method_name", "setting_name"), params(PAIRS))
def test_method_learns_on_setting(method_name, setting_name):
    setting, method, results = run_pair(method_name, setting_name)

    phases = 1 if setting.joint_training else setting.nb_tasks_total
    assert results.matrix.values.shape == (phases + 1, setting.nb_tasks_total)
    # The task trained last is learned well above chance: SL's class splits are
    # 2-way within a task and 10-way across (chance 0.1 to 0.5); PA's preference
    # accuracy is 0.5 before training by construction; RL's normalised return is 0
    # for a random policy. A domain from another package: better than before training,
    # in its primary metric's direction.
    name, minimum, gain = learned_criterion(setting)
    matrix = np.asarray(results.matrices[name]) if name else results.matrix.values
    sign = 1 if results.spec(name or results.matrix.metric).higher_is_better else -1
    assert minimum is None or matrix[-1, -1] > minimum, f"final row {matrix[-1]}"
    assert gain is None or sign * (matrix[-1, -1] - matrix[0, -1]) > gain, f"rows {matrix[0]} -> {matrix[-1]}"

    metrics = results.metrics()
    primary = results.spec(results.matrix.metric)
    # Metrics with a finite range (SL and PA accuracies) bound their summaries; RL's return does not.
    width = None if primary.low is None or primary.high is None else primary.high - primary.low
    for name in ("average_forgetting", "bwt", "fwt", "online_performance"):
        value = metrics[name]
        assert value is None or (math.isfinite(value) and (width is None or -width <= value <= width))
    if setting.online_evaluation:
        assert metrics["online_performance"] is not None
    assert metrics["trainable_parameters"] > 0
    assert results.runtime_s > 0
    check_intervals(results, metrics)


def check_intervals(results, metrics) -> None:
    """Every cell of every matrix and every defined summary metric has a 95% interval around its value."""
    intervals = results.intervals()
    for name in [results.matrix.metric, *results.matrices]:
        values = results.matrix.values if name == results.matrix.metric else np.asarray(results.matrices[name])
        cells = np.asarray(intervals["cells"][name])
        assert cells.shape == (*values.shape, 2)
        assert np.all(cells[..., 0] <= values + 1e-9) and np.all(values <= cells[..., 1] + 1e-9), name
    for name in ["average_final", "average_forgetting", "bwt", "fwt", "online_performance", *results.matrices]:
        if metrics[name] is None:
            continue
        low, high = intervals["metrics"][name]
        # Means of items lie inside their percentile interval; the max-based forgetting
        # is biased up in resamples, so only its order is checked.
        inside = name == "average_forgetting" or low - 1e-9 <= metrics[name] <= high + 1e-9
        assert low <= high and inside, (name, metrics[name], low, high)


# On RL, whether a method changes the weights is checked on rl.incremental by default (each RL
# pair trains two DQNs for about 20 s); its other RL levels are slow tests.
@pytest.mark.parametrize(("method_name", "setting_name"), params(CHANGING, slow_rl=True))
def test_method_does_not_silently_equal_naive(method_name, setting_name):
    """A method that changes its learner must change something wherever it claims to apply.

    ``ewc`` on ``multi_task`` used to: one joint phase, so it never consolidated and
    trained exactly as ``naive``. The final weights are compared, not the scores, so
    a small real effect is not mistaken for none. Avalanche's strategies are compared
    with Avalanche's ``Naive`` (the same loop without the strategy's plugins).
    """
    _, method, _ = run_pair(method_name, setting_name)
    if not is_avalanche(method_name):
        assert method.base_learner.plugins
    _, naive, _ = run_pair("avalanche.naive" if is_avalanche(method_name) else "naive", setting_name)
    assert type(naive.base_learner) is type(method.base_learner)
    ours, plain = method.base_learner.trainable_parameters(), naive.base_learner.trainable_parameters()
    assert any(not torch.equal(ours[name], plain[name]) for name in ours), \
        f"{method_name} trained exactly as naive on {setting_name}"


def test_multi_task_beats_naive_fine_tuning_on_sl():
    naive = quick_setting(registry.resolve_setting("sl.incremental")).apply(registry.get_method("naive")(),
                                                                              progress=False)
    joint = quick_setting(registry.resolve_setting("sl.multi_task")).apply(registry.get_method("naive")(),
                                                                             progress=False)
    assert joint.matrix.average_final() > naive.matrix.average_final() + 0.3


# The Stable-Baselines3 learners: every (method, learner) pairing on rl.incremental, small
# enough for seconds per run. What they learn at a real budget is tested in
# tests/learners/test_sb3.py and measured in docs/reinforcement_learning.md.
SB3_OPTIONS = {"sac": {"learning_starts": 100, "batch_size": 32, "hidden_sizes": (32, 32)},
               "sb3_dqn": {"learning_starts": 100, "batch_size": 32, "hidden_sizes": (32, 32)},
               "ppo": {"n_steps": 200, "batch_size": 50, "n_epochs": 2, "hidden_sizes": (32, 32)}}
SB3_ENV = {"sac": "Pendulum-v1", "sb3_dqn": "CartPole-v1", "ppo": "CartPole-v1"}
RL_INCREMENTAL = registry.resolve_setting("rl.incremental")
RL_LEARNER_METHODS = [name for name, method in sorted(registry.methods().items())
                      if issubclass(method, LearnerMethod) and method.is_applicable(RL_INCREMENTAL)]


def sb3_refusal(method_name: str, learner_name: str) -> str | None:
    method = registry.get_method(method_name)()
    learner = registry.get_learner(learner_name)()
    return next((why for why in map(learner.refusal, method.make_plugins(None)) if why), None)


SB3_PAIRS = [(m, learner) for m in RL_LEARNER_METHODS for learner in SB3_OPTIONS if not sb3_refusal(m, learner)]


@functools.lru_cache(maxsize=None)
def run_sb3_pair(method_name: str, learner_name: str):
    setting = RL_INCREMENTAL(env=SB3_ENV[learner_name], nb_tasks=2, steps_per_task=400, test_episodes=2)
    method = quick_method(registry.get_method(method_name), type(setting))
    method.use_learner(registry.get_learner(learner_name)(**SB3_OPTIONS[learner_name]))
    return setting, method, setting.apply(method, seed=0, progress=False)


def test_only_the_documented_sb3_pairings_are_refused():
    refused = {(m, learner) for m in RL_LEARNER_METHODS for learner in SB3_OPTIONS if sb3_refusal(m, learner)}
    assert refused == {("replay", "ppo"), ("agem", "ppo"), ("agem", "sac")}


@pytest.mark.parametrize(("method_name", "learner_name"), SB3_PAIRS, ids=[f"{m}-{lr}" for m, lr in SB3_PAIRS])
def test_method_runs_with_each_sb3_learner(method_name, learner_name):
    setting, method, results = run_sb3_pair(method_name, learner_name)
    assert results.matrix.values.shape == (3, 2)
    assert np.isfinite(results.matrix.values).all()
    check_intervals(results, results.metrics())
    if method.base_learner.plugins:  # a method that changes its learner changes the weights SB3 trains
        _, naive, _ = run_sb3_pair("naive", learner_name)
        ours, plain = method.base_learner.trainable_parameters(), naive.base_learner.trainable_parameters()
        assert any(not torch.equal(ours[name], plain[name]) for name in ours), f"{method_name} equals naive"
