"""Learners: the domain-specific trainers that strategies like replay and EWC wrap.

A :class:`Learner` owns a model, its outputs and loss on a batch, and its training
loop (SL: epochs over minibatches; RL: environment steps; PA: steps over preference
pairs). Every gradient step goes through :meth:`Learner.optimize`, where a list of
:class:`Plugin` objects may change the batch (replay), add a penalty that sees the
batch and the model's outputs on it (EWC, SI, LwF), and change the gradient before
the optimizer steps (A-GEM). That small interface is all the strategies know about,
which is why each is written once and runs in every domain.

A gradient step, in order::

    batch = plugin.adapt_batch(learner, batch)           for each plugin
    for each piece of the batch (rank shard, accumulation piece), weighted by its share:
        outputs = learner.outputs(piece)
        loss = learner.loss(piece, outputs) + sum(plugin.penalty(learner, piece, outputs))
        loss.backward()
    gradients summed over ranks; the loss checked (NaN stops the run)
    plugin.before_step(learner)                          for each plugin (gradients in p.grad)
    learner.before_step()                                (gradient clipping)
    optimizer.step()
    plugin.after_step(learner)                           for each plugin
"""

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia import distributed, protocols
from sequoia.batching import Batch, batch_size, take
from sequoia.runs.monitor import TrainingMonitor
from sequoia.runs.state import capture, restore
from sequoia.settings.base import Setting
from sequoia.settings.view import SettingView


@dataclasses.dataclass
class FitRecord:
    """What a learner keeps from one ``fit`` to the next besides its weights and optimizer.

    A checkpoint keeps it whole (``checkpoint_attributes = ("record",)``), so that a resumed
    run draws the same batches and its plugins see the same last task.

    Attributes:
        shuffle: orders the batches of every epoch (drawn from the run's seed at ``configure``),
            or, for a learner that plays environments, ``None``.
        env_seed: the next ``fit``'s environment seed (learners that play environments), else 0.
        last: what the last ``fit`` trained on (:meth:`Learner.experience` reads it); ``None`` before one.

    Example:
        >>> record = FitRecord(shuffle=torch.Generator().manual_seed(0))
        >>> record.last is None, torch.randperm(3, generator=record.shuffle).tolist()
        (True, [2, 0, 1])
    """

    shuffle: torch.Generator | None = None
    env_seed: int = 0
    last: Any = None


class Plugin:
    """Changes how a learner trains. Every hook defaults to a no-op.

    Hooks, in the order a run calls them: ``on_task_switch`` (where the level signals
    boundaries), ``before_fit``, then per gradient step ``adapt_batch``, ``penalty``
    (per piece of the batch), ``before_step``, ``after_step``, and ``after_fit``.
    """

    checkpoint_attributes: ClassVar[tuple[str, ...]] = ()
    """Attributes that training changes (a memory, a Fisher); saved in checkpoints."""

    def on_task_switch(self, learner: "Learner", task_id: int | None) -> None:
        """A new task starts (called only where the level signals boundaries)."""

    def before_fit(self, learner: "Learner", train: Any) -> None:
        """A ``fit`` call starts, on ``train``."""

    def after_fit(self, learner: "Learner") -> None:
        """A ``fit`` call ended; ``learner.experience()`` holds its rows."""

    def adapt_batch(self, learner: "Learner", batch: Batch) -> Batch:
        """Return the batch to train on (e.g. the current batch plus replayed rows)."""
        return batch

    def penalty(self, learner: "Learner", batch: Batch, outputs: Any) -> torch.Tensor | None:
        """A term added to the loss of ``batch``, given the learner's ``outputs`` on it; or ``None``.

        Called once per piece of the step's batch; like the loss, each piece's term is
        weighted by its share of the rows, so a term that does not depend on the batch
        (EWC's quadratic pull) counts exactly once per step, and one that does (LwF's
        distillation) should be a mean over the piece's rows.
        """
        return None

    def before_step(self, learner: "Learner") -> None:
        """Between backward and the optimizer step: the step's gradients are in ``p.grad``,
        summed over every piece and rank (e.g. to project them, as A-GEM does)."""

    def after_step(self, learner: "Learner") -> None:
        """After the optimizer step (e.g. to record how far the parameters moved)."""

    def state_dict(self) -> dict[str, Any]:
        return capture(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore(self, state)


@dataclass
class Learner:
    """A trainable model for one domain. Its dataclass fields are its hyperparameters.

    Subclasses set ``name`` and ``domain`` (the domain root setting class they serve)
    and implement ``configure``, ``train_phase``, ``outputs``, ``loss`` and
    ``experience``; they call ``self.optimize(batch)`` for each gradient step so that
    plugins apply. ``distillation`` (for LwF) says how two of its outputs are matched.

    ``test_protocols`` names the test protocols of its domain that it answers
    (:mod:`sequoia.protocols`: the SL classifier ``Classifies``, DQN ``Acts``...); a
    :class:`sequoia.methods.learner_method.LearnerMethod` answers their calls (``predict``,
    ``act``, ``logprobs``, ``generate``) by forwarding them to its learner.
    """

    name: ClassVar[str] = ""
    domain: ClassVar[type[Setting]]
    test_protocols: ClassVar[tuple[type, ...]] = ()
    """The domain's test protocols this learner implements, whose calls its methods forward to it."""

    gradient_accumulation: Annotated[int, Field(gt=0, le=65_536)] = 1
    """Pieces each batch goes through the model in: less memory, the same step."""

    checkpoint_attributes: ClassVar[tuple[str, ...]] = ()
    """Attributes (beyond weights and optimizer) that training changes; saved in checkpoints."""

    def __post_init__(self) -> None:
        self.plugins: list[Plugin] = []
        self.model: torch.nn.Module | None = None
        self.torch_optimizer: torch.optim.Optimizer | None = None
        self.monitor = TrainingMonitor()
        self.progress = False  # whether training shows its bars: the view's, set at configure

    # -- what a learner implements --------------------------------------------------
    def configure(self, view: SettingView) -> None:
        """Build the model and optimizer for the setting ``view`` describes."""
        raise NotImplementedError

    def train_phase(self, train: Any, valid: Any) -> None:
        """Train on one phase's data, calling :meth:`optimize` for each step."""
        raise NotImplementedError

    def outputs(self, batch: Batch) -> Any:
        """The model's outputs on a batch, with gradients (SL logits, PA reply scores, RL Q-values)."""
        raise NotImplementedError

    def loss(self, batch: Batch, outputs: Any = None) -> torch.Tensor:
        """The mean training loss on a batch (no plugin terms), from ``outputs`` where given."""
        raise NotImplementedError

    def distillation(self, outputs: Any, teacher: Any, temperature: float) -> torch.Tensor:
        """How far ``outputs`` are from a ``teacher``'s on the same batch (mean over rows), for LwF."""
        raise NotImplementedError(f"learner {self.name!r} does not define a distillation loss")

    def experience(self) -> Batch:
        """The rows the last ``fit`` trained on, in the batch format ``loss`` takes."""
        raise NotImplementedError

    def refusal(self, plugin: Plugin) -> str | None:
        """Why this learner cannot train with ``plugin`` (one line), or ``None`` where it can.

        Example: PPO refuses replay's memory (it learns on-policy).
        """
        return None

    # -- the shared machinery -------------------------------------------------------
    def fit(self, train: Any, valid: Any) -> None:
        """Train on one phase's data: plugins' ``before_fit``, :meth:`train_phase`, plugins' ``after_fit``."""
        for plugin in self.plugins:
            plugin.before_fit(self, train)
        self.train_phase(train, valid)
        for plugin in self.plugins:
            plugin.after_fit(self)

    def on_task_switch(self, task_id: int | None) -> None:
        """A new task starts: tell the plugins."""
        for plugin in self.plugins:
            plugin.on_task_switch(self, task_id)

    def trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The parameters training changes, by name (``requires_grad`` only)."""
        assert self.model is not None, "configure() first"
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def snapshot(self) -> dict[str, Any]:
        """What :meth:`teacher_outputs` needs to reproduce today's outputs later (a copy of the trainable weights)."""
        return {"parameters": copy_trainable(self)}

    @torch.no_grad()
    def teacher_outputs(self, snapshot: dict[str, Any], batch: Batch) -> Any:
        """The outputs the model had when ``snapshot`` was taken, on ``batch``.

        The trainable weights are swapped for the snapshot's and back, through
        ``.data`` so that the autograd history of the current step stays valid: no
        second copy of the model is ever made (for LoRA, only the adapters swap).
        """
        with self._weights(snapshot["parameters"]):
            return self.outputs(batch)

    @contextmanager
    def _weights(self, values: dict[str, torch.Tensor]) -> Iterator[None]:
        parameters = self.trainable_parameters()
        current = {name: p.data for name, p in parameters.items()}
        try:
            for name, p in parameters.items():
                p.data = values[name]
            yield
        finally:
            for name, p in parameters.items():
                p.data = current[name]

    def optimize(self, batch: Batch) -> torch.Tensor:
        """One gradient step on ``batch``, with every plugin applied (see the module docstring).

        Under several processes each rank computes the loss of its share of the rows
        and the gradients are summed over ranks (see :mod:`sequoia.distributed`);
        with ``gradient_accumulation`` > 1 that share goes through the model in as
        many pieces. Either way the step equals the one-process, one-piece step up to
        rounding, because each piece's mean loss and penalties are weighted by its
        share of the rows. The summed loss is checked (NaN stops the run) before the
        optimizer steps.

        Returns the detached loss of the whole batch.
        """
        for plugin in self.plugins:
            batch = plugin.adapt_batch(self, batch)
        assert self.torch_optimizer is not None, "configure() first"
        self.torch_optimizer.zero_grad(set_to_none=True)
        total = self._backward(batch)
        self.monitor.check_loss(total)
        for plugin in self.plugins:
            plugin.before_step(self)
        self.before_step()
        self.torch_optimizer.step()
        for plugin in self.plugins:
            plugin.after_step(self)
        return total

    def _backward(self, batch: Batch) -> torch.Tensor:
        """Backward through every piece of this rank's rows; gradients and loss summed over ranks."""
        piece_losses = []
        for rows, share in self._local_pieces(batch):
            outputs = self.outputs(rows)
            loss = self._with_penalties(self.loss(rows, outputs), rows, outputs)
            loss = loss * share if share < 1 else loss
            loss.backward()
            piece_losses.append(loss.detach())
        total = piece_losses[0] if len(piece_losses) == 1 else torch.stack(piece_losses).sum()
        if distributed.world_size() > 1:
            total = total.float().cpu()
            grads = [p.grad for p in self.trainable_parameters().values() if p.grad is not None]
            distributed.all_reduce_sum([*grads, total])
        return total

    def gradient(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The gradient of the mean loss on ``batch`` (no penalties), leaving ``p.grad`` untouched.

        Computed in the same pieces and over the same ranks as a training step, so it
        is the same under gradient accumulation and several processes (A-GEM's
        reference gradient on a memory sample).
        """
        parameters = self.trainable_parameters()
        total = {name: torch.zeros_like(p) for name, p in parameters.items()}
        for rows, share in self._local_pieces(batch):
            grads = torch.autograd.grad(self.loss(rows) * share, list(parameters.values()), allow_unused=True)
            for name, grad in zip(parameters, grads):
                if grad is not None:
                    total[name] += grad
        distributed.all_reduce_sum(list(total.values()))
        return total

    def _local_pieces(self, batch: Batch) -> list[tuple[Batch, float]]:
        """This rank's rows of ``batch``, in pieces, each with its share of the whole batch."""
        if distributed.world_size() == 1 and self.gradient_accumulation == 1:
            return [(batch, 1.0)]
        n = batch_size(batch)
        start, stop = distributed.shard_bounds(n)
        bounds = torch.linspace(start, stop, self.gradient_accumulation + 1).round().long().tolist()
        pieces = [(take(batch, range(a, b)), (b - a) / n) for a, b in zip(bounds, bounds[1:]) if b > a]
        if not pieces:  # fewer rows than ranks: this rank's backward only fills its gradients with zeros
            pieces = [(take(batch, range(0, 1)), 0.0)]
        return pieces

    def _with_penalties(self, loss: torch.Tensor, batch: Batch, outputs: Any) -> torch.Tensor:
        """``loss`` plus the plugins' penalties on this piece."""
        for plugin in self.plugins:
            extra = plugin.penalty(self, batch, outputs)
            if extra is not None:
                loss = loss + extra
        return loss

    def before_step(self) -> None:
        """Called between ``backward`` and the optimizer step, after the plugins (e.g. to clip gradients)."""

    def state_dict(self) -> dict[str, Any]:
        """Trainable weights, optimizer state and ``checkpoint_attributes``, for checkpoints."""
        assert self.torch_optimizer is not None, "configure() first"
        return {"parameters": {n: p.detach() for n, p in self.trainable_parameters().items()},
                "optimizer": self.torch_optimizer.state_dict(),
                "attributes": capture(self)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` into a configured learner."""
        with torch.no_grad():
            for name, parameter in self.trainable_parameters().items():
                parameter.copy_(state["parameters"][name])
        self.torch_optimizer.load_state_dict(state["optimizer"])
        restore(self, state["attributes"])


def copy_trainable(learner: "Learner") -> dict[str, torch.Tensor]:
    """A detached copy of ``learner``'s trainable weights, by name (anchors, snapshots, averages start from it).

    Example:
        >>> class OneWeight:
        ...     def trainable_parameters(self): return {"w": torch.nn.Parameter(torch.ones(2))}
        >>> copy_trainable(OneWeight())["w"].requires_grad
        False
    """
    return {name: p.detach().clone() for name, p in learner.trainable_parameters().items()}


def forwarded_calls(learner: type[Learner]) -> frozenset[str]:
    """The names of the calls of ``learner``'s test protocols (computed once per class)."""
    found = vars(learner).get("_test_calls")
    if found is None:
        found = frozenset(name for protocol in learner.test_protocols for name in protocols.calls_of(protocol))
        learner._test_calls = found
    return found
