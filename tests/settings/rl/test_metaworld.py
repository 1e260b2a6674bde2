"""Continual World on Meta-World: the sequences, the success metric, and a tiny run end to end."""

import gymnasium as gym
import numpy as np
import pytest

from sequoia.learners import SAC
from sequoia.methods import Naive
from sequoia.settings.rl import IncrementalRLSetting, TaskIncrementalRLSetting
from sequoia.settings.rl import metaworld_tasks

pytest.importorskip("metaworld")


def prepared(setting):
    setting.rng = np.random.default_rng(0)
    setting.progress = False
    setting.prepare()
    return setting


def test_cw10_names_the_ten_continual_world_tasks_in_order():
    assert metaworld_tasks.sequence("cw10") == ["hammer-v3", "push-wall-v3", "faucet-close-v3", "push-back-v3",
                                                "stick-pull-v3", "handle-press-side-v3", "push-v3", "shelf-place-v3",
                                                "window-close-v3", "peg-unplug-side-v3"]
    assert metaworld_tasks.sequence("cw20") == metaworld_tasks.sequence("cw10") * 2


@pytest.mark.slow  # Meta-World environments built: over 20 s on 2 cores
def test_cw10_builds_the_ten_continual_world_tasks_in_order():
    setting = prepared(TaskIncrementalRLSetting(tasks="cw10", steps_per_task=1000, test_episodes=1))
    assert setting.task_envs == ["hammer-v3", "push-wall-v3", "faucet-close-v3", "push-back-v3", "stick-pull-v3",
                                 "handle-press-side-v3", "push-v3", "shelf-place-v3", "window-close-v3",
                                 "peg-unplug-side-v3"]
    assert setting.nb_tasks_total == 10 and setting.metric_name == "success_rate"
    assert setting.observation_space.shape == (39 + 10,)  # the one-hot task id of the task-incremental level
    for task in range(len(setting.task_envs)):
        env = setting._environment(10, lambda step, start: {}, task=task)
        assert env.unwrapped.__class__.__name__.lower().startswith("sawyer")
        assert env.observation_space == setting.observation_space
        env.close()
    assert metaworld_tasks.sequence("cw20") == setting.task_envs * 2


@pytest.mark.slow  # 20 Meta-World environments built: over 20 s
def test_cw20_prepares_cw10_twice():
    cw20 = prepared(IncrementalRLSetting(tasks="cw20", steps_per_task=1000, test_episodes=1))
    assert cw20.task_envs == metaworld_tasks.CW10 * 2 and cw20.nb_tasks_total == 20


class SucceedsOnce(gym.Env):
    """Five-step episodes whose third step alone reports success."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (39,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (4,), np.float32)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(39, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(39, np.float32), 1.0, False, self.t == 5, {"success": float(self.t == 3)}


def test_an_episode_succeeds_if_any_of_its_steps_reports_success(monkeypatch):
    setting = prepared(IncrementalRLSetting(tasks="reach-v3,push-v3", steps_per_task=1000, test_episodes=4))
    monkeypatch.setattr(metaworld_tasks, "make", lambda name, seed=None: SucceedsOnce())
    scores = setting.score(type("Random", (), {"act": staticmethod(lambda obs, task_id: None)})(), 1, None)
    assert scores["success_rate"].tolist() == [1.0] * 4
    assert scores["mean_return"].tolist() == [5.0] * 4


def test_two_metaworld_tasks_train_and_report_a_success_rate_matrix():
    setting = IncrementalRLSetting(tasks="reach-v3,push-v3", steps_per_task=500, test_episodes=1)
    method = Naive().use_learner(SAC(learning_starts=100, batch_size=64, hidden_sizes=(64, 64)))
    results = setting.apply(method, seed=0, progress=False)
    assert results.matrix.metric == "success_rate"
    assert results.matrix.values.shape == (3, 2)
    assert ((results.matrix.values >= 0) & (results.matrix.values <= 1)).all()
    returns = np.asarray(results.matrices["mean_return"])
    assert np.isfinite(returns).all() and not np.allclose(returns[0], returns[1])  # training changed the policy
    assert method.base_learner.algo.num_timesteps == 1000
