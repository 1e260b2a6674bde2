"""The RL domain as it registers itself (the ``sequoia.domains`` entry point ``rl``)."""

from sequoia.domain import Domain

DOMAIN = Domain(
    "rl",
    modules=("sequoia.settings.rl", "sequoia.learners.dqn", "sequoia.learners.sb3_algorithms"),
    priority=10,
    presets={"smoke": {  # about a minute on 2 CPU cores
        "setting": {"steps_per_task": 3000, "test_episodes": 3},
        "method": {"fisher_samples": 64},
        "learner": {"learning_starts": 500, "epsilon_decay_steps": 2000},
    }},
    description="continual reinforcement learning: gymnasium environments whose physics change per task",
)
