"""The RL branch: task physics, schedules, what the method sees, and forgetting under conflicting dynamics."""

import gymnasium as gym
import numpy as np
import pytest
import yaml

from sequoia.errors import SequoiaError
from sequoia.learners import DQN
from sequoia.methods import Naive, Replay
from sequoia.settings.rl import ContinualRLSetting, IncrementalRLSetting, TaskIncrementalRLSetting
from sequoia.settings.rl.tasks import load_schedule, set_physics


def test_cartpole_caches_are_recomputed_after_a_change():
    env = gym.make("CartPole-v1")
    set_physics(env, {"masspole": 0.5, "length": 2.0, "masscart": 2.0})
    core = env.unwrapped
    assert core.total_mass == pytest.approx(2.5) and core.polemass_length == pytest.approx(1.0)


def test_unknown_parameter_is_a_one_line_error_naming_the_known_ones():
    with pytest.raises(SequoiaError, match="has no parameter 'gravityy'; numeric attributes: .*gravity"):
        set_physics(gym.make("CartPole-v1"), {"gravityy": 1.0})


def prepared(setting, seed=0):
    setting.rng = np.random.default_rng(seed)
    setting.prepare()
    return setting


def test_the_default_sequence_alternates_published_and_reversed_actions():
    setting = prepared(IncrementalRLSetting(nb_tasks=4, test_episodes=1))
    assert [task["force_mag"] for task in setting.task_physics] == [10.0, -10.0, 10.0, -10.0]
    pendulum = prepared(IncrementalRLSetting(env="Pendulum-v1", nb_tasks=2, test_episodes=1))
    assert [task["m"] for task in pendulum.task_physics] == [1.0, -1.0]
    acrobot = prepared(IncrementalRLSetting(env="Acrobot-v1", nb_tasks=2, test_episodes=1))  # nothing to reverse
    assert set(acrobot.task_physics[1]) == {"LINK_LENGTH_1", "LINK_LENGTH_2", "LINK_MASS_1", "LINK_MASS_2"}
    with pytest.raises(SequoiaError, match="Acrobot-v1 has none"):
        prepared(IncrementalRLSetting(env="Acrobot-v1", schedule="alternating", test_episodes=1))


def test_a_smooth_shift_through_a_reversal_never_lands_on_zero():
    setting = prepared(IncrementalRLSetting(env="Pendulum-v1", nb_tasks=2, test_episodes=1))
    assert setting.physics_at(0.5)["m"] == pytest.approx(0.0, abs=1e-5) and setting.physics_at(0.5)["m"] < 0
    assert setting.physics_at(0.25)["m"] == pytest.approx(0.5)


def test_sampled_tasks_keep_task_0_and_perturb_the_others():
    setting = prepared(IncrementalRLSetting(nb_tasks=3, schedule="sampled", test_episodes=1))
    assert setting.task_physics[0]["gravity"] == pytest.approx(9.8)
    assert setting.task_physics[1] != setting.task_physics[0]
    assert set(setting.task_physics[1]) == {"gravity", "length", "masspole", "masscart", "force_mag"}


def test_schedule_file(tmp_path):
    path = tmp_path / "schedule.yaml"
    path.write_text(yaml.safe_dump({0: {"gravity": 9.8}, 1: {"gravity": 20.0}, 2: {"gravity": 3.0}}))
    assert [t["gravity"] for t in load_schedule(str(path))] == [9.8, 20.0, 3.0]
    setting = prepared(IncrementalRLSetting(schedule=str(path), test_episodes=1))
    assert setting.nb_tasks_total == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({0: {"gravity_typo": 1.0}}))
    with pytest.raises(SequoiaError, match="has no parameter 'gravity_typo'"):
        prepared(IncrementalRLSetting(schedule=str(bad)))


def test_other_environments_and_unknown_ids():
    for env_id in ("MountainCar-v0", "Acrobot-v1", "Pendulum-v1"):
        setting = prepared(IncrementalRLSetting(env=env_id, nb_tasks=2, schedule="sampled", test_episodes=1))
        assert setting.task_physics[1] != setting.task_physics[0]
    with pytest.raises(SequoiaError, match="unknown gymnasium environment"):
        prepared(IncrementalRLSetting(env="NoSuchEnv-v0"))
    with pytest.raises(SequoiaError, match="DQN needs discrete actions"):
        DQN().configure(prepared(IncrementalRLSetting(env="Pendulum-v1", nb_tasks=1, test_episodes=1)))


def test_an_env_id_with_a_module_prefix_uses_the_registered_id():
    setting = prepared(IncrementalRLSetting(env="gymnasium:CartPole-v1", nb_tasks=2, schedule="sampled",
                                            test_episodes=1))
    assert setting.env_id == "CartPole-v1"
    assert set(setting.task_physics[1]) == {"gravity", "length", "masspole", "masscart", "force_mag"}
    assert "normalized_return" in setting.score(type("Random", (), {"act": lambda self, obs, task: None})(), 0, None)


@pytest.mark.parametrize("env_id,message", [
    ("no_such_module:Env-v0", "cannot import module 'no_such_module' \\(ModuleNotFoundError"),
    ("CartPole", "names no version; name one, e.g. CartPole-v1"),
    ("Taxi-v3", "gymnasium marks version v3 out of date; use Taxi-v4"),
    ("Blackjack-v1", "its observations are Tuple\\(Discrete\\(32\\), Discrete\\(11\\), Discrete\\(2\\)\\)"),
    ("CliffWalking-v1", "its observations are Discrete\\(48\\)"),
])
def test_env_ids_gymnasium_would_only_warn_about_or_that_no_learner_reads_are_refused(env_id, message, recwarn):
    with pytest.raises(SequoiaError, match=message):
        prepared(IncrementalRLSetting(env=env_id, test_episodes=1))
    assert not [w for w in recwarn if "gymnasium" in str(w.filename)]  # refused before gymnasium warns


@pytest.mark.parametrize("options,message", [
    ({"nb_tasks": 200, "steps_per_task": 10_000_000}, "200 tasks of --setting.steps_per_task 10000000 make 2e\\+09"),
    ({"nb_tasks": 100, "test_episodes": 1000}, "100 tasks of --setting.test_episodes 1000 make 1.01e\\+07 test"),
])
def test_counts_that_no_run_can_finish_are_refused_before_any_episode(options, message):
    with pytest.raises(SequoiaError, match=message):
        prepared(IncrementalRLSetting(**options))


def test_task_incremental_appends_a_one_hot_task_id():
    setting = prepared(TaskIncrementalRLSetting(nb_tasks=3, test_episodes=1))
    env = next(iter(setting.phases())).chunks[0]
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4 + 3,) and obs[4:].tolist() == [1.0, 0.0, 0.0]


def test_continual_physics_move_smoothly():
    setting = prepared(ContinualRLSetting(nb_tasks=2, steps_per_task=100, chunks_per_task=2, schedule="sampled",
                                          test_episodes=1))
    first_phase = next(iter(setting.phases()))
    start = first_phase.chunks[0].physics(0, 0)["gravity"]
    middle = first_phase.chunks[1].physics(0, 0)["gravity"]
    end = setting.task_physics[1]["gravity"]
    assert start == pytest.approx(9.8) and min(start, end) < middle < max(start, end)


@pytest.mark.slow  # two DQN runs of 12k steps: over a minute on 2 busy cores; the contract suite checks that
# replay trains otherwise than naive on every RL level, and docs/reinforcement_learning.md has the measured study
def test_conflicting_dynamics_show_forgetting_and_replay_reduces_it(tmp_path):
    # Task 1 reverses the push: the right action of task 0 is the wrong one of task 1.
    schedule = tmp_path / "reversed.yaml"
    schedule.write_text(yaml.safe_dump({0: {"force_mag": 10.0}, 1: {"force_mag": -10.0}}))

    def run(method):
        setting = TaskIncrementalRLSetting(schedule=str(schedule), steps_per_task=6000, test_episodes=5)
        return setting.apply(method.use_learner(DQN(learning_starts=500, epsilon_decay_steps=2000)), progress=False)

    naive, replay = run(Naive()), run(Replay(buffer_size=5000, replay_share=0.5))
    assert naive.matrix.values[1, 0] > 150  # task 0 learned...
    assert naive.matrix.average_forgetting() > 100  # ...and lost under the reversed dynamics
    assert replay.matrix.average_forgetting() < naive.matrix.average_forgetting() - 50
