"""Methods built from a domain learner plus plugins: the shape of naive, replay and EWC."""

from typing import Any, ClassVar

import torch
from pydantic.dataclasses import dataclass

from sequoia.errors import NotApplicableError
from sequoia.learners.base import Learner, Plugin
from sequoia.methods.base import Method
from sequoia.registry import default_learner, get_learner
from sequoia.runs.state import capture, restore
from sequoia.settings.base import Setting


@dataclass
class LearnerMethod(Method):
    """A method that trains a domain learner, optionally changed by plugins.

    The learner is chosen by name (``learner``; ``auto`` picks the domain's
    default: ``classifier`` for SL) or given as an instance with
    :meth:`use_learner`, which is how its hyperparameters are set. On the
    command line they are the ``--learner.*`` options. Subclasses return their
    plugins from :meth:`make_plugins`.

    Example:
        >>> from sequoia.methods.replay import Replay
        >>> from sequoia.learners import Classifier
        >>> method = Replay(buffer_size=100).use_learner(Classifier(lr=0.01))
        >>> method.learner
        'classifier'
    """

    learner: str = "auto"
    """The base learner by name; `auto` is the domain's default."""

    checkpoint_attributes: ClassVar[tuple[str, ...]] = ()
    """Attributes of the method itself (beyond its learner and plugins) that training changes."""

    def __post_init__(self) -> None:
        self.base: Learner | None = None

    def use_learner(self, learner: Learner) -> "LearnerMethod":
        """Train this learner instance (with its hyperparameters). Returns ``self``."""
        self.base = learner
        self.learner = learner.name
        return self

    def learner_class(self, setting: type[Setting]) -> type[Learner]:
        """The learner class this method will use on ``setting``."""
        if self.base is not None:
            return type(self.base)
        return default_learner(setting) if self.learner == "auto" else get_learner(self.learner)

    def make_plugins(self, setting: Setting) -> list[Plugin]:
        """The plugins that turn the plain learner into this method."""
        return []

    def configure(self, setting: Setting) -> None:
        learner_class = self.learner_class(type(setting))
        if not issubclass(type(setting), learner_class.domain):
            raise NotApplicableError(
                f"learner {learner_class.name!r} serves {learner_class.domain.__name__}, not {setting.qualified_name()}"
            )
        if self.base is None or type(self.base) is not learner_class:
            self.base = learner_class()
        self.base.monitor = self.monitor
        self.base.configure(setting)
        self.base.plugins = self.make_plugins(setting)

    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.base.state_dict(), "plugins": [p.state_dict() for p in self.base.plugins],
                "attributes": capture(self)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base.load_state_dict(state["learner"])
        for plugin, saved in zip(self.base.plugins, state["plugins"], strict=True):
            plugin.load_state_dict(saved)
        restore(self, state["attributes"])

    def fit(self, train: Any, valid: Any) -> None:
        self.base.fit(train, valid)

    def predict(self, x: torch.Tensor, task_id: int | None) -> torch.Tensor:
        return self.base.predict(x, task_id)

    def act(self, observations: Any, task_id: int | None) -> Any:
        return self.base.act(observations, task_id)

    def logprobs(self, prompts: list[str], responses: list[str], task_id: int | None) -> torch.Tensor:
        return self.base.logprobs(prompts, responses, task_id)

    def generate(self, prompts: list, max_new_tokens: int) -> list[str] | None:
        return self.base.generate(prompts, max_new_tokens)

    def num_trainable_parameters(self) -> int | None:
        if self.base is None or self.base.model is None:
            return None
        return sum(p.numel() for p in self.base.trainable_parameters().values())
