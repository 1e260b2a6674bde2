"""Framework overhead on RL: environment steps per second inside sequoia against a bare loop.

Both run CartPole-v1 for the same number of steps with the same DQN work per step
(epsilon-greedy action from the Q-network, a transition stored, one gradient step
on 64 transitions with double-DQN targets after 1000 steps), in one process. The
framework side is the `dqn` learner's `fit` inside the setting's task environment
(step budget, physics hook); the bare side is the same computation written inline.
Prints steps per second of each and the ratio (target: at least 0.8).

Then an SB3 learner through sequoia against SB3 alone: the same SAC (Pendulum-v1) or
PPO (CartPole-v1) with the same seeds, for the same steps; the sequoia side goes
through the learner's buffer and optimizer hooks and the task environment, and ends
with the same weights (``tests/learners/test_sb3.py``). Prints the time of each and
the ratio (target: at most 1.10).

Then the thread policy (sequoia.threads) under load: ``--load N`` busy processes
(pure-Python loops, one per core by default) keep the cores busy, as other runs of a
sweep would, while the same `dqn` training runs with the policy's thread count (1
for this small model) and with 2 torch threads. Prints steps per second of each.

    python benchmarks/overhead_rl.py [--steps 20000] [--sb3-steps 3000] [--load 2] [--load-steps 2000]
"""

import argparse
import copy
import multiprocessing
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from sequoia.learners import DQN, PPO, SAC
from sequoia.learners.sb3 import silent_logger
from sequoia.settings.rl.environment import TaskEnvironment
from sequoia.seeding import seed_everything
from sequoia.settings.rl import IncrementalRLSetting
from sequoia.threads import available_cores, choose


def framework(steps: int) -> float:
    seed_everything(0)
    setting = IncrementalRLSetting(nb_tasks=1, test_episodes=1)
    setting.rng = np.random.default_rng(0)
    setting.prepare()
    learner = DQN()
    learner.configure(setting)
    env = setting._environment(steps, lambda step, episode: setting.task_physics[0])
    start = time.perf_counter()
    learner.fit(env, None)
    return steps / (time.perf_counter() - start)


def bare(steps: int, hp: DQN) -> float:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    env = gym.make("CartPole-v1")
    q = nn.Sequential(nn.Linear(4, hp.hidden_size), nn.ReLU(), nn.Linear(hp.hidden_size, hp.hidden_size), nn.ReLU(),
                      nn.Linear(hp.hidden_size, 2))
    target = copy.deepcopy(q).requires_grad_(False)
    optimizer = torch.optim.Adam(q.parameters(), lr=hp.lr)
    buffer = {k: torch.zeros(hp.buffer_size, *shape) for k, shape in
              (("obs", (4,)), ("next_obs", (4,)), ("reward", ()), ("done", ()))}
    actions = torch.zeros(hp.buffer_size, dtype=torch.long)
    size = cursor = updates = 0
    start = time.perf_counter()
    obs, _ = env.reset(seed=0)
    for step in range(steps):
        epsilon = hp.epsilon_start + min(step / hp.epsilon_decay_steps, 1) * (hp.epsilon_end - hp.epsilon_start)
        if rng.random() < epsilon:
            action = int(rng.integers(2))
        else:
            with torch.no_grad():
                action = int(q(torch.as_tensor(obs[None], dtype=torch.float32)).argmax(1)[0])
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer["obs"][cursor], buffer["next_obs"][cursor] = torch.as_tensor(obs), torch.as_tensor(next_obs)
        actions[cursor], buffer["reward"][cursor], buffer["done"][cursor] = action, reward, float(terminated)
        cursor, size = (cursor + 1) % hp.buffer_size, min(size + 1, hp.buffer_size)
        obs = env.reset()[0] if terminated or truncated else next_obs
        if size >= hp.learning_starts:
            idx = torch.as_tensor(rng.integers(size, size=hp.batch_size))
            qa = q(buffer["obs"][idx]).gather(1, actions[idx].unsqueeze(1)).squeeze(1)
            with torch.no_grad():
                best = q(buffer["next_obs"][idx]).argmax(1, keepdim=True)
                goal = buffer["reward"][idx] + hp.gamma * (1 - buffer["done"][idx]) * target(
                    buffer["next_obs"][idx]).gather(1, best).squeeze(1)
            loss = nn.functional.smooth_l1_loss(qa, goal)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(q.parameters(), hp.max_grad_norm)
            optimizer.step()
            updates += 1
            if updates % hp.target_update_every == 0:
                target.load_state_dict(q.state_dict())
    return steps / (time.perf_counter() - start)


SB3_CASES = {"sac": (SAC, "Pendulum-v1"), "ppo": (PPO, "CartPole-v1")}


def sb3_pair(name: str, steps: int) -> tuple[float, float]:
    """Seconds for ``steps`` of the SB3 algorithm through sequoia's learner, then alone (same seeds, same work)."""
    import stable_baselines3
    from stable_baselines3.common.vec_env import DummyVecEnv

    learner_class, env_id = SB3_CASES[name]
    seed_everything(0)
    setting = IncrementalRLSetting(env=env_id, nb_tasks=1, test_episodes=1)
    setting.rng = np.random.default_rng(0)
    setting.progress = False
    setting.prepare()
    learner = learner_class()
    learner.configure(setting.view())
    start = time.perf_counter()
    learner.fit(TaskEnvironment(gym.make(env_id), steps, lambda step, episode: {}), None)
    ours = time.perf_counter() - start

    options = learner.algorithm_options(None)
    options.pop("replay_buffer_class", None)
    options.pop("rollout_buffer_class", None)
    env = DummyVecEnv([lambda: gym.make(env_id)])
    alone = getattr(stable_baselines3, learner.algorithm)("MlpPolicy", env, learning_rate=learner.lr,
                                                          gamma=learner.gamma, device="cpu", seed=learner.algo.seed,
                                                          **options)
    alone.set_logger(silent_logger())  # as the learner does: no log directory written
    env.seed(learner._env_seed)
    start = time.perf_counter()
    alone.learn(steps)
    return ours, time.perf_counter() - start


def spin() -> None:
    """A process that keeps one core busy until it is terminated."""
    while True:
        pass


def under_load(processes: int, steps: int) -> None:
    """DQN steps per second with the thread policy's count and with 2 threads, while ``processes`` spin."""
    parameters = sum(p.numel() for p in nn.Sequential(nn.Linear(4, DQN().hidden_size), nn.ReLU(),
                                                      nn.Linear(DQN().hidden_size, DQN().hidden_size), nn.ReLU(),
                                                      nn.Linear(DQN().hidden_size, 2)).parameters())
    policy = choose(parameters, workers=processes + 1, cores=available_cores())
    load = [multiprocessing.Process(target=spin, daemon=True) for _ in range(processes)]
    for process in load:
        process.start()
    try:
        speeds = {}
        for threads in (policy, 2):
            torch.set_num_threads(threads)
            speeds[threads] = framework(steps)
    finally:
        for process in load:
            process.terminate()
    print(f"\nunder load: {processes} busy processes on {available_cores()} cores, {steps} steps "
          f"(learning from step 1000), DQN of {parameters:,} parameters")
    print(f"thread policy ({policy} thread) : {speeds[policy]:,.0f} steps/s")
    print(f"2 torch threads            : {speeds[2]:,.0f} steps/s")
    print(f"policy / 2 threads         : {speeds[policy] / speeds[2]:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--sb3-steps", type=int, default=3000)
    parser.add_argument("--load", type=int, default=available_cores(), help="busy processes for the thread test")
    parser.add_argument("--load-steps", type=int, default=2000)
    args = parser.parse_args()
    framework(2000), bare(2000, DQN())  # warm-up
    ours, reference = framework(args.steps), bare(args.steps, DQN())
    print(f"CartPole-v1, {args.steps} steps, DQN defaults, torch threads: {torch.get_num_threads()}")
    print(f"sequoia dqn : {ours:,.0f} steps/s")
    print(f"bare loop   : {reference:,.0f} steps/s")
    print(f"ratio       : {ours / reference:.3f}  (target >= 0.8)")
    for name in SB3_CASES:
        sb3_pair(name, 1000)  # warm-up
        ours_s, alone_s = sb3_pair(name, args.sb3_steps)
        print(f"\n{name} ({SB3_CASES[name][1]}), {args.sb3_steps} steps, SB3 defaults of sequoia's learner")
        print(f"sequoia {name:<4}: {ours_s:.2f} s")
        print(f"SB3 alone   : {alone_s:.2f} s")
        print(f"ratio       : {ours_s / alone_s:.3f}  (target <= 1.10)")
    if args.load:
        under_load(args.load, args.load_steps)


if __name__ == "__main__":
    main()
