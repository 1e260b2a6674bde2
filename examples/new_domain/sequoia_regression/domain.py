"""The domain as sequoia's registry loads it (the ``sequoia.domains`` entry point in pyproject.toml)."""

from sequoia.domain import Domain

DOMAIN = Domain(
    "reg",
    # Importing these registers the settings (one per level) and the learner.
    modules=("sequoia_regression.levels", "sequoia_regression.learner"),
    presets={"smoke": {"setting": {"train_inputs": 128, "test_inputs": 64}, "learner": {"epochs": 20}}},
    description="continual regression on drifting synthetic functions (an example domain from its own package)",
)
