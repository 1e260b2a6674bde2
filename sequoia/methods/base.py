"""The Method API: what a continual-learning algorithm implements."""

import dataclasses
from typing import Any, ClassVar

import torch
from pydantic.dataclasses import dataclass

from sequoia.runs.monitor import TrainingMonitor
from sequoia.settings.base import Setting
from sequoia.settings.view import SettingView


@dataclass
class Method:
    """A continual-learning algorithm. Its dataclass fields are its hyperparameters.

    A method declares the most general setting it can handle in ``target_setting``;
    it then runs, unchanged, on every setting below that node of the tree, except
    that a method which ``carries_across_phases`` (a memory, an anchor, a snapshot)
    does not apply where the level trains in one joint phase (``multi_task``), since
    it would silently equal ``naive`` there. The setting drives the loop:

    * ``configure(view)`` once, before anything else, with what the level lets a
      method know (:mod:`sequoia.settings.view`: spaces, number of tasks, limits);
    * ``on_task_switch(task_id)`` at each boundary, only where the level signals them;
    * ``fit(train, valid)`` for each training phase;
    * whenever the setting evaluates, the calls of its domain's test protocol
      (:mod:`sequoia.protocols`: SL's ``predict``, RL's ``act``, PA's ``logprobs``, and
      ``generate`` where a PA method writes replies), which a method implements for the
      domains it serves: they are not declared here, and a setting names the ones a
      method lacks;
    * ``state_dict()`` after each evaluation, for the run's checkpoint, and
      ``load_state_dict`` when a run resumes (after ``configure``). A method that
      returns ``None`` (the default) runs, but cannot be resumed.

    Methods that take gradient steps themselves pass each loss through
    ``self.monitor.check_loss(loss)``, which stops the run on NaN and logs the loss.

    Example:
        >>> import torch
        >>> from sequoia.settings.sl import SLSetting
        >>> @dataclass
        ... class Majority(Method):
        ...     "Predicts the most frequent label seen so far."
        ...     name: ClassVar[str] = "majority"
        ...     target_setting: ClassVar[type[Setting]] = SLSetting
        ...     def fit(self, train, valid):
        ...         self.label = int(torch.mode(train.y).values)
        ...     def predict(self, x, task_id):
        ...         return torch.full((len(x),), self.label)
        >>> from sequoia.settings.sl import IncrementalSLSetting
        >>> Majority.is_applicable(IncrementalSLSetting())
        True
    """

    name: ClassVar[str] = ""
    target_setting: ClassVar[type[Setting]] = Setting
    carries_across_phases: ClassVar[bool] = False
    """Whether the method works by carrying something from one training phase to the next."""

    @classmethod
    def is_applicable(cls, setting: Setting | type[Setting]) -> bool:
        """Whether ``setting`` (an instance or a class) makes every assumption this method needs."""
        setting_type = setting if isinstance(setting, type) else type(setting)
        if cls.carries_across_phases and setting_type.joint_training:
            return False
        return issubclass(setting_type, cls.target_setting)

    @classmethod
    def why_not_applicable(cls, setting_type: type[Setting] | None, shown_name: str) -> str:
        """Why this method does not apply to ``setting_type`` (shown as ``shown_name``), for error messages."""
        if setting_type is not None and cls.carries_across_phases and setting_type.joint_training \
                and issubclass(setting_type, cls.target_setting):
            return (f"method {cls.name!r} works across training phases and does not apply to {shown_name}, "
                    "which trains in one joint phase (it would equal naive there)")
        return f"method {cls.name!r} targets {cls.target_setting.__name__} and does not apply to {shown_name}"

    def configure(self, view: SettingView) -> None:
        """Called once before training with what the setting lets the method know."""

    def on_task_switch(self, task_id: int | None) -> None:
        """Called when a new task starts, only in settings that signal boundaries."""

    def fit(self, train: Any, valid: Any) -> None:
        """Train on one phase's data."""
        raise NotImplementedError(f"{type(self).__name__} must implement fit()")

    def identify_tasks(self, inputs: Any) -> torch.Tensor | None:
        """The task each test input comes from, as the method guesses it (routers), or ``None``.

        Settings score a method that guesses (``task_identification``, one matrix like the
        others); the default guesses nothing. ``inputs`` are what the domain's test calls
        receive (SL images, PA prompts).
        """
        return None

    def extra_metrics(self) -> dict[str, float]:
        """Numbers the method reports once a run ends (e.g. how many experts it holds), by name."""
        return {}

    @property
    def monitor(self) -> TrainingMonitor:
        """The run's training monitor (a private one until a setting attaches its own)."""
        if "_monitor" not in vars(self):
            self._monitor = TrainingMonitor()
        return self._monitor

    def attach_monitor(self, monitor: TrainingMonitor) -> None:
        """Called by the setting before ``configure``: report steps and losses to ``monitor``."""
        self._monitor = monitor

    def state_dict(self) -> dict[str, Any] | None:
        """Everything training changed (weights, optimizer, memory, generators), or ``None``."""
        return None

    @classmethod
    def saves_state(cls) -> bool:
        """Whether :meth:`state_dict` returns a state (its runs can resume); by default, whether it is overridden."""
        return cls.state_dict is not Method.state_dict

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, on a freshly configured method."""
        raise NotImplementedError(f"{type(self).__name__} does not implement load_state_dict()")

    def num_trainable_parameters(self) -> int | None:
        """How many parameters training changes; ``None`` if the method cannot say."""
        return None

    def num_parameters(self) -> int | None:
        """How many parameters the method's models hold in all (the thread policy reads it); ``None``: unknown."""
        return None

    # -- configuration --------------------------------------------------------------
    def option_groups(self, setting_type: type[Setting]) -> dict[str, type]:
        """Option groups beyond ``method`` that this method takes on ``setting_type``, by name.

        Each is a dataclass whose fields become ``--<group>.<field>`` options and a
        section of ``config.yaml`` (e.g. ``learner`` for methods built on a learner).
        """
        return {}

    def use_options(self, group: str, options: Any) -> None:
        """Take a built instance of one of :meth:`option_groups`."""
        raise KeyError(f"{type(self).__name__} has no option group {group!r}")

    def config(self) -> dict[str, dict[str, Any]]:
        """This method's part of ``config.yaml``: its options by group, each with the name that rebuilds it."""
        return {"method": {"name": self.name, **dataclasses.asdict(self)}}
