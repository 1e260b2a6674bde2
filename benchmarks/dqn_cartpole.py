"""Does the DQN learner solve unchanged CartPole-v1 within 50k environment steps?

Trains sequoia's `dqn` learner (default hyperparameters, one buffer throughout) on CartPole-v1 with its
published physics, in blocks of steps; after each block, 10 greedy test episodes on
their own seeds. Prints, per seed, the test return after each block and the first
step count at which it reached 195 (target: within 50k steps, for every seed).

    python benchmarks/dqn_cartpole.py [--seeds 0 1 2] [--steps 50000] [--block 5000]
"""

import argparse

import numpy as np

from sequoia.learners import DQN
from sequoia.seeding import seed_everything
from sequoia.settings.rl import IncrementalRLSetting


def run(seed: int, steps: int, block: int) -> list[tuple[int, float]]:
    seed_everything(seed)
    setting = IncrementalRLSetting(nb_tasks=1, parameter_std=0.0, test_episodes=10)
    setting.rng = np.random.default_rng(seed)
    setting.prepare()
    learner = DQN(keep_buffer_across_fits=True)  # one task trained in blocks: one continuous buffer
    learner.configure(setting)
    curve = []
    for done in range(block, steps + 1, block):
        learner.fit(setting._environment(block, lambda step, episode: setting.task_physics[0]), None)
        curve.append((done, float(np.mean(setting._returns(learner.act, 0)))))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--block", type=int, default=5_000)
    args = parser.parse_args()
    reached = []
    for seed in args.seeds:
        curve = run(seed, args.steps, args.block)
        first = next((step for step, ret in curve if ret >= 195), None)
        reached.append(first)
        print(f"seed {seed}: " + ", ".join(f"{step // 1000}k:{ret:.0f}" for step, ret in curve)
              + f"  -> first >= 195 at {first if first else 'never'}")
    solved = sum(r is not None for r in reached)
    print(f"{solved}/{len(args.seeds)} seeds reach a mean test return >= 195 within {args.steps} steps")


if __name__ == "__main__":
    main()
