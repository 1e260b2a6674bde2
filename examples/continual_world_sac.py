"""Continual World on Meta-World with Stable-Baselines3's SAC: naive fine-tuning against EWC.

Trains each method on a sequence of Meta-World robot-arm tasks (the first two of CW10
by default) with the task id in the observation, as Continual World does, and prints
each method's success-rate matrix and its return matrix. Needs the extra:
``pip install 'sequoia[metaworld]'``.

At the default scale (2000 steps a task) this shows the plumbing, not learning:
Continual World gives each task 1 000 000 steps (see docs/reinforcement_learning.md
for the command at that scale).

    python examples/continual_world_sac.py [--tasks hammer-v3,push-wall-v3] [--steps-per-task 2000]
        [--episodes 3] [--methods naive,ewc] [--seed 0]
"""

import argparse

import numpy as np

from sequoia import registry
from sequoia.learners import SAC
from sequoia.settings.rl import TaskIncrementalRLSetting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="hammer-v3,push-wall-v3", help="cw10, cw20 or Meta-World task names")
    parser.add_argument("--steps-per-task", type=int, default=2000)
    parser.add_argument("--episodes", type=int, default=3, help="test episodes per task and evaluation")
    parser.add_argument("--methods", default="naive,ewc")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    for name in args.methods.split(","):
        setting = TaskIncrementalRLSetting(tasks=args.tasks, steps_per_task=args.steps_per_task,
                                           test_episodes=args.episodes)
        learner = SAC(learning_starts=min(1000, args.steps_per_task // 2), batch_size=128, hidden_sizes=(128, 128))
        results = setting.apply(registry.get_method(name)().use_learner(learner), seed=args.seed, progress=False)
        print(f"\n{setting.qualified_name()} / {name}: {', '.join(setting.task_envs)}")
        print("success rate (rows: before training, after each task)")
        print(np.array2string(results.matrix.values, precision=2))
        print("mean return")
        print(np.array2string(np.asarray(results.matrices["mean_return"]), precision=1))


if __name__ == "__main__":
    main()
