"""Named bundles of option defaults, per domain: ``sequoia ... --preset smoke``.

A preset sets defaults for the ``setting``, ``method`` and ``learner`` groups; a
config file and command-line options still override it.

* ``default``: the options' own defaults (the full default run).
* ``smoke``: a quick end-to-end check of a domain (about a minute on 2 CPU cores):
  for PA, the tiny random model on small slices of the default tasks; for RL,
  3000 steps per task.
"""

from typing import Any

from sequoia.errors import SequoiaError

PRESETS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "default": {},
    "smoke": {
        "sl": {"learner": {"epochs": 2}},
        "rl": {
            "setting": {"steps_per_task": 3000, "test_episodes": 3},
            "method": {"fisher_samples": 64},
            "learner": {"learning_starts": 500, "epsilon_decay_steps": 2000},
        },
        "pa": {
            "setting": {"model": "tiny-random", "dtype": "float32", "train_pairs_per_task": 16, "test_pairs_per_task": 8,
                        "max_prompt_length": 64, "max_completion_length": 32, "generations_per_task": 1,
                        "max_new_tokens": 16},
            "method": {"fisher_samples": 8},
            "learner": {"epochs": 1, "batch_size": 4},
        },
    },
}


def preset_values(name: str, domain: str) -> dict[str, dict[str, Any]]:
    """The option defaults of preset ``name`` for ``domain``, by group (setting, method, learner).

    Example:
        >>> preset_values("smoke", "pa")["setting"]["model"]
        'tiny-random'
    """
    if name not in PRESETS:
        raise SequoiaError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name].get(domain, {})
