"""Avalanche's supervised strategies as sequoia methods: the adapter.

An :class:`AvalancheMethod` builds one Avalanche strategy around the SL learner's
model and optimizer (``--learner.*`` sets them, as for sequoia's own methods) and
hands it each training phase as an Avalanche experience, on which it calls the
strategy's own ``train``. Sequoia's loop stays in charge: it decides what the
method sees (task labels only where the level gives them), evaluates through the
model (``predict`` is the classifier's, so scores are computed exactly as for
sequoia's methods), and saves checkpoints. Avalanche's evaluation plugins and
loggers are not used.

What the strategy sees of a phase: its images, labels, and task labels where the
level gives task ids in training (task label 0 elsewhere); the experience's index;
the classes in it and those seen before (Avalanche's ``classes_in_this_experience``,
``previous_classes``, ``classes_seen_so_far``). Nothing about later experiences:
strategies that need the benchmark's future (iCaRL's ``n_classes_per_exp``) are not
wrapped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import warnings
from typing import Any, ClassVar

import torch
from pydantic.dataclasses import dataclass

from sequoia.errors import NotApplicableError
from sequoia.learners.classifier import Classifier
from sequoia.methods.avalanche.compat import import_avalanche
from sequoia.methods.learner_method import LearnerMethod
from sequoia.runs.monitor import TrainingMonitor
from sequoia.settings.sl import SLSetting, SupervisedData
from sequoia.settings.sl.setting import SLView


@dataclass
class AvalancheMethod(LearnerMethod):
    """Train an Avalanche strategy (``strategy_class`` in ``avalanche.training``) on each phase.

    Subclasses declare the strategy's options as dataclass fields, named as in
    Avalanche, and :meth:`strategy_arguments` adds those computed from the model
    (the input size for GSS; LFL also changes the model's class, see :meth:`prepare_model`).

    Example:
        >>> from sequoia.methods.avalanche.strategies import AvalancheReplay
        >>> AvalancheReplay(mem_size=50).strategy_options()
        {'mem_size': 50}
    """

    strategy_class: ClassVar[str] = ""
    target_setting: ClassVar[type] = SLSetting
    carries_across_phases: ClassVar[bool] = True  # every wrapped strategy but Naive keeps something
    resumable: ClassVar[bool] = True
    """Whether the strategy's state pickles; where not (an open iterator over its memory that lives
    from one experience into the next), the run writes no checkpoints and says so at its start."""

    @classmethod
    def saves_state(cls) -> bool:
        return cls.resumable

    def strategy_options(self) -> dict[str, Any]:
        """The strategy's options as given (the dataclass fields, less ``learner``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "learner"}

    def strategy_arguments(self, model: torch.nn.Sequential, view: SLView) -> dict[str, Any]:
        """Constructor arguments beyond the options that depend on the model or the setting; none by default."""
        return {}

    def prepare_model(self, model: torch.nn.Sequential) -> torch.nn.Module:
        """The model the strategy trains, built from the classifier's (the same parameters); itself by default."""
        return model

    def configure(self, view: SLView) -> None:
        training = import_avalanche(self.name)
        super().configure(view)
        learner = self.base_learner
        if not isinstance(learner, Classifier):
            raise NotApplicableError(f"--method {self.name} trains the SL classifier, not --method.learner "
                                     f"{learner.name}")
        learner.model = self.prepare_model(learner.model)
        self.experiences_trained = 0
        with _avalanche_notices_hidden():
            self.strategy = getattr(training, self.strategy_class)(
                model=learner.model, optimizer=learner.torch_optimizer, criterion=torch.nn.CrossEntropyLoss(),
                train_mb_size=learner.batch_size, train_epochs=learner.epochs, eval_mb_size=learner.batch_size,
                device="cpu", evaluator=_quiet_evaluator(), **self.strategy_options(),
                **self.strategy_arguments(learner.model, view))
        # Last, so that the loss it checks and logs includes every term the strategy's plugins add.
        self.strategy.plugins.append(_monitor_plugin(self.monitor))

    def fit(self, train: SupervisedData, valid: Any) -> None:
        learner = self.base_learner
        with learner.training_on(train):
            experience = _experience(train, self.experiences_trained, learner.trained_classes)
            with _avalanche_notices_hidden():
                self.strategy.train(experience, num_workers=0)
        learner.model = self.strategy.model  # GDumb trains a fresh copy of the initial model at each experience
        self.experiences_trained += 1

    # -- checkpoints: the strategy pickled as Avalanche's save_checkpoint does -----------------
    def state_dict(self) -> dict[str, Any]:
        """The strategy (model, plugins, buffers, clock) pickled whole, so that what its plugins share stays shared.

        Left out: the optimizer (dill cannot pickle torch's; its state is in the learner's
        part) and the plugin holding the run's monitor.
        """
        if not self.resumable:
            return None
        from avalanche.checkpointing import save_checkpoint

        buffer = io.BytesIO()
        plugins = self.strategy.plugins
        self.strategy.plugins = [p for p in plugins if not isinstance(p, _MonitorPlugin)]
        try:
            save_checkpoint(self.strategy, buffer, exclude=["optimizer"])
        finally:
            self.strategy.plugins = plugins
        return {"strategy": buffer.getvalue(), "experiences_trained": self.experiences_trained,
                "learner": self.base_learner.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import dill

        learner = self.base_learner
        strategy = torch.load(io.BytesIO(state["strategy"]), pickle_module=dill, weights_only=False)["strategy"]
        _move_optimizer(learner.torch_optimizer, learner.model, strategy.model)
        strategy.optimizer = learner.torch_optimizer
        strategy.plugins.append(_monitor_plugin(self.monitor))
        self.strategy, learner.model = strategy, strategy.model
        learner.load_state_dict(state["learner"])  # the optimizer's state, now over the restored model
        self.experiences_trained = state["experiences_trained"]


def _move_optimizer(optimizer: torch.optim.Optimizer, old: torch.nn.Module, new: torch.nn.Module) -> None:
    """Point ``optimizer`` at ``new``'s parameters in place of ``old``'s of the same names."""
    names = {id(p): name for name, p in old.named_parameters()}
    parameters = dict(new.named_parameters())
    for group in optimizer.param_groups:
        group["params"] = [parameters[names[id(p)]] for p in group["params"]]


def _experience(train: SupervisedData, index: int, trained_classes: torch.Tensor):
    """One training phase as an Avalanche experience (with the classes-timeline attributes it knows)."""
    from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience
    from avalanche.benchmarks.scenarios.generic_scenario import EagerCLStream
    from avalanche.benchmarks.utils.classification_dataset import _make_taskaware_tensor_classification_dataset

    task_labels = train.task_ids.tolist() if train.task_ids is not None else 0
    dataset = _make_taskaware_tensor_classification_dataset(train.x, train.y, targets=train.y.tolist(),
                                                            task_labels=task_labels)
    experience = DatasetExperience(dataset=dataset, current_experience=index)
    # A stream of this one experience: strategies read the stream's name; it holds nothing later.
    experience.origin_stream = EagerCLStream("train", [experience], set_stream_info=False)
    current = set(train.y.unique().tolist())
    previous = set(trained_classes.nonzero().flatten().tolist())
    experience.classes_in_this_experience = sorted(current)
    experience.previous_classes = previous
    experience.classes_seen_so_far = current | previous
    return experience


@contextlib.contextmanager
def _avalanche_notices_hidden():
    """Avalanche's notices about its own internals (deprecated calls in its plugins, "no loggers"), hidden.

    They say nothing about the user's inputs, and sequoia uses no Avalanche logger on purpose.
    Recorded rather than filtered, since Avalanche's deprecation decorator resets the filters
    to "always" around its own warning; every other warning is shown as it was raised.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        yield
    for notice in caught:
        internal = issubclass(notice.category, DeprecationWarning) and "avalanche" in notice.filename
        if not internal and "No loggers specified" not in str(notice.message):
            warnings.warn_explicit(notice.message, notice.category, notice.filename, notice.lineno)


def _quiet_evaluator():
    """An evaluation plugin with no metrics and no loggers: sequoia evaluates, Avalanche prints nothing."""
    from avalanche.training.plugins import EvaluationPlugin

    return EvaluationPlugin(loggers=[])


class _MonitorPlugin:
    """Marks the plugin that holds the run's monitor, which checkpoints leave out (see ``state_dict``)."""


def _monitor_plugin(monitor: TrainingMonitor):
    """An Avalanche plugin that passes each training loss through sequoia's monitor.

    The monitor counts the step, logs the loss, stops the run on NaN (with sequoia's
    message) and ends it at once on an interrupt, as every sequoia learner's step does.
    """
    from avalanche.core import SupervisedPlugin

    class MonitorPlugin(_MonitorPlugin, SupervisedPlugin):
        def __init__(self) -> None:
            super().__init__()
            self.monitor = monitor

        def before_backward(self, strategy, **kwargs) -> None:
            self.monitor.check_loss(strategy.loss.detach())  # a value it changes is NaN, which raises

    return MonitorPlugin()
