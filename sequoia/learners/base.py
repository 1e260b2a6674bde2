"""Learners: the domain-specific trainers that strategies like replay and EWC wrap.

A :class:`Learner` owns a model, its loss on a batch and its training loop (SL:
epochs over minibatches; RL: environment steps; PA: steps over preference pairs).
Every gradient step goes through :meth:`Learner.optimize`, which lets a list of
:class:`Plugin` objects change the batch (replay) or add a penalty (EWC). That
small interface is all replay and EWC know about, which is why they run on every
domain without a copy per domain.
"""

from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field
from pydantic.dataclasses import dataclass

from sequoia import distributed
from sequoia.batching import Batch, batch_size, take
from sequoia.runs.monitor import TrainingMonitor
from sequoia.runs.state import capture, restore
from sequoia.settings.base import Setting


class Plugin:
    """Changes how a learner takes its gradient steps. Every hook defaults to a no-op."""

    checkpoint_attributes: ClassVar[tuple[str, ...]] = ()
    """Attributes that training changes (a memory, a Fisher); saved in checkpoints."""

    def adapt_batch(self, learner: "Learner", batch: Batch) -> Batch:
        """Return the batch to train on (e.g. the current batch plus replayed rows)."""
        return batch

    def penalty(self, learner: "Learner") -> torch.Tensor | None:
        """A term added to the loss, or ``None``."""
        return None

    def after_fit(self, learner: "Learner") -> None:
        """Called when a ``fit`` call ends."""

    def state_dict(self) -> dict[str, Any]:
        return capture(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore(self, state)


@dataclass
class Learner:
    """A trainable model for one domain. Its dataclass fields are its hyperparameters.

    Subclasses set ``name`` and ``domain`` (the domain root setting class they serve)
    and implement ``configure``, ``fit``, ``loss`` and ``experience``. They call
    ``self.optimize(batch)`` for each gradient step so that plugins apply.
    """

    name: ClassVar[str] = ""
    domain: ClassVar[type[Setting]]

    gradient_accumulation: Annotated[int, Field(gt=0)] = 1
    """Pieces each batch goes through the model in: less memory, the same step."""

    checkpoint_attributes: ClassVar[tuple[str, ...]] = ()
    """Attributes (beyond weights and optimizer) that training changes; saved in checkpoints."""

    def __post_init__(self) -> None:
        self.plugins: list[Plugin] = []
        self.model: torch.nn.Module | None = None
        self.torch_optimizer: torch.optim.Optimizer | None = None
        self.monitor = TrainingMonitor()

    def configure(self, setting: Setting) -> None:
        """Build the model and optimizer for this setting."""
        raise NotImplementedError

    def fit(self, train: Any, valid: Any) -> None:
        """Train on one phase's data, calling :meth:`optimize` for each step."""
        raise NotImplementedError

    def loss(self, batch: Batch) -> torch.Tensor:
        """The mean training loss on a batch (no plugin terms)."""
        raise NotImplementedError

    def experience(self) -> Batch:
        """The rows the last ``fit`` trained on, in the batch format ``loss`` takes."""
        raise NotImplementedError

    def generate(self, prompts: list, max_new_tokens: int) -> list[str] | None:
        """Replies to prompts, for learners of generative models; ``None`` otherwise."""
        return None

    def trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        """The parameters training changes, by name (``requires_grad`` only)."""
        assert self.model is not None, "configure() first"
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def optimize(self, batch: Batch) -> torch.Tensor:
        """One gradient step on ``batch``, with every plugin applied.

        Under several processes each rank computes the loss of its share of the rows
        and the gradients are summed over ranks (see :mod:`sequoia.distributed`);
        with ``gradient_accumulation`` > 1 that share goes through the model in as
        many pieces. Either way the step equals the one-process, one-piece step up to
        rounding, because each piece's mean loss is weighted by its share of the rows.
        The summed loss is checked (NaN stops the run) before the optimizer steps.

        Returns the detached loss of the whole batch.
        """
        for plugin in self.plugins:
            batch = plugin.adapt_batch(self, batch)
        assert self.torch_optimizer is not None, "configure() first"
        self.torch_optimizer.zero_grad(set_to_none=True)
        pieces = self._local_pieces(batch)
        piece_losses = []
        for index, (rows, share) in enumerate(pieces):
            loss = self.loss(rows) * share if share < 1 else self.loss(rows)
            if index == len(pieces) - 1:
                loss = self._with_penalties(loss)
            loss.backward()
            piece_losses.append(loss.detach())
        total = piece_losses[0] if len(piece_losses) == 1 else torch.stack(piece_losses).sum()
        if distributed.world_size() > 1:
            total = total.float().cpu()
            grads = [p.grad for p in self.trainable_parameters().values() if p.grad is not None]
            distributed.all_reduce_sum([*grads, total])
        self.monitor.check_loss(total)
        self.before_step()
        self.torch_optimizer.step()
        return total

    def _local_pieces(self, batch: Batch) -> list[tuple[Batch, float]]:
        """This rank's rows of ``batch``, in pieces, each with its share of the whole batch."""
        if distributed.world_size() == 1 and self.gradient_accumulation == 1:
            return [(batch, 1.0)]
        n = batch_size(batch)
        start, stop = distributed.shard_bounds(n)
        bounds = torch.linspace(start, stop, self.gradient_accumulation + 1).round().long().tolist()
        pieces = [(take(batch, range(a, b)), (b - a) / n) for a, b in zip(bounds, bounds[1:]) if b > a]
        if not pieces:  # fewer rows than ranks: this rank adds only the penalty
            pieces = [(take(batch, range(0, 1)), 0.0)]
        return pieces

    def _with_penalties(self, loss: torch.Tensor) -> torch.Tensor:
        """``loss`` plus the plugins' penalties, each counted once over all ranks."""
        for plugin in self.plugins:
            extra = plugin.penalty(self)
            if extra is not None:
                loss = loss + (extra / distributed.world_size() if distributed.world_size() > 1 else extra)
        return loss

    def before_step(self) -> None:
        """Called between ``backward`` and the optimizer step (e.g. to clip gradients)."""

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

    def end_fit(self) -> None:
        """Subclasses call this at the end of ``fit`` so that plugins see it."""
        for plugin in self.plugins:
            plugin.after_fit(self)
