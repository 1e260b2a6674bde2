"""The Stable-Baselines3 learners: SB3 alone is the reference, and the plugins reach inside its loop."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from sequoia.errors import NotApplicableError, SequoiaError
from sequoia.learners import PPO, SAC, SB3DQN
from sequoia.learners.sb3 import silent_logger
from sequoia.methods import AGEM, EWC, Naive, Replay
from sequoia.settings.rl import IncrementalRLSetting
from sequoia.settings.rl.environment import TaskEnvironment
from tests.conftest import full_and_resumed_after_nan

SMALL = {"sac": dict(learning_starts=50, batch_size=32, hidden_sizes=(32, 32)),
         "sb3_dqn": dict(learning_starts=50, batch_size=32, hidden_sizes=(32, 32)),
         "ppo": dict(n_steps=100, batch_size=50, n_epochs=2, hidden_sizes=(32, 32))}
LEARNERS = {"sac": SAC, "sb3_dqn": SB3DQN, "ppo": PPO}
ENV = {"sac": "Pendulum-v1", "sb3_dqn": "CartPole-v1", "ppo": "CartPole-v1"}


def configured(name: str, nb_tasks: int = 1):
    """A learner configured for a small incremental setting on its environment."""
    setting = IncrementalRLSetting(env=ENV[name], nb_tasks=nb_tasks, steps_per_task=200, test_episodes=1)
    setting.rng = np.random.default_rng(0)
    setting.progress = False
    setting.prepare()
    learner = LEARNERS[name](**SMALL[name])
    learner.configure(setting.view())
    return learner


@pytest.mark.parametrize("name", ["sac", "sb3_dqn", "ppo"])
def test_training_through_sequoia_equals_sb3_alone(name):
    """The same seeds give the same weights: the hooks, the buffers and the stand-in environment change nothing."""
    import stable_baselines3
    from stable_baselines3.common.vec_env import DummyVecEnv

    torch.manual_seed(0)
    learner = configured(name)
    seed, env_seed = learner.algo.seed, learner.record.env_seed
    learner.fit(TaskEnvironment(gym.make(ENV[name]), 200, lambda step, start: {}), None)

    options = learner.algorithm_options(None)
    options.pop("replay_buffer_class", None)
    options.pop("rollout_buffer_class", None)
    env = DummyVecEnv([lambda: gym.make(ENV[name])])
    alone = getattr(stable_baselines3, learner.algorithm)("MlpPolicy", env, learning_rate=learner.lr,
                                                          gamma=learner.gamma, device="cpu", seed=seed, **options)
    alone.set_logger(silent_logger())
    env.seed(env_seed)
    alone.learn(200)
    ours = learner.algo.policy.state_dict()
    assert learner.algo.num_timesteps == alone.num_timesteps == 200
    assert all(torch.equal(ours[key], value) for key, value in alone.policy.state_dict().items())


def test_training_writes_nothing_in_the_temporary_folder(tmp_path, monkeypatch):
    """SB3 makes a log directory there at every `learn` unless given a logger; the learners give one."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    learner = configured("ppo")
    learner.fit(TaskEnvironment(gym.make("CartPole-v1"), 200, lambda step, start: {}), None)
    assert list(tmp_path.iterdir()) == []


def test_sac_losses_equal_the_losses_sb3_trains_on():
    """On the batch SB3 samples, with the same random actions: our critic loss is the one SB3 logs, and our
    actor loss, computed where SB3 computes its own (after the critic's step, with the entropy coefficient
    of before its step), is SB3's."""
    torch.manual_seed(0)
    learner = configured("sac")
    learner.fit(TaskEnvironment(gym.make("Pendulum-v1"), 100, lambda step, start: {}), None)
    seen = {}

    def ours(name: str, index: int) -> None:
        state, entropy = torch.get_rng_state(), learner.algo.log_ent_coef.data
        torch.set_rng_state(seen["rng"])  # SB3 drew its actions from this state
        learner.algo.log_ent_coef.data = seen["entropy"]
        seen[name] = float(learner.losses(seen["batch"])[index].detach())
        torch.set_rng_state(state)
        learner.algo.log_ent_coef.data = entropy

    def record(batch):  # the buffer's hook sees the batch before SB3 computes its losses on it
        seen["batch"], seen["rng"] = batch, torch.get_rng_state()
        seen["entropy"] = learner.algo.log_ent_coef.detach().clone()
        ours("critic", 0)
        return batch

    learner.algo.replay_buffer.adapt = record
    learner.algo.critic.optimizer.register_step_post_hook(lambda *args: ours("actor", 1))
    learner.algo.train(gradient_steps=1, batch_size=32)
    logged = learner.algo.logger.name_to_value
    assert seen["critic"] == pytest.approx(logged["train/critic_loss"], rel=1e-6)
    assert seen["actor"] == pytest.approx(logged["train/actor_loss"], rel=1e-6)


@pytest.mark.parametrize(("name", "method", "why"), [
    ("ppo", Replay, "on-policy"), ("ppo", AGEM, "on-policy"), ("sac", AGEM, "two optimizers")])
def test_pairings_that_make_no_sense_are_refused_in_one_line(name, method, why):
    setting = IncrementalRLSetting(env=ENV[name], nb_tasks=2, steps_per_task=200, test_episodes=1)
    with pytest.raises(NotApplicableError, match=why) as error:
        setting.apply(method().use_learner(LEARNERS[name](**SMALL[name])), progress=False)
    assert "\n" not in str(error.value)


def test_sac_refuses_discrete_actions_and_ppo_a_budget_that_is_not_whole_rollouts():
    setting = IncrementalRLSetting(env="CartPole-v1", nb_tasks=1, steps_per_task=200, test_episodes=1)
    with pytest.raises(SequoiaError, match="SAC needs continuous"):
        setting.apply(Naive().use_learner(SAC()), progress=False)
    setting = IncrementalRLSetting(env="CartPole-v1", nb_tasks=1, steps_per_task=250, test_episodes=1)

    def evaluate(method):
        raise AssertionError("the budget is checked before the first evaluation")

    setting.evaluate = evaluate
    with pytest.raises(SequoiaError, match="not a multiple"):
        setting.apply(Naive().use_learner(PPO(**SMALL["ppo"])), progress=False)


@pytest.mark.parametrize("name", ["sac", "ppo"])
def test_ewc_penalty_reaches_the_networks_sb3_steps(name):
    """With a large lambda, EWC keeps the weights that mattered to task 1 near their values after it:
    measured by the Fisher-weighted distance from the anchor, naive moves them far more."""
    def trained(method):
        setting = IncrementalRLSetting(env=ENV[name], nb_tasks=2, steps_per_task=200, test_episodes=1)
        setting.apply(method.use_learner(LEARNERS[name](**SMALL[name])), seed=0, progress=False)
        return method.base_learner.trainable_parameters()

    ewc = EWC(ewc_lambda=1e4, fisher_samples=16)
    ewc_weights = trained(ewc)
    plugin = ewc.base_learner.plugins[0]
    assert set(plugin.anchor) == set(ewc_weights)  # every network SB3 steps, not the target critic

    def pull(weights):  # the anchor is where naive stood too: the first task trains alike
        return float(sum((plugin.fisher[n] * (weights[n].detach() - plugin.anchor[n]) ** 2).sum() for n in weights))

    assert pull(ewc_weights) < 0.2 * pull(trained(Naive()))


def test_with_one_seed_the_first_task_trains_alike_with_or_without_plugins():
    """Plugins draw their generators' seeds without moving SB3's random stream (a paired comparison needs it)."""
    def first_task(method):
        setting = IncrementalRLSetting(env="Pendulum-v1", nb_tasks=1, steps_per_task=200, test_episodes=1)
        setting.apply(method.use_learner(SAC(**SMALL["sac"])), seed=3, progress=False)
        return method.base_learner.trainable_parameters()

    naive = first_task(Naive())
    for method in (Replay(buffer_size=100), EWC(fisher_samples=16)):
        weights = first_task(method)
        assert all(torch.equal(weights[name], naive[name]) for name in naive), method.name


def test_lwf_distills_sac_outputs():
    learner = configured("sac")
    learner.fit(TaskEnvironment(gym.make("Pendulum-v1"), 100, lambda step, start: {}), None)
    batch = learner.experience()
    snapshot = learner.snapshot()

    def distance() -> float:
        teacher = learner.teacher_outputs(snapshot, batch)
        return float(learner.distillation(learner.outputs(batch), teacher, 2.0).detach())

    assert distance() == 0
    with torch.no_grad():
        next(iter(learner.trainable_parameters().values())).add_(0.1)
    assert distance() > 0


def test_replay_memory_rows_join_sb3_batches():
    learner = configured("sb3_dqn")
    learner.plugins = Replay(buffer_size=50).make_plugins(None)
    env = TaskEnvironment(gym.make("CartPole-v1"), 100, lambda step, start: {})
    learner.fit(env, None)
    assert len(learner.plugins[0].memory) == 50
    sizes = []

    def spy(batch):
        adapted = learner._adapt(batch)
        sizes.append(len(adapted["obs"]))
        return adapted

    learner.algo.replay_buffer.adapt = spy
    learner.algo.train(gradient_steps=1, batch_size=32)
    assert sizes == [64]  # 32 sampled + 32 from memory (replay_share 0.5)


@pytest.mark.parametrize("name", ["sac", "sb3_dqn"])
def test_a_run_stopped_by_nan_resumes_to_the_same_results(name, tmp_path, monkeypatch):
    """Networks, optimizers, SB3's counters, the replay buffer and its random actions all go into checkpoints."""
    def build():
        setting = IncrementalRLSetting(env=ENV[name], nb_tasks=2, steps_per_task=200, test_episodes=2)
        return setting, EWC(fisher_samples=8).use_learner(LEARNERS[name](**SMALL[name]))

    full, resumed, _, _ = full_and_resumed_after_nan(build, tmp_path, monkeypatch, "nan@phase=2,step=20")
    assert resumed.to_dict() | {"runtime_s": 0} == full.to_dict() | {"runtime_s": 0}
