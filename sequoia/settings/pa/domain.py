"""The preference-alignment domain as it registers itself (the ``sequoia.domains`` entry point ``pa``)."""

from sequoia.domain import Domain

DOMAIN = Domain(
    "pa",
    modules=("sequoia.settings.pa", "sequoia.learners.dpo", "sequoia.learners.sft"),
    priority=20,
    presets={"smoke": {  # the tiny random model on small slices of the default tasks
        "setting": {"model": "tiny-random", "dtype": "float32", "train_pairs_per_task": 16, "test_pairs_per_task": 8,
                    "max_prompt_length": 64, "max_completion_length": 32, "generations_per_task": 1,
                    "max_new_tokens": 16},
        "method": {"fisher_samples": 8},
        "learner": {"epochs": 1, "batch_size": 4},
    }},
    description="sequential preference alignment of a language model: one preference dataset per task",
)
