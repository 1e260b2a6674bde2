"""Define your own RL task sequence: a parameter schedule for any gymnasium environment.

The schedule maps each task to the attributes to set on `env.unwrapped`; here,
CartPole on Earth, then on the Moon, then with a heavy, long pole. The same file works
on the command line:

    sequoia --setting rl.incremental --method replay --setting.schedule schedule.yaml

    python examples/rl_task_schedule.py [--steps-per-task 5000] [--seed 0]
"""

import argparse
import tempfile
from pathlib import Path

import yaml

from sequoia.learners import DQN
from sequoia.methods import Naive, Replay
from sequoia.settings.rl import IncrementalRLSetting

SCHEDULE = {
    0: {"gravity": 9.8},
    1: {"gravity": 1.62},
    2: {"gravity": 9.8, "masspole": 0.5, "length": 1.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-per-task", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    schedule = Path(tempfile.mkdtemp()) / "schedule.yaml"
    schedule.write_text(yaml.safe_dump(SCHEDULE))
    setting = IncrementalRLSetting(schedule=str(schedule), steps_per_task=args.steps_per_task, test_episodes=5)
    for method in (Naive(), Replay(buffer_size=5000)):
        results = setting.apply(method.use_learner(DQN(learning_starts=500, epsilon_decay_steps=2000)),
                                seed=args.seed, progress=False)
        print(results.summary(), end="\n\n")


if __name__ == "__main__":
    main()
