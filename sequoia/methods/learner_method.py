"""Methods built from a domain learner plus plugins: the shape of naive, replay, EWC, LwF, A-GEM and SI."""

import dataclasses
from typing import Any, ClassVar

import torch
from pydantic.dataclasses import dataclass

from sequoia.errors import NotApplicableError
from sequoia.learners.base import Learner, Plugin, forwarded_calls
from sequoia.methods.base import Method
from sequoia.registry import default_learner, learner_for
from sequoia.runs.state import capture, restore
from sequoia.settings.base import Setting
from sequoia.settings.view import SettingView


@dataclass
class LearnerMethod(Method):
    """A method that trains a domain learner, changed by plugins.

    Two names, two things: ``learner`` is the *name* of the base learner (an option:
    ``--method.learner NAME``; ``auto`` is the domain's default, declared by the
    setting as ``default_learner``: ``classifier`` for SL, ``dqn`` for RL,
    ``dpo_lora`` for PA), and ``base_learner`` is the learner *object* the method
    trains, made at ``configure`` or given with :meth:`use_learner`, which is how its
    hyperparameters are set (on the command line: the ``--learner.*`` options).

    Everything the setting asks of the method is forwarded to the learner: ``fit``,
    ``on_task_switch`` (which the learner passes on to the plugins), and the calls of
    the test protocols the learner declares (``Learner.test_protocols``: SL's
    ``predict``, RL's ``act``, PA's ``logprobs`` and ``generate``), which this class
    does not name. A subclass only returns its plugins from :meth:`make_plugins`.

    Example:
        >>> from sequoia.methods.replay import Replay
        >>> from sequoia.learners import Classifier
        >>> method = Replay(buffer_size=100).use_learner(Classifier(lr=0.01))
        >>> method.learner, type(method.base_learner).__name__
        ('classifier', 'Classifier')
    """

    learner: str = "auto"
    """The base learner by name; `auto` is the domain's default."""

    checkpoint_attributes: ClassVar[tuple[str, ...]] = ()
    """Attributes of the method itself (beyond its learner and plugins) that training changes."""

    def __post_init__(self) -> None:
        self.base_learner: Learner | None = None

    def use_learner(self, learner: Learner) -> "LearnerMethod":
        """Train this learner instance (with its hyperparameters). Returns ``self``."""
        self.base_learner = learner
        self.learner = learner.name
        return self

    def learner_class(self, setting: type[Setting]) -> type[Learner]:
        """The learner class this method will use on ``setting``."""
        if self.base_learner is not None:
            return type(self.base_learner)
        return default_learner(setting) if self.learner == "auto" else learner_for(self.learner, setting)

    def make_plugins(self, view: SettingView) -> list[Plugin]:
        """The plugins that turn the plain learner into this method."""
        return []

    def configure(self, view: SettingView) -> None:
        learner_class = self.learner_class(view.setting_type)
        if not issubclass(view.setting_type, learner_class.domain):
            raise NotApplicableError(f"learner {learner_class.name!r} serves {learner_class.domain.__name__}, "
                                     f"not {view.setting_type.qualified_name()}")
        if self.base_learner is None or type(self.base_learner) is not learner_class:
            self.base_learner = learner_class()
        self.base_learner.monitor = self.monitor
        self.base_learner.configure(view)
        # Plugins seed their own generators from the global stream; drawn in a fork, they
        # leave the learner's stream as naive's, so that with one seed every method trains
        # its first task on the same random numbers (the paired comparisons need it).
        with torch.random.fork_rng(devices=[]):
            plugins = self.make_plugins(view)
        for plugin in plugins:
            reason = self.base_learner.refusal(plugin)
            if reason:
                raise NotApplicableError(f"--method {self.name} cannot train --method.learner "
                                         f"{learner_class.name}: {reason}")
        self.base_learner.plugins = plugins

    # -- configuration --------------------------------------------------------------
    def option_groups(self, setting_type: type[Setting]) -> dict[str, type]:
        return {"learner": self.learner_class(setting_type)}

    def use_options(self, group: str, options: Any) -> None:
        if group != "learner":
            super().use_options(group, options)
        self.use_learner(options)

    def config(self) -> dict[str, dict[str, Any]]:
        sections = super().config()
        if self.base_learner is not None:
            sections["learner"] = {"name": self.base_learner.name, **dataclasses.asdict(self.base_learner)}
        return sections

    # -- checkpoints ----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.base_learner.state_dict(),
                "plugins": [p.state_dict() for p in self.base_learner.plugins], "attributes": capture(self)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_learner.load_state_dict(state["learner"])
        for plugin, saved in zip(self.base_learner.plugins, state["plugins"], strict=True):
            plugin.load_state_dict(saved)
        restore(self, state["attributes"])

    # -- forwarded to the learner -----------------------------------------------------
    def on_task_switch(self, task_id: int | None) -> None:
        self.base_learner.on_task_switch(task_id)

    def fit(self, train: Any, valid: Any) -> None:
        self.base_learner.fit(train, valid)

    def __getattr__(self, name: str) -> Any:
        """The test-time calls of the learner's protocols, answered by the learner.

        Called only for names the method does not have itself, so a method that defines
        ``predict`` (experts) keeps its own. Other attributes of the learner stay its own.
        """
        learner = vars(self).get("base_learner")
        if learner is not None and name in forwarded_calls(type(learner)):
            return getattr(learner, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def num_parameters(self) -> int | None:
        if self.base_learner is None or self.base_learner.model is None:
            return None
        return sum(p.numel() for p in self.base_learner.model.parameters())

    def num_trainable_parameters(self) -> int | None:
        if self.base_learner is None or self.base_learner.model is None:
            return None
        return sum(p.numel() for p in self.base_learner.trainable_parameters().values())
