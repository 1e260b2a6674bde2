"""The SL domain as it registers itself (the ``sequoia.domains`` entry point ``sl``)."""

from sequoia.domain import Domain

DOMAIN = Domain(
    "sl",
    modules=("sequoia.settings.sl", "sequoia.learners.classifier"),
    priority=0,  # an unqualified level means SL first, as in Sequoia
    presets={"smoke": {"learner": {"epochs": 2}}},
    description="continual supervised learning: image classification with class splits or permutations",
)
